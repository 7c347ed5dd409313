"""Perception-sensitive filtering, the paper's Stage-1 filter (Sec. 3; reference ``data_pipeline/filter_perception.py``
with Qwen2.5-VL-7B and -32B): keep a question only if every filter model answers it wrongly from the image alone and
rightly from the caption alone, a failure of perception rather than of knowledge or reasoning.

Answers are graded by the rewards' ``choice`` verifier. An answer naming no option is *unanswered*: as in the
reference, where an unextractable letter is neither right nor wrong, its question is not kept (nothing shows the
model misperceived) unless ``count_unanswered_as_wrong``. ``prompts="reference"`` asks and reads as the reference
did (its prompts, :func:`reference_letter`), though both requests are chat messages here (the reference sent the
caption-only prompt as raw text). ``data_recipes/README.md`` lists the reject reasons and the report, and compares
the two readings.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from vlm_capcurriculum.data.client import Backend
from vlm_capcurriculum.data.inputs import BAD_INPUT, over_records
from vlm_capcurriculum.data.jobs import Process, Reject
from vlm_capcurriculum.data.prompting import PromptTemplate
from vlm_capcurriculum.data.request import ChatRequest, SamplingParams
from vlm_capcurriculum.data.runner import Runner
from vlm_capcurriculum.rewards import AnswerSpec, verify
from vlm_capcurriculum.rewards.verifiers import parse_choice
from vlm_capcurriculum.schema import IMAGE_PLACEHOLDER, SampleRecord

#: Greedy and short (reference filter_perception.py: temperature 0, max_tokens 8; 16 here so "B. red" fits).
FILTER_SAMPLING = SamplingParams(temperature=0.0, max_tokens=16)
CAPTION_COLUMN = "caption"
IMAGE_STATES = ("right", "wrong", "unanswered")
PROMPT_SETS = ("ours", "reference")
_ANSWER_IS = re.compile(r"answer\s*[:\-]?\s*([ABCD])", re.IGNORECASE)
_LONE_LETTER = re.compile(r"\b([ABCD])\b")


@dataclass(frozen=True)
class Verdict:
    """One model on one question: what it answered in each condition and how that grades."""

    image_answer: str
    caption_answer: str
    image: str  # ``right``, ``wrong`` (names another option) or ``unanswered`` (names none)
    caption_right: bool

    def keeps(self, unanswered_is_wrong: bool = False) -> bool:
        image_wrong = self.image == "wrong" or (unanswered_is_wrong and self.image == "unanswered")
        return image_wrong and self.caption_right


def reference_letter(answer: str) -> str:
    """The option letter the reference's filter read from a reply ("" for none): the letter after "answer",
    case-insensitive, else the first A, B, C or D standing alone in the upper-cased reply. Any article "a" counts."""
    text = answer.strip()
    found = _ANSWER_IS.search(text) or _LONE_LETTER.search(text.upper())
    return found.group(1).upper() if found else ""


def grade(answer: str, spec: AnswerSpec, reading: str = "ours") -> str:
    """``right``, ``wrong`` or ``unanswered``: by the rewards' choice verifier, or as the reference read replies."""
    if reading == "reference":
        letter = reference_letter(answer)
        return "unanswered" if not letter else "right" if letter == spec.answer.strip().upper() else "wrong"
    if verify(answer, spec):
        return "right"
    return "wrong" if parse_choice(answer, spec.choices) is not None else "unanswered"


def _slots(record: SampleRecord) -> dict[str, str]:
    """What a filter prompt may name: the problem, and the question and option lines on their own."""
    problem = record.problem.replace(IMAGE_PLACEHOLDER, "").strip()
    question = record.extra.get("question")  # generate writes it; else the problem up to its option lines
    if not isinstance(question, str) or not question.strip():
        question = problem.split("\nOptions:")[0].strip()
    options = "\n".join(f"{letter}. {text}" for letter, text in sorted(record.choices.items()))
    return {"question": question, "options": options}


def image_only_text(record: SampleRecord, template: PromptTemplate) -> str:
    return template.fill(problem=record.problem, **_slots(record))


def caption_only_text(record: SampleRecord, caption: str, template: PromptTemplate) -> str:
    problem = record.problem.replace(IMAGE_PLACEHOLDER, "").strip()
    return template.fill(caption=caption, problem=problem, **_slots(record))


@dataclass
class ModelReport:
    model: str
    rows: int = 0
    image_right: int = 0
    caption_right: int = 0
    kept: int = 0
    confusion: dict[str, dict[str, int]] = field(
        default_factory=lambda: {state: {"caption_right": 0, "caption_wrong": 0} for state in IMAGE_STATES}
    )

    def add(self, verdict: Verdict, unanswered_is_wrong: bool) -> None:
        self.rows += 1
        self.image_right += verdict.image == "right"
        self.caption_right += verdict.caption_right
        self.kept += verdict.keeps(unanswered_is_wrong)
        self.confusion[verdict.image]["caption_right" if verdict.caption_right else "caption_wrong"] += 1

    def as_dict(self) -> dict[str, Any]:
        rate = (lambda n: n / self.rows) if self.rows else (lambda n: None)
        return {
            **asdict(self),
            "image_accuracy": rate(self.image_right),
            "caption_accuracy": rate(self.caption_right),
            "kept_fraction": rate(self.kept),
        }


@dataclass
class FilterReport:
    """What the filter decided: per model, and for the intersection (``kept``)."""

    models: list[ModelReport]
    graded: int = 0  # questions every model answered in both conditions (not failed or bad rows)
    kept: int = 0
    unanswered_is_wrong: bool = False

    @classmethod
    def empty(cls, models: Sequence[str], unanswered_is_wrong: bool = False) -> FilterReport:
        return cls([ModelReport(m) for m in models], unanswered_is_wrong=unanswered_is_wrong)

    def add(self, verdicts: Sequence[Verdict]) -> bool:
        for report, verdict in zip(self.models, verdicts, strict=True):
            report.add(verdict, self.unanswered_is_wrong)
        keep = all(v.keeps(self.unanswered_is_wrong) for v in verdicts)
        self.graded += 1
        self.kept += keep
        return keep

    def as_dict(self) -> dict[str, Any]:
        return {
            "graded": self.graded,
            "kept": self.kept,
            "kept_fraction": self.kept / self.graded if self.graded else None,
            "unanswered_is_wrong": self.unanswered_is_wrong,
            "models": [m.as_dict() for m in self.models],
        }

    def write(self, path: str | os.PathLike[str]) -> None:
        Path(path).write_text(json.dumps(self.as_dict(), indent=2) + "\n", encoding="utf-8")

    def render(self, file: Any = None) -> None:
        import sys

        from rich.console import Console
        from rich.table import Table

        console = Console(file=file or sys.stderr, width=200)
        table = Table(title=f"filter: kept {self.kept} of {self.graded} graded questions", title_justify="left")
        columns = (
            "model",
            "image acc",
            "caption acc",
            "kept alone",
            *(f"image {s}: caption ok/n" for s in IMAGE_STATES),
        )
        for name in columns:
            table.add_column(name, justify="left" if name == "model" else "right", overflow="fold")

        def pct(value: float | None) -> str:
            return "-" if value is None else f"{value:.1%}"

        for m in self.models:
            d = m.as_dict()
            cells = [
                f"{c['caption_right']}/{c['caption_right'] + c['caption_wrong']}"
                for c in (m.confusion[s] for s in IMAGE_STATES)
            ]
            table.add_row(
                m.model, pct(d["image_accuracy"]), pct(d["caption_accuracy"]), pct(d["kept_fraction"]), *cells
            )
        console.print(table)


def make_filter(
    backends: Sequence[Backend],
    report: FilterReport,
    *,
    image_root: str | os.PathLike[str],
    image_prompt: PromptTemplate | None = None,
    caption_prompt: PromptTemplate | None = None,
    sampling: SamplingParams = FILTER_SAMPLING,
    prompts: str = "ours",
) -> Process:
    """The job ``process`` of the filter (rows from :func:`~vlm_capcurriculum.data.inputs.record_rows`); each
    graded row is added to ``report``. ``prompts="reference"``: the reference's prompts and letter reading."""
    if prompts not in PROMPT_SETS:
        raise ValueError(f"prompts must be one of {', '.join(PROMPT_SETS)}, got {prompts!r}")
    prefix = "reference_" if prompts == "reference" else ""
    image_slots = ("question", "options") if prompts == "reference" else ("problem",)
    image_template = image_prompt or PromptTemplate.packaged(f"{prefix}filter_image.txt", required=image_slots)
    caption_template = caption_prompt or PromptTemplate.packaged(
        f"{prefix}filter_caption.txt", required=("caption", *image_slots)
    )
    root = Path(image_root)

    async def process(record: SampleRecord, runner: Runner) -> dict[str, Any] | Reject:
        caption = record.extra.get(CAPTION_COLUMN)
        problems = []
        if record.answer_type != "choice" or not record.choices:
            problems.append({"field": "choices", "message": "the filter needs a multiple-choice question with options"})
        if not isinstance(caption, str) or not caption.strip():
            problems.append({"field": CAPTION_COLUMN, "message": "missing: the caption-only condition needs it"})
        if problems or not isinstance(caption, str):
            return Reject(BAD_INPUT, {"id": record.id, "problems": problems})
        images = [root / image for image in record.images]
        seen = ChatRequest.user(image_only_text(record, image_template), images)
        read = ChatRequest.user(caption_only_text(record, caption, caption_template))
        answers = await asyncio.gather(
            *(runner.complete(b, request, sampling) for b in backends for request in (seen, read))
        )
        spec = record.answer_spec()
        verdicts = [
            Verdict(image.text, text.text, grade(image.text, spec, prompts), grade(text.text, spec, prompts) == "right")
            for image, text in zip(answers[::2], answers[1::2], strict=True)
        ]
        keep = report.add(verdicts)
        detail = {
            b.model: {
                "image": v.image_answer,
                "caption": v.caption_answer,
                "image_state": v.image,
                "caption_right": v.caption_right,
            }
            for b, v in zip(backends, verdicts, strict=True)
        }
        if keep:
            return {**record.to_dict(), "filter": detail}
        if any(v.image == "right" for v in verdicts):
            reason = "image_right"
        elif any(v.image == "unanswered" for v in verdicts) and not report.unanswered_is_wrong:
            reason = "image_unanswered"
        else:
            reason = "caption_wrong"
        return Reject(reason, {"id": record.id, "filter": detail})

    return over_records(process)
