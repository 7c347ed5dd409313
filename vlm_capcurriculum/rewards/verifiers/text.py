"""Short text answers (colours, objects, names): equal after folding (:mod:`~vlm_capcurriculum.rewards.fold`).

"Red.", "red", "a red" and "red color" equal "red"; a list in another order is the same list; a sentence ending by
stating the gold ("The car is red.") counts, a negation ("The car is not red.") does not. Yes/no and number golds
are graded by those rules, so "2" and "two" agree.
"""

from __future__ import annotations

from vlm_capcurriculum.rewards.fold import COPULAS, fold, fold_words
from vlm_capcurriculum.rewards.latex import clean
from vlm_capcurriculum.rewards.quantity import parse_quantity, quantities_equal
from vlm_capcurriculum.rewards.verifiers.number import parse_number
from vlm_capcurriculum.rewards.verifiers.yesno import parse_yesno
from vlm_capcurriculum.schema.answer import AnswerSpec

_COLOUR_SUFFIX = ("color", "colored", "colour", "coloured")


def _core(words: list[str]) -> list[str]:
    while len(words) > 1 and words[-1] in _COLOUR_SUFFIX:
        words = words[:-1]
    return words


def _phrases(words: list[str]) -> set[str]:
    """The phrases of a list answer ("red and white", "white, red"), as a set: their order carries no meaning."""
    phrases, current = set(), []
    for word in words:
        if word in ("and", "&"):
            phrases.add(" ".join(current))
            current = []
        else:
            current.append(word)
    phrases.add(" ".join(current))
    return phrases - {""}


def verify_text(answer: str, spec: AnswerSpec) -> bool:
    gold_text = spec.answer
    if fold(gold_text, drop_articles=False) in {"yes", "no", "true", "false"}:
        return parse_yesno(answer) == parse_yesno(gold_text)
    gold_number = parse_quantity(clean(gold_text))
    if gold_number is not None and gold_number.value is not None:
        pred_number = parse_number(answer)
        return pred_number is not None and quantities_equal(pred_number, gold_number)
    gold = _core(fold_words(gold_text))
    pred = _core(fold_words(answer))
    if not gold or not pred:
        return False
    if pred == gold or _phrases(pred) == _phrases(gold) != {" ".join(gold)}:
        return True
    tail = pred[-(len(gold) + 1) :]
    return len(pred) > len(gold) and tail[0] in COPULAS and tail[1:] == gold
