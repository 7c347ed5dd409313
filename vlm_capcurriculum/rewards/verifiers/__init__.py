"""One verifier per answer type, each parsing an answer apart from deciding equality (Math-Verify's split), so
pipelines reuse the parsers. ``EXACT_VERIFIERS[type](answer, spec)`` is True/False, or None when only the symbolic
path can decide (``math``, and ``number`` answers written as maths).
"""

from __future__ import annotations

from collections.abc import Callable

from vlm_capcurriculum.rewards.verifiers.choice import parse_choice, verify_choice
from vlm_capcurriculum.rewards.verifiers.math import verify_math_exact
from vlm_capcurriculum.rewards.verifiers.number import verify_number
from vlm_capcurriculum.rewards.verifiers.text import verify_text
from vlm_capcurriculum.rewards.verifiers.yesno import verify_yesno
from vlm_capcurriculum.schema.answer import AnswerSpec

EXACT_VERIFIERS: dict[str, Callable[[str, AnswerSpec], bool | None]] = {
    "choice": verify_choice,
    "math": lambda answer, spec: verify_math_exact(answer, spec.answer),
    "number": verify_number,
    "yesno": verify_yesno,
    "text": verify_text,
}

__all__ = ["EXACT_VERIFIERS", "parse_choice"]
