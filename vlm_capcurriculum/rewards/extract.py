"""Finding the final answer in a model response (``<think> reasoning </think> \\boxed{answer}``).

The answer is looked for in the *answer region*, the response without its reasoning: a guess boxed half-way through
the thinking never counts, and a response whose thinking never closed (truncated) has no answer. Exception: when a
closed reasoning block is followed by nothing, its last box is the answer (the paper's reward, MathRuler on the last
box anywhere, credits it too; the format score does not).

``extraction="paper"`` (the default everywhere a reward is computed) is step 1 only: the paper's reward grades the
last box and nothing else, and a policy rewarded for "The answer is 5." would lose its reason to box.
``"lenient"`` (pass@K on base models, evaluation, dataset conversion) is the whole chain, first hit wins:

1. the last top-level ``\\boxed{...}`` / ``\\fbox{...}`` / ``\\framebox{...}`` with balanced braces;
2. the sentence after the last answer phrase ("final answer is", "Answer:", "I choose"...);
3. for ``math``, the last math span (``$...$``, ``\\(...\\)``...) or stand-alone number of the region's tail, whichever
   ends last; for the short types, the whole region when it is short, else its last sentence.

Every scan is linear in the input (the quadratic-prone fallbacks look only at a bounded tail), so extraction needs
no time limit of its own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal, get_args

from vlm_capcurriculum.rewards.bounds import FALLBACK_TAIL_CHARS, PHRASE_TAIL_CHARS, SHORT_REGION_CHARS
from vlm_capcurriculum.rewards.brackets import top_level

ExtractionMode = Literal["paper", "lenient"]
EXTRACTION_MODES: tuple[str, ...] = get_args(ExtractionMode)


def check_extraction(extraction: str) -> None:
    """Raise ``ValueError`` for an unknown extraction mode (a configuration error, caught at the first call)."""
    if extraction not in EXTRACTION_MODES:
        raise ValueError(f"extraction must be one of {', '.join(EXTRACTION_MODES)}, got {extraction!r}")


THINK_OPEN = re.compile(r"<\s*think\s*>", re.IGNORECASE)
THINK_CLOSE = re.compile(r"<\s*/\s*think\s*>", re.IGNORECASE)
# Chat-template tokens that leak into decoded text: nothing after them is the model's answer.
_END_TOKENS = re.compile(r"<\|(?:im_end|im_start|endoftext|eot_id|end_of_text)\|>")

_BOX_TOKENS = re.compile(r"\\(?:boxed|fbox|framebox)\s*\{|\\[{}\\]|[{}]")

_ANSWER_PHRASE = re.compile(
    r"(?:(?:final\s+answer|correct\s+(?:answer|option|choice)|the\s+answer|answer)\s*(?:\*\*)?\s*"
    r"(?:is\s*[:：]?|[:：=])|\bI\s+(?:would\s+)?(?:choose|select|pick|go\s+with))\s*(?:\*\*)?",
    re.IGNORECASE,
)
# End of the sentence that holds an answer: a newline, or ., !, ? followed by a space or the end. A decimal point
# is followed by a digit and never ends a sentence.
_SENTENCE_END = re.compile(r"\n|[.!?。](?=\s|$)")
_MATH_SPAN = re.compile(r"\$\$(.+?)\$\$|\\\[(.+?)\\\]|\\\((.+?)\\\)|\$([^$]+?)\$", re.DOTALL)
_NUMBER = re.compile(r"(?<![\w.\\])[-+−]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:\s*/\s*\d+(?:\.\d+)?)?(?:\s*%)?")
_PROSE_WORDS = re.compile(r"(?<![\\A-Za-z])[A-Za-z]{2,}")

SHORT_TYPES = frozenset({"choice", "number", "yesno", "text"})


@dataclass(frozen=True)
class Extraction:
    """An extracted answer, where it came from, and every top-level box of the region."""

    answer: str
    source: str
    boxes: tuple[str, ...] = ()


def answer_region(response: str) -> str:
    """The response after the last ``</think>`` (a template may open ``<think>`` in the prompt), cut at an unclosed
    ``<think>`` (unfinished reasoning) and at a chat-template end token."""
    closes = list(THINK_CLOSE.finditer(response))
    region = response[closes[-1].end() :] if closes else response
    opened = THINK_OPEN.search(region)
    if opened:
        region = region[: opened.start()]
    end = _END_TOKENS.search(region)
    if end:
        region = region[: end.start()]
    return region


def find_boxes(text: str) -> list[str]:
    """Contents of the top-level, balanced boxes of ``text``, in order. An unclosed box is ignored rather than
    swallowing the boxes after it; a box that is the whole content of its box is peeled (``\\boxed{\\boxed{5}}``)."""
    stack: list[int] = []  # opener start of a box brace, -1 for a plain brace
    content_start: dict[int, int] = {}  # opener start -> content start
    spans: dict[int, tuple[int, int]] = {}  # opener start -> (content start, content end) of balanced boxes
    for match in _BOX_TOKENS.finditer(text):
        token = match.group()
        if token == "{":
            stack.append(-1)
        elif token == "}":
            if stack:
                opener = stack.pop()
                if opener >= 0:
                    spans[opener] = (content_start[opener], match.start())
        elif len(token) == 2:
            continue  # \{ \} \\ are not braces
        else:
            stack.append(match.start())
            content_start[match.start()] = match.end()
    top: list[str] = []
    last_end = -1
    for opener in sorted(spans):
        start, end = spans[opener]
        if opener < last_end:
            continue  # inside an earlier top-level box
        last_end = end
        start, end = _peel(text, spans, start, end)
        content = text[start:end].strip()
        if content:
            top.append(content)
    return top


def _peel(text: str, spans: dict[int, tuple[int, int]], start: int, end: int) -> tuple[int, int]:
    """Narrow a box's content span while it is exactly one inner box (whitespace aside)."""
    while True:
        first = start
        while first < end and text[first].isspace():
            first += 1
        last = end - 1
        while last > first and text[last].isspace():
            last -= 1
        inner = spans.get(first)
        if inner is None or inner[1] != last:
            return start, end
        start, end = inner


def phrase_tail(region: str) -> str | None:
    """The sentence after the last answer phrase ("The final answer is $7$." gives ``$7$``), or None."""
    last = None
    for last in _ANSWER_PHRASE.finditer(region):  # noqa: B007 - we want the last match
        pass
    if last is None:
        return None
    tail = region[last.end() : last.end() + PHRASE_TAIL_CHARS]
    end = _SENTENCE_END.search(tail)
    if end:
        tail = tail[: end.start()]
    tail = strip_wrappers(tail)
    return tail or None


def strip_wrappers(text: str) -> str:
    """``text`` without surrounding whitespace, markdown bold, math delimiters, quotes and final punctuation."""
    text = text.strip()
    previous = None
    while text != previous:
        previous = text
        text = text.strip().strip("*").strip()
        for left, right in (("$$", "$$"), ("\\[", "\\]"), ("\\(", "\\)"), ("$", "$"), ('"', '"'), ("`", "`")):
            if text.startswith(left) and text.endswith(right) and len(text) >= len(left) + len(right):
                text = text[len(left) : len(text) - len(right)]
        text = text.rstrip(" .,;:。")  # not "!": 10! is a factorial
    return text.strip()


def last_math_or_number(text: str) -> tuple[str, str] | None:
    """The last math span or stand-alone number of ``text``'s tail, whichever ends last, with its kind."""
    tail = text[-FALLBACK_TAIL_CHARS:]
    best: tuple[int, str, str] | None = None
    for match in _MATH_SPAN.finditer(tail):
        content = next(group for group in match.groups() if group is not None).strip()
        if content.strip("$ "):
            best = (match.end(), content, "math_span")
    for match in _NUMBER.finditer(tail):
        if best is None or match.end() > best[0]:
            best = (match.end(), match.group().strip(), "number")
    if best is None:
        return None
    return best[1], best[2]


def _after_last_equals(text: str) -> str:
    """``x = \\frac{24}{3} = 8`` answers ``8``: a derivation's result is its last right-hand side."""
    cut = -1
    for i, char in top_level(text):
        if char == "=" and text[i - 1 : i] not in ("<", ">", "!", "\\"):
            cut = i
    rest = text[cut + 1 :].strip() if cut >= 0 else text
    return rest or text


def _math_from_sentence(sentence: str) -> str | None:
    """Reduce a prose sentence to its math answer ("The volume of $V$ is 120" gives ``120``)."""
    if len(_PROSE_WORDS.findall(_MATH_SPAN.sub(" ", sentence))) < 3:
        return sentence  # already an answer: "$14{,}916$", "28 percent", "x \\geq 5"
    for verb in (" is ", " are ", " equals ", " was ", " be "):
        index = sentence.rfind(verb)
        if index >= 0:
            rest = strip_wrappers(sentence[index + len(verb) :])
            if rest and len(_PROSE_WORDS.findall(_MATH_SPAN.sub(" ", rest))) < 3:
                return rest
    found = last_math_or_number(sentence)
    return _after_last_equals(found[0]) if found else None


def extract(response: str, answer_type: str = "math", *, extraction: ExtractionMode = "paper") -> Extraction | None:
    """The final answer of ``response`` for an answer of ``answer_type``, or None."""
    check_extraction(extraction)
    region = answer_region(response)
    boxes = find_boxes(region)
    if boxes:
        return Extraction(boxes[-1], "boxed", tuple(boxes))
    if not region.strip():  # a closed reasoning block followed by nothing: its last box is the answer
        closes = list(THINK_CLOSE.finditer(response))
        if not closes:
            return None
        opens = list(THINK_OPEN.finditer(response, 0, closes[-1].start()))
        boxes = find_boxes(response[opens[-1].end() if opens else 0 : closes[-1].start()])
        return Extraction(boxes[-1], "boxed_in_reasoning", tuple(boxes)) if boxes else None
    if extraction == "paper":
        return None
    tail = phrase_tail(region)
    if tail is not None:
        if answer_type in SHORT_TYPES:
            return Extraction(tail, "phrase")
        answer = _math_from_sentence(tail)
        if answer:
            return Extraction(answer, "phrase")
    if answer_type in SHORT_TYPES:
        stripped = strip_wrappers(region)
        if not stripped:
            return None
        if len(stripped) <= SHORT_REGION_CHARS:
            return Extraction(stripped, "region")
        tail = stripped[-SHORT_REGION_CHARS * 2 :]
        pieces = [piece for piece in _SENTENCE_END.split(tail) if piece.strip()]
        return Extraction(strip_wrappers(pieces[-1] if pieces else tail), "sentence")
    found = last_math_or_number(region)
    if found is None:
        return None
    answer, source = found
    return Extraction(_after_last_equals(answer), source)


def extract_answer(response: str, answer_type: str = "math", *, extraction: ExtractionMode = "paper") -> str | None:
    """The final answer of ``response`` as a string, or None."""
    found = extract(response, answer_type, extraction=extraction)
    return found.answer if found else None
