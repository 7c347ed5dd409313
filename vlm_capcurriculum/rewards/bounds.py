"""Size bounds that keep every reward step fast on hostile input.

A 2048-token response (the paper's response length) is about 10k characters; the bounds leave a wide margin for
honest output and cut off what can only be adversarial. An answer or response over a bound scores 0 and is counted
(``oversize`` in :func:`vlm_capcurriculum.rewards.guard.guard_stats`), never truncated into a different answer.
"""

from __future__ import annotations

#: Responses longer than this get accuracy 0 without being parsed (format is still checked on them: it is linear).
MAX_RESPONSE_CHARS = 100_000
#: Extracted answers longer than this are compared only as exact strings, never parsed.
MAX_ANSWER_CHARS = 1_000
#: The most digits a numeral may have to be parsed exactly in-process (beyond it, only string equality).
MAX_DIGITS = 400
#: The largest |exponent| of 10 (``1e300``, ``2 \\times 10^{300}``) or power (``2^{300}``) evaluated in-process.
MAX_EXPONENT_DIGITS = 400
