"""Yes/no questions: whether an answer says yes or no.

A first yes/no word decides ("Yes, there is a dog."; "True", "correct" count); else the answer must hold yes/no
words of one kind only ("There is no dog." is no). An answer that says both says neither ("yes or no", "No, yes",
"Yes, the answer is no"), as does a negated one ("not yes") or a refusal ("N/A", "Not sure"). "Yes, there are no
clouds." is yes: that "no" is a determiner, not an answer.
"""

from __future__ import annotations

import re

from vlm_capcurriculum.rewards.fold import fold_words
from vlm_capcurriculum.schema.answer import AnswerSpec

_YES_FIRST = frozenset({"yes", "y", "yeah", "yep", "yup", "true", "correct", "right", "affirmative", "是", "对"})
_NO_FIRST = frozenset({"no", "n", "nope", "false", "incorrect", "wrong", "negative", "否", "不是", "不"})
_YES_ANYWHERE = frozenset({"yes", "true"})
_NO_ANYWHERE = frozenset({"no", "false"})
_HEDGE = re.compile(r"^\W*(yes|no|true|false)\s*(?:/|or|and)\s*(yes|no|true|false)\b", re.IGNORECASE)
# A yes/no word standing alone: followed by punctuation or the end ("No, yes", "Yes. No.", "the answer is no").
_STANDALONE = re.compile(r"\b(yes|yeah|yep|true|no|nope|false)\b(?=\s*(?:[.,;:!?)\]*]|$))", re.I)
# Answers that decline to answer: "N/A", "No idea", "No way to tell", "Not sure" say neither yes nor no.
_NON_ANSWER = re.compile(
    r"^\W*(?:n\s*/\s*a\b|no\s+(?:idea|clue|answer|comment|information|data|way\s+to)\b"
    r"|not\s+(?:sure|applicable|known|certain|clear|determinable)\b|unknown\b|unsure\b|(?:i\s+)?(?:don't|do\s+not)\s+know\b"
    r"|(?:it\s+)?(?:cannot|can't)\s+be\s+(?:determined|known|told)\b)",
    re.IGNORECASE,
)
_NEGATED = re.compile(r"\b(?:not|isn't|aren't|never)\s+(?:yes|no|true|false)\b", re.IGNORECASE)


def parse_yesno(answer: str) -> bool | None:
    """True for yes, False for no, None when the answer says neither or both."""
    if _HEDGE.match(answer.strip()) or _NEGATED.search(answer) or _NON_ANSWER.match(answer.strip()):
        return None
    words = fold_words(answer, drop_articles=False)
    if not words:
        return None
    standalone = {word.lower() in _YES_FIRST for word in _STANDALONE.findall(answer)}
    if words[0] in _YES_FIRST or words[0] in _NO_FIRST:
        said = words[0] in _YES_FIRST
        return None if (not said) in standalone else said
    said_yes = any(word in _YES_ANYWHERE for word in words)
    said_no = any(word in _NO_ANYWHERE for word in words)
    if said_yes != said_no:
        return said_yes
    return None


def verify_yesno(answer: str, spec: AnswerSpec) -> bool:
    """A gold that says neither yes nor no matches nothing."""
    gold = parse_yesno(spec.answer)
    return gold is not None and parse_yesno(answer) == gold
