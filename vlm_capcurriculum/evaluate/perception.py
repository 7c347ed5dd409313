"""The paper's error audit (Sec. 5): for every wrong answer, a judge model names the first wrong step and whether it
is a perception, reasoning, misunderstanding or other error. The paper's audit code is not released, so the prompt
is ours (``prompts/perception_audit.txt``). Unreadable replies (``unparsable``) and failed requests (``error``) are
counted in the shares, never dropped. Validation (human labels, image withheld): docs/evaluation.md.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from vlm_capcurriculum.data.io import read_jsonl
from vlm_capcurriculum.data.request import InputError
from vlm_capcurriculum.evaluate.stats import cohen_kappa, wilson

LABELS = ("perception", "reasoning", "misunderstanding", "other")
UNPARSABLE = "unparsable"
ERROR = "error"
#: Every label an audit row can carry, in report order.
ALL_LABELS = (*LABELS, UNPARSABLE, ERROR)
IMAGE_NOTE = "You are shown the image, the question, the correct answer and the model's full response."
CONTROL_NOTE = (
    "The image is NOT shown to you: judge from the question, the correct answer and the model's full response alone."
)
_FENCE = re.compile(r"```[a-zA-Z]*\s*\n?(.*?)```", re.DOTALL)
_PLACEHOLDER = re.compile(r"\s*<image>\s*")


def default_prompt_text() -> str:
    return resources.files("vlm_capcurriculum.evaluate").joinpath("prompts", "perception_audit.txt").read_text("utf-8")


@dataclass(frozen=True)
class JudgeReply:
    label: str
    step: str | None = None
    why: str | None = None


def _normalise_label(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    words = re.sub(r"[^a-z]+", " ", value.lower()).split()  # "Perception", "**perception**", "perception_error"
    return words[0] if words and words[0] in LABELS else None


def _objects(text: str) -> list[dict[str, Any]]:
    """JSON objects in ``text``: fenced blocks first, then the whole text, then every ``{`` that starts one."""
    found: list[dict[str, Any]] = []
    decoder = json.JSONDecoder()
    for chunk in [*_FENCE.findall(text), text]:
        try:
            value = json.loads(chunk.strip())
        except ValueError:
            continue
        if isinstance(value, dict):
            found.append(value)
    for match in re.finditer(r"\{", text):
        try:
            value, _ = decoder.raw_decode(text, match.start())
        except ValueError:
            continue
        if isinstance(value, dict):
            found.append(value)
    return found


def parse_judge_reply(text: str) -> JudgeReply:
    """The first JSON object with a known ``label`` in the judge's reply; ``unparsable`` when there is none."""
    for obj in _objects(text or ""):
        label = _normalise_label(obj.get("label"))
        if label is not None:
            step, why = obj.get("step"), obj.get("why")
            return JudgeReply(label, None if step is None else str(step), None if why is None else str(why))
    return JudgeReply(UNPARSABLE)


def gold_text(row: Mapping[str, Any]) -> str:
    """The correct answer as the judge reads it (a choice letter with its option's text)."""
    answer = str(row.get("answer", ""))
    choices = row.get("choices") or {}
    return f"{answer} ({choices[answer]})" if isinstance(choices, Mapping) and answer in choices else answer


def is_audited(row: Mapping[str, Any]) -> bool:
    """Wrong answers with a response (``wrong`` and ``no_answer``); an ``error`` row has nothing to judge."""
    correct = row.get("correct")
    if correct is None:
        correct = row.get("verdict") == "correct"
    return not correct and row.get("verdict") != "error" and isinstance(row.get("prediction"), str)


def make_audit(backend: Any, *, image_root: str | Path, sampling: Any, prompt: Any, control: bool) -> Any:
    """The job ``process`` of the audit over ``vlmcc eval`` rows (``control``: the image withheld)."""
    from vlm_capcurriculum.data.client import RequestFailed
    from vlm_capcurriculum.data.request import ChatRequest

    root = Path(image_root)

    async def process(row: dict[str, Any], runner: Any) -> dict[str, Any]:
        question = _PLACEHOLDER.sub("\n", str(row.get("problem", ""))).strip()
        text = prompt.fill(
            image_note=CONTROL_NOTE if control else IMAGE_NOTE,
            question=question,
            answer=gold_text(row),
            response=row["prediction"],
        )
        images = [] if control else [root / image for image in row.get("images") or []]
        base = {
            "id": row["id"],
            "source": row.get("source"),
            "capability": row.get("capability"),
            "control": control,
            "images_shown": len(images),
        }
        try:
            completion = await runner.complete(backend, ChatRequest.user(text, images), sampling)
        except (RequestFailed, InputError) as err:
            return {**base, "label": ERROR, "step": None, "why": None, "error": str(err), "reply": None}
        reply = parse_judge_reply(completion.text)
        return {**base, "label": reply.label, "step": reply.step, "why": reply.why, "reply": completion.text}

    return process


def label_shares(labels: Sequence[str]) -> dict[str, Any]:
    """Each label's count, share of the audited items and 95% Wilson interval."""
    counts = Counter(labels)
    total = len(labels)
    shares = {}
    for label in ALL_LABELS:
        count = counts.get(label, 0)
        interval = wilson(count, total)
        shares[label] = {
            "count": count,
            "share": count / total if total else None,
            "ci95": list(interval) if interval else None,
        }
    return {"audited": total, "labels": shares}


def read_human_labels(path: str | Path) -> dict[str, str]:
    """``{id: label}`` from a JSON-lines file of ``{"id", "label"}`` rows; an unknown label or a repeated id is an
    error naming the line."""
    labels: dict[str, str] = {}
    for number, row in read_jsonl(path):
        if "id" not in row:
            raise InputError(f"{path}:{number}: expected an object with 'id' and 'label'")
        label = _normalise_label(row.get("label"))
        if label is None:
            raise InputError(f"{path}:{number}: label {row.get('label')!r} is not one of {', '.join(LABELS)}")
        if str(row["id"]) in labels:
            raise InputError(f"{path}:{number}: id {row['id']!r} labelled twice")
        labels[str(row["id"])] = label
    return labels


def agreement(judge: Mapping[str, str], reference: Mapping[str, str]) -> dict[str, Any]:
    """Cohen's kappa and raw agreement of the judge's labels with ``reference`` over the ids both have (a judge
    ``unparsable``/``error`` counts as a disagreement); ids only in the reference are counted as ``missing``."""
    common = [item for item in reference if item in judge]
    first = [reference[item] for item in common]
    second = [judge[item] for item in common]
    kappa = cohen_kappa(first, second)
    return {
        "items": len(common),
        "missing": len(reference) - len(common),
        "agreement": sum(a == b for a, b in zip(first, second, strict=True)) / len(common) if common else None,
        "kappa": kappa,
    }


def summarize_audit(
    rows: Sequence[Mapping[str, Any]],
    *,
    eval_rows: int,
    not_audited: Mapping[str, int],
    control_rows: Sequence[Mapping[str, Any]] | None = None,
    human: Mapping[str, str] | None = None,
    **meta: Any,
) -> dict[str, Any]:
    judge = {str(row["id"]): str(row["label"]) for row in rows}
    summary: dict[str, Any] = {
        "eval_rows": eval_rows,
        "not_audited": dict(not_audited),
        **label_shares([row["label"] for row in rows]),
        # e.g. rows read back from VLMEvalKit, whose images stay in its own data folder: judged without the image
        "audited_without_image": sum(not row.get("images_shown") for row in rows),
        "by_source": {
            source: label_shares([row["label"] for row in rows if (row.get("source") or "") == source])
            for source in sorted({str(row.get("source") or "") for row in rows})
        },
    }
    if control_rows is not None:
        control = {str(row["id"]): str(row["label"]) for row in control_rows}
        summary["control"] = {
            "note": "same judge and prompt, image withheld",
            **label_shares([row["label"] for row in control_rows]),
            "agreement_with_image_run": agreement(control, judge),
        }
    if human is not None:
        summary["human_agreement"] = agreement(judge, human)
    summary.update(meta)
    return summary
