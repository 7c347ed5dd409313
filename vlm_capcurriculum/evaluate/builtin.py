"""``vlmcc eval``'s built-in backend: every benchmark item asked of a served model with the training prompt
and graded by our verifiers, through the data pipelines' job machinery. Rows, verdicts and the summary:
docs/evaluation.md.
"""

from __future__ import annotations

import asyncio
import os
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vlm_capcurriculum.data.io import read_jsonl
from vlm_capcurriculum.data.request import InputError
from vlm_capcurriculum.evaluate.grading import GRADING, grade

#: Sampling defaults of evaluation. Temperature 0 as the paper's evaluation (VLMEvalKit, greedy); 2048 new tokens
#: is ours (the paper does not state its evaluation limit), long enough for the trained reasoning lengths.
EVAL_TEMPERATURE = 0.0
EVAL_MAX_TOKENS = 2048
#: Verdicts of a per-item row; only ``correct`` counts as right. ``ungraded`` (a VLMEvalKit benchmark whose per-item
#: file has no verdict) is counted but left out of the accuracy.
VERDICTS = ("correct", "wrong", "no_answer", "error", "ungraded")
NO_SOURCE = "(no source)"


class TokenCounter:
    """Lengths of answers in a tokenizer's tokens, for servers that report no usage. Loaded on first use."""

    def __init__(self, name_or_path: str) -> None:
        self.name_or_path = name_or_path
        self._tokenizer: Any = None

    def __call__(self, text: str) -> int:
        if self._tokenizer is None:
            from transformers import AutoTokenizer

            self._tokenizer = AutoTokenizer.from_pretrained(self.name_or_path)
        return len(self._tokenizer(text, add_special_tokens=False)["input_ids"])


def response_length(sample: Any, counter: TokenCounter | None) -> tuple[int | None, str | None]:
    """``(tokens, source)``: the server's count, else the tokenizer's, else ``(None, None)``."""
    if getattr(sample, "completion_tokens", None) is not None:
        return int(sample.completion_tokens), "server"
    if counter is not None:
        return counter(sample.text), "tokenizer"
    return None, None


def make_eval(
    backend: Any,
    *,
    image_root: str | os.PathLike[str],
    sampling: Any,
    prompt: Any = None,
    system: str | None = None,
    tokens: TokenCounter | None = None,
) -> Any:
    """The job ``process`` of evaluation (rows from :func:`~vlm_capcurriculum.data.inputs.record_rows`)."""
    from vlm_capcurriculum.data.client import RequestFailed
    from vlm_capcurriculum.data.inputs import over_records
    from vlm_capcurriculum.data.prompting import PromptTemplate
    from vlm_capcurriculum.data.request import ChatRequest

    template = prompt or PromptTemplate.training_format()
    root = Path(image_root)

    async def process(record: Any, runner: Any) -> Any:
        item = {
            "id": record.id,
            "source": record.source or NO_SOURCE,
            "capability": record.capability,
            "problem": record.problem,
            "images": list(record.images),
            "answer": record.answer,
            "answer_type": record.answer_type,
            "choices": dict(record.choices),
            "model": backend.model,
        }
        request = ChatRequest.user(
            template.fill(problem=record.problem), [root / image for image in record.images], system=system
        )
        try:
            completion = await runner.complete(backend, request, sampling)
        except RequestFailed as err:
            return {
                **item,
                "prediction": None,
                "extracted": None,
                "correct": False,
                "verdict": "error",
                "error": str(err),
                "response_tokens": None,
                "length_source": None,
                "finish_reason": None,
            }
        sample = completion.samples[0]
        # Grading may wait on the verifiers' guarded symbolic workers: off the event loop, as pass@K does.
        [result] = await asyncio.to_thread(grade, [sample.text], [record.ground_truth()], [record.answer_type])
        length, length_source = await asyncio.to_thread(response_length, sample, tokens)
        verdict = "correct" if result.correct else ("no_answer" if result.extracted is None else "wrong")
        return {
            **item,
            "prediction": sample.text,
            "extracted": result.extracted,
            "correct": result.correct,
            "verdict": verdict,
            "response_tokens": length,
            "length_source": length_source,
            "finish_reason": sample.finish_reason,
        }

    return over_records(process)


@dataclass
class _Tally:
    items: int = 0
    correct: int = 0
    errors: int = 0
    ungraded: int = 0

    def add(self, row: Mapping[str, Any]) -> None:
        self.items += 1
        self.correct += bool(row.get("correct"))
        self.errors += row.get("verdict") == "error"
        self.ungraded += row.get("verdict") == "ungraded"

    def to_dict(self) -> dict[str, Any]:
        graded = self.items - self.ungraded
        result = {
            "items": self.items,
            "correct": self.correct,
            "accuracy": self.correct / graded if graded else None,
            "errors": self.errors,
        }
        if self.ungraded:
            result["ungraded"] = self.ungraded
        return result


def summarize(rows: Iterable[Mapping[str, Any]], *, invalid_rows: int = 0, **meta: Any) -> dict[str, Any]:
    """Accuracy overall, per benchmark (``source``) and per capability, over every item (an ``error`` row counts as
    wrong), plus verdict counts, response lengths and how often the length limit was hit."""
    overall, by_source, by_capability = _Tally(), {}, {}
    verdicts: Counter[str] = Counter()
    lengths: list[int] = []
    length_sources: Counter[str] = Counter()
    limit_hits = 0
    for row in rows:
        overall.add(row)
        by_source.setdefault(str(row.get("source") or NO_SOURCE), _Tally()).add(row)
        by_capability.setdefault(str(row.get("capability")), _Tally()).add(row)
        verdicts[str(row.get("verdict"))] += 1
        if row.get("response_tokens") is not None:
            lengths.append(int(row["response_tokens"]))
            length_sources[str(row.get("length_source"))] += 1
        limit_hits += row.get("finish_reason") == "length"
    answered = overall.items - overall.errors
    return {
        **overall.to_dict(),
        "invalid_rows": invalid_rows,
        "verdicts": {v: verdicts.get(v, 0) for v in VERDICTS if v != "ungraded" or verdicts.get(v)},
        "by_source": {name: tally.to_dict() for name, tally in sorted(by_source.items())},
        "by_capability": {name: tally.to_dict() for name, tally in sorted(by_capability.items())},
        "response_tokens": {
            "mean": sum(lengths) / len(lengths) if lengths else None,
            "counted": len(lengths),
            "sources": dict(length_sources),
        },
        "length_limit_hit": {"count": limit_hits, "share": limit_hits / answered if answered else None},
        "grading": GRADING,
        **meta,
    }


def read_eval_rows(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The per-item rows of an evaluation output; a line that is not a JSON object with an ``id`` is an error
    naming it."""
    rows = []
    for number, row in read_jsonl(path):
        if "id" not in row:
            raise InputError(f"{path}:{number}: not an evaluation row (a JSON object with an 'id')")
        rows.append(row)
    return rows
