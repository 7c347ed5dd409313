"""The paper's format reward: ``<think> reasoning </think>`` followed by a ``\\boxed{answer}``.

The paper (``training/reward_functions/math.py``) strips whitespace around ``<``, ``>``, ``/`` and full-matches
``<think>.*</think>.*\\boxed\\{.*\\}.*``. This keeps that meaning and closes its loopholes: exactly one ``<think>``
at the start and one ``</think>`` after it (the regex accepted any number of blocks), then a balanced, non-empty box
(the regex accepted ``\\boxed{`` and any later ``}``). Empty reasoning passes, as in the paper's regex.
"""

from __future__ import annotations

from vlm_capcurriculum.rewards.extract import THINK_CLOSE, THINK_OPEN, find_boxes


def format_ok(response: str) -> bool:
    opens = list(THINK_OPEN.finditer(response))
    closes = list(THINK_CLOSE.finditer(response))
    if len(opens) != 1 or len(closes) != 1:
        return False
    if response[: opens[0].start()].strip() or opens[0].end() > closes[0].start():
        return False
    return bool(find_boxes(response[closes[0].end() :]))


def format_score(response: str) -> float:
    return 1.0 if format_ok(response) else 0.0
