"""Reasoning length (paper Sec. 5: the staged model reasons 20.8% shorter than the merged one) per evaluated
checkpoint, and a paired test of two on the items both got right."""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from typing import Any

from vlm_capcurriculum.evaluate.stats import paired_test


def _stats(values: Sequence[int]) -> dict[str, Any]:
    if not values:
        return {"n": 0, "mean": None, "median": None}
    return {"n": len(values), "mean": statistics.fmean(values), "median": statistics.median(values)}


def _tokens(row: Mapping[str, Any]) -> int | None:
    value = row.get("response_tokens")
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def length_profile(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Lengths of one checkpoint's answers (rows without a known length are counted in ``unknown_length``)."""
    answered = [row for row in rows if row.get("verdict") != "error"]
    known = [row for row in answered if _tokens(row) is not None]
    hits = sum(row.get("finish_reason") == "length" for row in answered)
    return {
        "items": len(rows),
        "answered": len(answered),
        "unknown_length": len(answered) - len(known),
        "length_sources": sorted({str(row.get("length_source")) for row in known}),
        "all": _stats([_tokens(row) for row in known]),  # type: ignore[misc]
        "correct": _stats([_tokens(row) for row in known if row.get("correct")]),  # type: ignore[misc]
        "length_limit_hit": {"count": hits, "share": hits / len(answered) if answered else None},
    }


def compare(first: Sequence[Mapping[str, Any]], second: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Lengths on the items both checkpoints answered correctly (matched by ``id``), the relative change of the
    second against the first, and the paired test."""
    by_id = {str(row["id"]): row for row in first}
    pairs = [
        (_tokens(by_id[str(row["id"])]), _tokens(row))
        for row in second
        if str(row["id"]) in by_id and row.get("correct") and by_id[str(row["id"])].get("correct")
    ]
    pairs = [(a, b) for a, b in pairs if a is not None and b is not None]
    a_values, b_values = [a for a, _ in pairs], [b for _, b in pairs]
    a_stats, b_stats = _stats(a_values), _stats(b_values)
    change = (b_stats["mean"] - a_stats["mean"]) / a_stats["mean"] if pairs and a_stats["mean"] else None
    return {
        "both_correct": len(pairs),
        "first_lengths": a_stats,
        "second_lengths": b_stats,
        "relative_change_of_mean": change,
        "test": paired_test([float(a) for a in a_values], [float(b) for b in b_values]),
    }


def analyze_lengths(
    entries: Sequence[tuple[str, Sequence[Mapping[str, Any]]]], pair: tuple[str, str] | None
) -> dict[str, Any]:
    """``entries``: ``(label, eval rows)`` per checkpoint (label ``run`` or ``run/stage``); ``pair``: the two labels
    compared (staged, merged) or None."""
    labels = [label for label, _ in entries]
    rows = dict(entries)
    result: dict[str, Any] = {
        "checkpoints": {
            label: {
                "run": label.split("/", 1)[0],
                "stage": label.split("/", 1)[1] if "/" in label else None,
                **length_profile(rows[label]),
            }
            for label in labels
        }
    }
    if pair is not None:
        for label in pair:
            if label not in rows:
                raise ValueError(f"--compare {label!r}: no such input (labels: {', '.join(labels)})")
        result["comparison"] = {"first": pair[0], "second": pair[1], **compare(rows[pair[0]], rows[pair[1]])}
    return result
