"""The sample record: one question of one capability, the interchange format of every backend. A record is what a
reader produces after validation, so code holding a :class:`SampleRecord` can rely on its invariants.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from vlm_capcurriculum.schema.answer import ANSWER_TYPES, AnswerSpec, AnswerType
from vlm_capcurriculum.schema.issues import Reason

IMAGE_PLACEHOLDER = "<image>"

# The capabilities of the paper's curriculum, in the paper's order. Names are data, not code: a recipe may
# define other capabilities; these are only the defaults recipes use.
PAPER_CAPABILITIES: tuple[str, ...] = ("perception", "text_reasoning", "visual_reasoning")

# Column names of the record itself; everything else a file carries travels in ``extra``.
CORE_FIELDS: tuple[str, ...] = (
    "id",
    "capability",
    "problem",
    "images",
    "answer",
    "answer_type",
    "choices",
    "pass_rate",
    "source",
)

_LETTER = re.compile(r"[A-J]")


class RecordError(ValueError):
    """A record whose fields contradict each other; ``field`` names the offending one."""

    def __init__(self, field_name: str, message: str) -> None:
        self.field = field_name
        super().__init__(message)


@dataclass(frozen=True)
class SampleRecord:
    """One training question. ``images`` are relative to the stage's image root; ``pass_rate`` is the base model's
    pass@K rate (higher is easier); ``extra`` carries any further columns unchanged."""

    id: str
    capability: str
    problem: str
    answer: str
    answer_type: AnswerType = "math"
    images: tuple[str, ...] = ()
    choices: Mapping[str, str] = field(default_factory=dict)
    pass_rate: float | None = None
    source: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # normalise containers so a record built from lists compares equal to one read from a file
        object.__setattr__(self, "images", tuple(self.images))
        object.__setattr__(self, "choices", dict(self.choices))
        object.__setattr__(self, "extra", dict(self.extra))
        if isinstance(self.answer, str):
            object.__setattr__(self, "answer", self.answer.strip())
        for name in ("id", "capability", "problem", "answer", "answer_type"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value.strip():
                raise RecordError(name, f"must be a non-empty string, got {value!r}")
        for image in self.images:
            if not isinstance(image, str) or not image:
                raise RecordError("images", f"image paths must be non-empty strings, got {image!r}")
        for letter, text in self.choices.items():
            if not (isinstance(letter, str) and _LETTER.fullmatch(letter) and isinstance(text, str)):
                raise RecordError("choices", f"choices must map letters A-J to strings, got {letter!r}: {text!r}")
        for name, _, message in invariant_issues(
            self.problem, self.images, self.answer, self.answer_type, self.choices, self.pass_rate
        ):
            raise RecordError(name, message)
        if self.pass_rate is not None:
            object.__setattr__(self, "pass_rate", float(self.pass_rate))
        overlap = set(self.extra) & set(CORE_FIELDS)
        if overlap:
            raise RecordError("extra", f"extra columns may not reuse record field names: {sorted(overlap)}")

    def answer_spec(self) -> AnswerSpec:
        """The ground truth as a reward sees it (answer, type, choices and capability)."""
        return AnswerSpec(
            answer=self.answer, type=self.answer_type, choices=dict(self.choices), capability=self.capability
        )

    def ground_truth(self) -> str:
        """The ground-truth string a framework passes to the reward (see :meth:`AnswerSpec.to_ground_truth`)."""
        return self.answer_spec().to_ground_truth()

    def to_dict(self) -> dict[str, Any]:
        """Our own row format: the record fields in a fixed order, then the extra columns."""
        row: dict[str, Any] = {name: getattr(self, name) for name in CORE_FIELDS}
        row.update(images=list(self.images), choices=dict(self.choices))
        row.update(self.extra)
        return row


def invariant_issues(
    problem: str | None,
    images: Sequence[str] | None,
    answer: str | None,
    answer_type: str | None,
    choices: Mapping[str, str],
    pass_rate: Any,
) -> list[tuple[str, Reason, str]]:
    """The record's cross-field rules as (field, reason, message), the one home of both the record's check (first
    one raises) and the row reader's (all are reported). A None value is one the reader already reported."""
    issues: list[tuple[str, Reason, str]] = []
    if problem is not None and images is not None and problem.count(IMAGE_PLACEHOLDER) != len(images):
        issues.append(
            (
                "problem",
                "image_placeholder_mismatch",
                f"has {problem.count(IMAGE_PLACEHOLDER)} {IMAGE_PLACEHOLDER} placeholder(s) for {len(images)} image(s)",
            )
        )
    if answer_type is not None and answer_type not in ANSWER_TYPES:
        issues.append(
            (
                "answer_type",
                "unknown_answer_type",
                f"unknown answer type {answer_type!r}; expected one of {', '.join(ANSWER_TYPES)}",
            )
        )
    elif answer_type == "choice":
        if answer is not None and not _LETTER.fullmatch(answer.strip()):
            issues.append(("answer", "bad_type", f"a choice answer must be one letter A-J, got {answer!r}"))
        elif answer is not None and choices and answer.strip() not in choices:
            issues.append(
                ("answer", "choice_not_in_choices", f"choice {answer!r} is not among the choices {sorted(choices)}")
            )
    elif answer_type is not None and choices:
        issues.append(
            ("choices", "bad_choices", f"choices are only meaningful for answer_type 'choice', not {answer_type!r}")
        )
    if pass_rate is not None:
        if isinstance(pass_rate, bool) or not isinstance(pass_rate, (int, float)):
            issues.append(("pass_rate", "bad_type", f"must be a number in [0, 1], got {pass_rate!r}"))
        elif math.isnan(pass_rate) or not 0.0 <= pass_rate <= 1.0:
            issues.append(("pass_rate", "pass_rate_out_of_range", f"must be in [0, 1], got {pass_rate!r}"))
    return issues


def with_leading_placeholders(problem: str, images: Sequence[str]) -> str:
    """``problem`` with one ``<image>`` per image prepended, the layout of the paper's perception prompts
    (``"<image>{question}"`` in the reference ``format_for_training.py``)."""
    return IMAGE_PLACEHOLDER * len(images) + problem
