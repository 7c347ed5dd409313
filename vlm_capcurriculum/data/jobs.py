"""The job runner: input rows -> an async ``process(row, runner)`` -> output rows, resumable and atomic.

The cache is the durable progress, the outputs are rebuilt: the output, rejects and failures files are published
only when the run ends (:mod:`.io`), so the same command run again after a kill replays finished rows from the cache
and writes every row exactly once, in input order (``process`` must be deterministic given the row and answers).
A row is written, rejected (:class:`Reject`: a result, counted by reason) or failed (a request gave up, or its
input is bad: listed in ``OUTPUT.failures.jsonl``, retried by the next run). Any other exception from ``process``
is a bug, and a stall a dead server: the run stops, earlier outputs stay, the cache keeps the answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vlm_capcurriculum.checkpoints import write_json_atomic
from vlm_capcurriculum.data.client import RequestFailed
from vlm_capcurriculum.data.io import AtomicJsonlWriter
from vlm_capcurriculum.data.progress import ProgressBar, RunSummary
from vlm_capcurriculum.data.request import InputError
from vlm_capcurriculum.data.runner import WINDOW, Runner, settled

Row = dict[str, Any]


@dataclass(frozen=True)
class Reject:
    """``process``'s verdict that a row is not kept, and why. ``row`` (e.g. the malformed generation) goes to the
    rejects file with a ``reject_reason`` field; without it the input row's id is written."""

    reason: str
    row: Mapping[str, Any] | None = None


RowResult = Mapping[str, Any] | Sequence[Mapping[str, Any]] | Reject
Process = Callable[[Row, Runner], Awaitable[RowResult]]


def check_ids(rows: Sequence[Mapping[str, Any]]) -> None:
    """:class:`InputError` listing (up to five) rows without a usable id or sharing one: resume needs them."""
    seen: dict[str, int] = {}
    problems: list[str] = []
    for number, row in enumerate(rows, start=1):
        value = row.get("id") if isinstance(row, Mapping) else None
        if not isinstance(value, (str, int)) or isinstance(value, bool) or value == "":
            problems.append(f"input row {number}: no usable 'id' (got {value!r})")
            continue
        rid = str(value)
        if rid in seen:
            problems.append(f"input rows {seen[rid]} and {number} share id {rid!r}")
        seen.setdefault(rid, number)
    if problems:
        more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
        raise InputError("; ".join(problems[:5]) + more)


def run_job(
    rows: Iterable[Mapping[str, Any]],
    process: Process,
    output: str | os.PathLike[str],
    *,
    cache: str | os.PathLike[str] | None,
    stall_timeout: float | None = None,
    rejects: str | os.PathLike[str] | None = None,
    summary: str | os.PathLike[str] | None = None,
    progress: bool = True,
    desc: str | None = None,
    print_summary: bool = True,
) -> RunSummary:
    """Run ``process`` over ``rows`` in a fresh event loop and publish the results; ``rejects`` and ``summary``
    (JSON) are written when given. Its :class:`Runner` over ``cache`` (closed at the end, with every backend
    ``process`` used) stops the run after ``stall_timeout`` seconds without an answer."""

    started = time.monotonic()
    rows = list(rows)
    check_ids(rows)
    output = Path(output)

    async def main() -> RunSummary:
        async with Runner(cache, stall_timeout=stall_timeout) as runner:
            return await job(runner)

    async def job(runner: Runner) -> RunSummary:
        result = RunSummary(rows_in=len(rows))
        failures_path = output.with_suffix(".failures.jsonl")
        writers = {"output": AtomicJsonlWriter(output), "failures": AtomicJsonlWriter(failures_path)}
        if rejects is not None:
            writers["rejects"] = AtomicJsonlWriter(rejects)
        bar = ProgressBar(len(rows), runner, desc=desc or output.name, unit="row", enabled=progress)

        def publish(index: int, outcome: RowResult | RequestFailed) -> None:
            if isinstance(outcome, RequestFailed):
                result.failed[outcome.reason] += 1
                writers["failures"].write(
                    {"id": rows[index]["id"], "reason": outcome.reason, "message": outcome.message}
                )
            elif isinstance(outcome, Reject):
                result.rejected[outcome.reason] += 1
                if "rejects" in writers:
                    record = dict(outcome.row) if outcome.row is not None else {"id": rows[index]["id"]}
                    writers["rejects"].write({**record, "reject_reason": outcome.reason})
            elif isinstance(outcome, Mapping):
                writers["output"].write(outcome)
                result.rows_out += 1
            elif isinstance(outcome, (list, tuple)) and all(isinstance(item, Mapping) for item in outcome):
                for item in outcome:
                    writers["output"].write(item)
                result.rows_out += len(outcome)
            else:
                raise TypeError(
                    f"process returned {type(outcome).__name__} for id {str(rows[index]['id'])!r}; "
                    "return a row (dict), a list of rows, or Reject(reason)"
                )

        work = (settled(process(dict(row), runner), bar) for row in rows)
        try:
            async with contextlib.aclosing(runner.in_order(work, bar, WINDOW)) as outcomes:
                index = 0
                async for outcome in outcomes:
                    publish(index, outcome)
                    index += 1
        except BaseException:
            for writer in writers.values():
                writer.abort()
            raise
        finally:
            bar.close()
        runner.flush()  # every answer the output was made from is in the cache before the output exists
        writers["output"].commit()
        if "rejects" in writers:
            writers["rejects"].commit()
        if result.failed:
            writers["failures"].commit()
        else:
            writers["failures"].abort()
            failures_path.unlink(missing_ok=True)  # a stale list from an earlier run would mislead
        result.outputs = {
            name: str(writer.path) for name, writer in writers.items() if name != "failures" or result.failed
        }
        result.models = RunSummary.models_of(runner)
        result.wall_s = time.monotonic() - started
        if summary is not None:
            Path(summary).parent.mkdir(parents=True, exist_ok=True)
            write_json_atomic(summary, result.to_dict())
            result.outputs["summary"] = str(summary)
        if print_summary:
            result.render()
        return result

    return asyncio.run(main())
