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
    """A tqdm bar whose postfix shows the runner's totals (cached / generated / HTTP attempts / retries /
    failures) and, once it is a few seconds, the time since the last answer (``idle``), refreshed at most twice a
    second so a fast cached pass is not slowed by printing. :meth:`Runner.watch` refreshes it every second, so a
    server that retries or hangs shows it while no row completes."""

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
        """Show the totals now (``idle``: seconds since the last answer) and redraw."""
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
            totals["errors"] = ", ".join(f"{reason} {count}" for reason, count in retries.most_common(2))
        return totals

    def close(self) -> None:
        self._bar.set_postfix(self.runner_totals(), refresh=False)
        self._bar.close()


@dataclass
class ModelSummary:
    model: str
    requests: int
    cached_samples: int
    generated_samples: int
    http_attempts: int
    retries: dict[str, int]
    failures: dict[str, int]
    prompt_tokens: int
    completion_tokens: int
    peak_in_flight: int


@dataclass
class RunSummary:
    """What a job did: rows in and out, rejects and failures by reason, per-model work, wall time."""

    rows_in: int = 0
    rows_out: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    failed: Counter[str] = field(default_factory=Counter)
    wall_s: float = 0.0
    models: list[ModelSummary] = field(default_factory=list)
    outputs: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when no row failed (rejects are a result, failures are work left for the next run)."""
        return not self.failed

    @classmethod
    def models_of(cls, runner: Runner) -> list[ModelSummary]:
        out = []
        for key, backend in runner.backends.items():
            counters, stats = runner.counters[key], backend.stats
            out.append(
                ModelSummary(
                    model=backend.model,
                    requests=counters.requests,
                    cached_samples=counters.cached_samples,
                    generated_samples=counters.generated_samples,
                    http_attempts=stats.attempts,
                    retries=dict(stats.retries),
                    failures=dict(counters.failed),
                    prompt_tokens=stats.prompt_tokens,
                    completion_tokens=stats.completion_tokens,
                    peak_in_flight=stats.peak_in_flight,
                )
            )
        return out

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
                m.model,
                str(m.requests),
                str(m.cached_samples),
                str(m.generated_samples),
                str(m.http_attempts),
                _by_reason(m.retries),
                _by_reason(m.failures),
                f"{m.prompt_tokens}/{m.completion_tokens}",
                str(m.peak_in_flight),
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


def _by_reason(counts: dict[str, int] | Counter[str]) -> str:
    total = sum(counts.values())
    if not total:
        return "0"
    detail = ", ".join(f"{reason} {count}" for reason, count in sorted(counts.items(), key=lambda kv: -kv[1]))
    return f"{total} ({detail})"
