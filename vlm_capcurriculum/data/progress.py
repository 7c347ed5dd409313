"""Live progress (tqdm: rate and ETA) and the end-of-run summary table (rich)."""

from __future__ import annotations

import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from tqdm.auto import tqdm

if TYPE_CHECKING:
    from vlm_capcurriculum.data.runner import Runner


class ProgressBar:
    """A tqdm bar whose postfix shows the runner's totals and, after a few seconds without an answer, the idle
    time; updated at most twice a second, so a fast cached pass is not slowed by printing."""

    def __init__(self, total: int | None, runner: Runner, *, desc: str, unit: str = "req", enabled: bool = True):
        self.runner = runner
        self._bar = tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, disable=not enabled, smoothing=0.05)
        self._last = 0.0

    def advance(self, count: int = 1) -> None:
        self._bar.update(count)
        now = time.monotonic()
        if now - self._last >= 0.5:
            self._last = now
            self._bar.set_postfix(self.runner_totals(), refresh=False)

    def refresh(self, idle: float) -> None:
        self._last = time.monotonic()
        totals: dict[str, Any] = self.runner_totals()
        if idle >= 5:
            totals["idle"] = f"{idle:.0f}s"
        self._bar.set_postfix(totals, refresh=True)

    def runner_totals(self) -> dict[str, Any]:
        counters = list(self.runner.counters.values())
        stats = [backend.stats for backend in self.runner.backends.values()]
        retries: Counter[str] = sum((s.retries for s in stats), Counter())
        totals: dict[str, Any] = {
            "cached": sum(c.cached_samples for c in counters),
            "new": sum(c.generated_samples for c in counters),
            "http": sum(s.attempts for s in stats),
            "retry": sum(retries.values()),
            "fail": sum(sum(c.failed.values()) for c in counters),
        }
        if retries:  # which errors are being retried: "timeout 12, http_503 3"
            totals["errors"] = reasons(retries, 2)
        return totals

    def close(self) -> None:
        self._bar.set_postfix(self.runner_totals(), refresh=False)
        self._bar.close()


@dataclass
class RunSummary:
    """What a job did: rows in and out, rejects and failures by reason, per-model work, wall time."""

    rows_in: int = 0
    rows_out: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    failed: Counter[str] = field(default_factory=Counter)
    wall_s: float = 0.0
    models: list[dict[str, Any]] = field(default_factory=list)
    outputs: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when no row failed (rejects are a result, failures are work left for the next run)."""
        return not self.failed

    @classmethod
    def models_of(cls, runner: Runner) -> list[dict[str, Any]]:
        """Per model: the runner's sample counts and the backend's own HTTP counts."""
        return [
            {
                "model": backend.model,
                "requests": runner.counters[key].requests,
                "cached_samples": runner.counters[key].cached_samples,
                "generated_samples": runner.counters[key].generated_samples,
                "http_attempts": backend.stats.attempts,
                "retries": dict(backend.stats.retries),
                "failures": dict(runner.counters[key].failed),
                "prompt_tokens": backend.stats.prompt_tokens,
                "completion_tokens": backend.stats.completion_tokens,
                "peak_in_flight": backend.stats.peak_in_flight,
            }
            for key, backend in runner.backends.items()
        ]

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["rejected"], data["failed"] = dict(self.rejected), dict(self.failed)
        return data

    def render(self, file: Any = None) -> None:
        """Print the summary tables (to stderr by default)."""
        from rich.console import Console
        from rich.table import Table

        console = Console(file=file or sys.stderr)
        if not console.is_terminal:  # logs and files: no 80-column wrapping of the reason lists
            console = Console(file=file or sys.stderr, width=200)
        models = Table(title="model calls", title_justify="left")
        for name in ("model", "requests", "cached", "generated", "HTTP", "retries", "failed", "tokens in/out", "peak"):
            models.add_column(name, justify="left" if name == "model" else "right", overflow="fold")
        for m in self.models:
            models.add_row(
                m["model"],
                str(m["requests"]),
                str(m["cached_samples"]),
                str(m["generated_samples"]),
                str(m["http_attempts"]),
                _by_reason(m["retries"]),
                _by_reason(m["failures"]),
                f"{m['prompt_tokens']}/{m['completion_tokens']}",
                str(m["peak_in_flight"]),
            )
        rows = Table(title="rows", title_justify="left")
        for name in ("in", "written", "rejected", "failed", "wall time"):
            rows.add_column(name, justify="right", overflow="fold")
        rows.add_row(
            str(self.rows_in),
            str(self.rows_out),
            _by_reason(self.rejected),
            _by_reason(self.failed),
            f"{self.wall_s:.1f}s",
        )
        console.print(models)
        console.print(rows)
        if self.failed:
            console.print(
                f"{sum(self.failed.values())} row(s) failed and were not written "
                f"(see {self.outputs.get('failures', 'the failures file')}); run the same command again to retry them."
            )


def reasons(counts: dict[str, int], most: int | None = None) -> str:
    """``"timeout 12, http_503 3"``: the reasons, most frequent first."""
    return ", ".join(f"{reason} {count}" for reason, count in Counter(counts).most_common(most))


def _by_reason(counts: dict[str, int]) -> str:
    total = sum(counts.values())
    return f"{total} ({reasons(counts)})" if total else "0"
