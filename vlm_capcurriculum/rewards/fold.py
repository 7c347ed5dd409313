"""Folding short text answers to a comparable form: what a human grader would ignore in "The Red." vs "red".

Folding lower-cases, unwraps LaTeX text commands and math delimiters, turns punctuation into spaces (keeping
decimal points and signs inside numbers), drops the articles "a", "an", "the", maps a few spelling variants
(grey/gray, colour/color) and reduces plurals, on both sides alike.
"""

from __future__ import annotations

import re

from vlm_capcurriculum.rewards.latex import clean

_ARTICLES = frozenset({"a", "an", "the"})
_SPELLING = {"grey": "gray", "colour": "color", "coloured": "colored", "centre": "center", "metre": "meter"}
_PUNCTUATION = re.compile(r"(?<!\d)[.,](?!\d)|[!?;:\"“”‘’()\[\]{}*`_~|#<>/\\]|(?<![A-Za-z])'|'(?![A-Za-z])")
_HYPHEN = re.compile(r"(?<=[A-Za-z])-(?=[A-Za-z])")
#: Verbs after which a sentence states its answer ("It is blue.", "The car looks red.").
COPULAS = frozenset({"is", "are", "was", "were", "be", "looks", "appears"})


def markup_free(text: str) -> str:
    """``text`` without LaTeX/markdown wrapping (``\\text{B}``, ``$B$``, ``**B**``), whitespace collapsed."""
    text = clean(text.replace("**", " "))
    return re.sub(r"\s+", " ", text).strip()


def fold_words(text: str, *, drop_articles: bool = True) -> list[str]:
    text = markup_free(text).lower()
    text = _HYPHEN.sub(" ", text)
    text = _PUNCTUATION.sub(" ", text)
    words = []
    for word in text.split():
        if drop_articles and word in _ARTICLES:
            continue
        word = _SPELLING.get(word, word)
        words.append(singular(word))
    return words


def fold(text: str, *, drop_articles: bool = True) -> str:
    return " ".join(fold_words(text, drop_articles=drop_articles))


def singular(word: str) -> str:
    """A rough singular ("apples" -> "apple", "boxes" -> "box", "glasses" -> "glass"), the same on both sides."""
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 4 and word.endswith(("ches", "shes", "sses", "xes", "zes")):
        return word[:-2]
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word
