"""The paper's format reward: ``<think> reasoning </think>`` followed by a ``\\boxed{answer}``.

The paper (``training/reward_functions/math.py`` of UCSC-VLAA/VLM-CapCurriculum, from EasyR1's example) first
removes whitespace around ``<``, ``>`` and ``/`` (Qwen2.5-VL-32B writes ``< think >``) and then full-matches
``<think>.*</think>.*\\boxed\\{.*\\}.*``. This check keeps that meaning and closes its loopholes:

* the response starts with ``<think>`` (tags may contain whitespace) and holds exactly one ``<think>`` and one
  ``</think>``, in that order (the regex accepted any number of blocks);
* after ``</think>`` there is a box with balanced braces and a non-empty answer (the regex accepted ``\\boxed{``
  followed by any ``}``); ``\\fbox`` counts as a box, as it does for extraction;
* the reasoning may be empty, as in the paper's regex (a model that skips thinking loses nothing on format; it
  still has to be right).
"""

from __future__ import annotations

from vlm_capcurriculum.rewards.extract import THINK_CLOSE, THINK_OPEN, find_boxes


def format_ok(response: str) -> bool:
    """Whether ``response`` follows ``<think> reasoning </think> ... \\boxed{answer} ...``."""
    opens = list(THINK_OPEN.finditer(response))
    closes = list(THINK_CLOSE.finditer(response))
    if len(opens) != 1 or len(closes) != 1:
        return False
    if response[: opens[0].start()].strip() or opens[0].end() > closes[0].start():
        return False
    return bool(find_boxes(response[closes[0].end() :]))


def format_score(response: str) -> float:
    """1.0 when :func:`format_ok`, else 0.0."""
    return 1.0 if format_ok(response) else 0.0
