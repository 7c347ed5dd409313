"""Maths answers: equal after LaTeX clean-up, or decided by the exact grammar of
:mod:`~vlm_capcurriculum.rewards.mathvalue`; None for the rest (roots, pi, variables, relations), which the scorer
sends to :func:`vlm_capcurriculum.rewards.symbolic.equivalent` in a guarded worker process.
"""

from __future__ import annotations

from vlm_capcurriculum.rewards.bounds import MAX_ANSWER_CHARS
from vlm_capcurriculum.rewards.latex import clean, squash
from vlm_capcurriculum.rewards.mathvalue import parse_value, values_equal
from vlm_capcurriculum.rewards.value import is_relation


def verify_math_exact(answer: str, gold: str) -> bool | None:
    if len(answer) > MAX_ANSWER_CHARS or len(gold) > MAX_ANSWER_CHARS:
        return squash(answer) == squash(gold)  # too long to parse: only an identical answer counts
    pred_clean, gold_clean = clean(answer), clean(gold)
    if not pred_clean:
        return False
    if squash(pred_clean) == squash(gold_clean):
        return True
    gold_value = parse_value(gold_clean)
    pred_value = parse_value(pred_clean)
    if is_relation(gold_value) or is_relation(pred_value):
        # An equation (2x + 4y - 3 = 0) is compared with the whole other equation, label side included
        # (y = -x/2 + 3/4), not with its right-hand side.
        gold_value = parse_value(gold_clean, strip_labels=False)
        pred_value = parse_value(pred_clean, strip_labels=False)
    if gold_value is None or pred_value is None:
        return None
    return values_equal(pred_value, gold_value)
