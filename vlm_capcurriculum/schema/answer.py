"""The answer spec: what a ground-truth string carries to a reward.

EasyR1 hands a reward only ``response`` and ``ground_truth``, so the ground truth carries its own answer type: a
plain string as in the paper's released data (one letter ``A``-``J`` is a ``choice`` answer, anything else
``math``; a number, boolean or list of them is that answer written out), or a JSON object string
``{"answer", "type", "choices", "capability"}`` for every other case. A missing or malformed ground truth is an
:class:`AnswerSpecError`, never graded as a maths answer.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

AnswerType = Literal["choice", "math", "number", "yesno", "text"]
ANSWER_TYPES: tuple[str, ...] = get_args(AnswerType)

_PLAIN_LETTER = re.compile(r"[A-J]")
_OPTION_LETTER = re.compile(r"[A-Z]")
# A string written as a JSON object ({"answer": ...}), as opposed to a LaTeX set such as {1, 2}.
_LOOKS_LIKE_JSON = re.compile(r'^\{\s*"')

logger = logging.getLogger(__name__)


class AnswerSpecError(ValueError):
    """A ground truth that cannot be understood; ``kind`` names the defect, so it can be warned about once per kind."""

    def __init__(self, message: str, kind: str = "bad_spec") -> None:
        super().__init__(message)
        self.kind = kind


def _plain_answer(value: Any) -> str:
    """A ground truth that is not a string, as the answer string it stands for (see the module docstring)."""
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):
        value = value.tolist()  # numpy scalars and arrays from parquet columns
    if value is None:
        raise AnswerSpecError("the ground truth is missing (None)", "missing")
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise AnswerSpecError(f"the ground truth is {value!r}, not an answer", "missing")
        return repr(value)
    if isinstance(value, (list, tuple)):
        if not value:
            raise AnswerSpecError("the ground truth is an empty list", "missing")
        return ", ".join(_plain_answer(item) for item in value)
    if isinstance(value, str):
        return value
    raise AnswerSpecError(f"ground truth must be a string or mapping, got {type(value).__name__}", "bad_value")


@dataclass(frozen=True)
class AnswerSpec:
    answer: str
    type: AnswerType = "math"
    choices: Mapping[str, str] = field(default_factory=dict)
    capability: str | None = None

    def __post_init__(self) -> None:
        if self.type not in ANSWER_TYPES:
            raise AnswerSpecError(f"unknown answer type {self.type!r}; expected one of {', '.join(ANSWER_TYPES)}")
        if not isinstance(self.answer, str):
            raise AnswerSpecError(f"answer must be a string, got {type(self.answer).__name__}", "bad_value")
        if not self.answer.strip():
            raise AnswerSpecError("the ground-truth answer is empty", "missing")
        for letter, text in self.choices.items():
            if not (isinstance(letter, str) and _OPTION_LETTER.fullmatch(letter) and isinstance(text, str)):
                raise AnswerSpecError(f"choices must map letters A-Z to strings, got {letter!r}: {text!r}")
        if self.capability is not None and not isinstance(self.capability, str):
            raise AnswerSpecError(f"capability must be a string, got {type(self.capability).__name__}")
        if self.type == "choice" and self.choices and self.answer.strip().upper() not in self.choices:
            raise AnswerSpecError(f"choice answer {self.answer!r} is not one of the options {sorted(self.choices)}")

    @classmethod
    def parse(cls, ground_truth: str | Mapping[str, Any] | AnswerSpec) -> AnswerSpec:
        """Decode a ground truth in either encoding (or an already-decoded mapping or spec)."""
        if isinstance(ground_truth, AnswerSpec):
            return ground_truth
        if isinstance(ground_truth, Mapping):
            return cls._from_mapping(ground_truth)
        ground_truth = _plain_answer(ground_truth)
        text = ground_truth.strip()
        if text.startswith("{") and text.endswith("}"):
            try:
                decoded = json.loads(text)
            except json.JSONDecodeError as error:
                if _LOOKS_LIKE_JSON.match(text):  # meant as our JSON encoding; a LaTeX set such as {1, 2} is maths
                    raise AnswerSpecError(f"malformed JSON ground truth: {error}", "malformed_json") from None
                decoded = None
            if isinstance(decoded, dict):
                if "answer" not in decoded:
                    raise AnswerSpecError("ground-truth object has no 'answer'", "bad_spec")
                return cls._from_mapping(decoded)
        if _PLAIN_LETTER.fullmatch(text):
            return cls(answer=text, type="choice")
        return cls(answer=ground_truth, type="math")

    @classmethod
    def _from_mapping(cls, data: Mapping[str, Any]) -> AnswerSpec:
        unknown = set(data) - {"answer", "type", "choices", "capability"}
        if unknown:
            raise AnswerSpecError(
                f"unknown ground-truth keys {sorted(unknown)}; expected answer, type, choices, capability"
            )
        if "answer" not in data:
            raise AnswerSpecError("ground-truth object has no 'answer'")
        answer = _plain_answer(data["answer"])
        choices = data.get("choices") or {}
        if not isinstance(choices, Mapping):
            raise AnswerSpecError(f"'choices' must be an object of letter -> text, got {type(choices).__name__}")
        # Letters in either case, option texts that are numbers (JSON writes 3, not "3"); an absent option (None) is
        # not an option.
        options = {
            (letter.strip().upper() if isinstance(letter, str) else letter): text
            if isinstance(text, str)
            else _plain_answer(text)
            for letter, text in choices.items()
            if text is not None
        }
        answer_type = data.get("type") or ("choice" if options else "math")
        return cls(answer=answer, type=answer_type, choices=options, capability=data.get("capability"))

    def to_ground_truth(self) -> str:
        """The shortest string that :meth:`parse` maps back to this spec."""
        if not self.choices and self.capability is None:
            plain = AnswerSpec.parse(self.answer)
            if plain == self and not self.answer.strip().startswith("{"):
                return self.answer
        payload: dict[str, Any] = {"answer": self.answer, "type": self.type}
        if self.choices:
            payload["choices"] = dict(self.choices)
        if self.capability is not None:
            payload["capability"] = self.capability
        return json.dumps(payload, ensure_ascii=False)


def with_columns(
    spec: AnswerSpec | None,
    *,
    answer_type: Any = None,
    choices: Mapping[str, str] | None = None,
    capability: Any = None,
) -> AnswerSpec | None:
    """The spec a reward scores: ``spec`` (the parsed ground truth; None when unreadable) with a dataset's
    ``answer_type`` / ``choices`` / ``capability`` columns on top (TRL's columns, verl's ``extra_info``); empty columns
    keep the spec's. None (the sample scores 0, warned) when the columns contradict the ground truth."""
    changes: dict[str, Any] = {}
    if answer_type:
        changes["type"] = str(answer_type)
    if choices:
        changes["choices"] = choices
    if capability:
        changes["capability"] = str(capability)
    if spec is None or not changes:
        return spec
    try:
        return dataclasses.replace(spec, **changes)
    except AnswerSpecError as error:
        logger.warning("answer columns %s contradict ground truth %r; scores 0: %s", changes, spec.answer, error)
        return None
