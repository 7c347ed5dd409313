"""The job runner: input rows -> an async ``process(row, runner)`` -> output rows, resumable and atomic.

Resume semantics: the *cache* is the durable progress, the output is rebuilt. Every model answer is stored the
moment it arrives (:mod:`vlm_capcurriculum.data.cache`); the output, rejects and failures files are written to
partial files and renamed into place only when the run ends (:mod:`vlm_capcurriculum.data.io`). A run killed at
any point therefore leaves no half-written output, and the same command run again replays the finished rows
from the cache (no model call) and computes only the rest, writing every row exactly once, in input order.
``process`` must be a deterministic function of the row and the model answers for this to hold; the answers
themselves are fixed by the cache.

A row ends as one of: written (``process`` returned a row or a list of rows), rejected (``Reject``: a result,
counted by reason, written to the rejects file), or failed (a model request gave up, or the row's input is bad:
counted by reason, written to the failures file, *not* cached, so the next run retries it). Any other exception
from ``process`` is a bug: the run stops, previous outputs stay as they were, the cache keeps the answers. So does
a stall (:meth:`Runner.watch`: no answer for the runner's ``stall_timeout``), with :class:`StalledError`.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vlm_capcurriculum.checkpoints import write_json_atomic
from vlm_capcurriculum.data.cache import ResponseCache
from vlm_capcurriculum.data.client import RequestFailed
from vlm_capcurriculum.data.io import AtomicJsonlWriter
from vlm_capcurriculum.data.progress import ProgressBar, RunSummary
from vlm_capcurriculum.data.request import InputError
from vlm_capcurriculum.data.runner import Runner

Row = dict[str, Any]


@dataclass(frozen=True)
class Reject:
    """``process``'s verdict that a row is not kept, and why. ``row`` (e.g. the malformed generation) goes to the
    rejects file with a ``reject_reason`` field; without it the input row's id is written."""

    reason: str
    row: Mapping[str, Any] | None = None


RowResult = Mapping[str, Any] | Sequence[Mapping[str, Any]] | Reject
Process = Callable[[Row, Runner], Awaitable[RowResult]]


@dataclass(frozen=True)
class _Failed:
    reason: str
    message: str


def default_failures_path(output: str | os.PathLike[str]) -> Path:
    return Path(output).with_suffix(".failures.jsonl")


def check_ids(rows: Sequence[Mapping[str, Any]], id_key: str) -> list[str]:
    """Each row's id as a string; :class:`InputError` listing (up to five) rows without one or sharing one."""
    ids: list[str] = []
    seen: dict[str, int] = {}
    problems: list[str] = []
    for number, row in enumerate(rows, start=1):
        value = row.get(id_key) if isinstance(row, Mapping) else None
        if not isinstance(value, (str, int)) or isinstance(value, bool) or value == "":
            problems.append(f"input row {number}: no usable {id_key!r} (got {value!r})")
            ids.append("")
            continue
        rid = str(value)
        if rid in seen:
            problems.append(f"input rows {seen[rid]} and {number} share {id_key} {rid!r}")
        seen.setdefault(rid, number)
        ids.append(rid)
    if problems:
        more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
        raise InputError("; ".join(problems[:5]) + more)
    return ids


async def arun_job(
    rows: Iterable[Mapping[str, Any]],
    process: Process,
    output: str | os.PathLike[str],
    *,
    runner: Runner,
    id_key: str = "id",
    rejects: str | os.PathLike[str] | None = None,
    failures: str | os.PathLike[str] | None = None,
    summary: str | os.PathLike[str] | None = None,
    window: int = 1024,
    progress: bool = True,
    desc: str | None = None,
    print_summary: bool = True,
) -> RunSummary:
    """Run ``process`` over ``rows`` and publish the results (see the module docstring for the guarantees).

    ``window`` bounds the rows in flight (memory, and how far the run may get ahead of a slow row). Output rows
    are written in input order. ``failures`` defaults to ``OUTPUT.failures.jsonl`` and exists only while some
    row failed; ``rejects`` and ``summary`` (JSON) are written when given."""
    started = time.monotonic()
    rows = list(rows)
    ids = check_ids(rows, id_key)
    output = Path(output)
    result = RunSummary(rows_in=len(rows))
    failures_path = Path(failures) if failures is not None else default_failures_path(output)
    writers = {"output": AtomicJsonlWriter(output), "failures": AtomicJsonlWriter(failures_path)}
    if rejects is not None:
        writers["rejects"] = AtomicJsonlWriter(rejects)
    bar = ProgressBar(len(rows), runner, desc=desc or output.name, unit="row", enabled=progress)
    loop = asyncio.get_running_loop()
    fatal: asyncio.Future[None] = loop.create_future()
    pending: deque[asyncio.Task[RowResult | _Failed]] = deque()

    async def one(row: Row) -> RowResult | _Failed:
        outcome: RowResult | _Failed
        try:
            outcome = await process(row, runner)
        except RequestFailed as err:
            outcome = _Failed(err.reason, err.message)
        except InputError as err:
            outcome = _Failed("bad_input", str(err))
        except BaseException as err:
            if not isinstance(err, asyncio.CancelledError) and not fatal.done():
                fatal.set_exception(err)
            raise
        bar.advance()  # not for a row cancelled by a stop: the bar shows how far the run got
        return outcome

    def publish(index: int, outcome: RowResult | _Failed) -> None:
        rid = ids[index]
        if isinstance(outcome, _Failed):
            result.failed[outcome.reason] += 1
            writers["failures"].write(
                {id_key: rows[index][id_key], "reason": outcome.reason, "message": outcome.message}
            )
        elif isinstance(outcome, Reject):
            result.rejected[outcome.reason] += 1
            if "rejects" in writers:
                record = dict(outcome.row) if outcome.row is not None else {id_key: rows[index][id_key]}
                writers["rejects"].write({**record, "reject_reason": outcome.reason})
        elif isinstance(outcome, Mapping):
            writers["output"].write(outcome)
            result.rows_out += 1
        elif (
            isinstance(outcome, Sequence)
            and not isinstance(outcome, (str, bytes))
            and all(isinstance(item, Mapping) for item in outcome)
        ):
            for item in outcome:
                writers["output"].write(item)
            result.rows_out += len(outcome)
        else:
            raise TypeError(
                f"process returned {type(outcome).__name__} for {id_key} {rid!r}; "
                "return a row (dict), a list of rows, or Reject(reason)"
            )

    async def next_done() -> RowResult | _Failed:
        head = pending[0]
        await asyncio.wait([head, fatal], return_when=asyncio.FIRST_COMPLETED)
        if fatal.done():
            fatal.result()  # raises the process error
        pending.popleft()
        return head.result()

    def stalled(watch: asyncio.Future[Any]) -> None:
        if not watch.cancelled() and watch.exception() is not None and not fatal.done():
            fatal.set_exception(watch.exception())  # type: ignore[arg-type]

    watchdog = asyncio.ensure_future(runner.watch(bar))  # StalledError after runner.stall_timeout without answers
    watchdog.add_done_callback(stalled)
    written = 0
    try:
        for row in rows:
            pending.append(asyncio.ensure_future(one(dict(row))))
            while len(pending) >= window or (pending and pending[0].done()):
                publish(written, await next_done())
                written += 1
        while pending:
            publish(written, await next_done())
            written += 1
    except BaseException:
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        if fatal.done() and not fatal.cancelled():
            fatal.exception()  # retrieved: it is being raised, or superseded by the error below
        for writer in writers.values():
            writer.abort()
        bar.close()
        raise
    finally:
        watchdog.cancel()
        if not fatal.done():
            fatal.cancel()

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
    result.outputs = {name: str(writer.path) for name, writer in writers.items() if name != "failures" or result.failed}
    result.models = RunSummary.models_of(runner)
    result.wall_s = time.monotonic() - started
    if summary is not None:
        Path(summary).parent.mkdir(parents=True, exist_ok=True)
        write_json_atomic(summary, result.to_dict())
        result.outputs["summary"] = str(summary)
    if print_summary:
        result.render()
    return result


def run_job(
    rows: Iterable[Mapping[str, Any]],
    process: Process,
    output: str | os.PathLike[str],
    *,
    cache: ResponseCache | str | os.PathLike[str] | None,
    stall_timeout: float | None = None,
    **options: Any,
) -> RunSummary:
    """:func:`arun_job` in a fresh event loop with its own :class:`Runner` over ``cache`` (closed at the end,
    with every backend ``process`` used) that stops the run after ``stall_timeout`` seconds without an answer."""

    async def main() -> RunSummary:
        async with Runner(cache, stall_timeout=stall_timeout) as runner:
            return await arun_job(rows, process, output, runner=runner, **options)

    return asyncio.run(main())
