"""``vlmcc report``: plots and tables across runs, read only from the common output layout
(:mod:`vlm_capcurriculum.curriculum.run_layout`), plus ``vlmcc eval`` and ``vlmcc analyze`` summaries when given.
``plots.json`` says what every plot shows, so a reader (or a test) can check a plot without looking at pixels.
What each plot and table holds: docs/evaluation.md.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vlm_capcurriculum.curriculum.run_layout import STEPS_FILE, SUMMARY_FILE, mean

BOUNDARY_GID = "stage-boundary"
LENGTH_KEYS = ("response_length", "completion_length", "mean_completion_length")


class ReportError(ValueError):
    """A run folder or summary that cannot be read; the message names the file (and line)."""


@dataclass
class Run:
    name: str
    path: Path
    summary: dict[str, Any]
    steps: list[dict[str, Any]]
    torn_last_line: bool = False

    def series(self, key: str) -> tuple[list[int], list[float]]:
        points = [(int(s["step"]), float(s[key])) for s in self.steps if isinstance(s.get(key), (int, float))]
        return [x for x, _ in points], [y for _, y in points]

    def length_key(self) -> str | None:
        return next((key for key in LENGTH_KEYS if any(key in s for s in self.steps)), None)

    def capabilities(self) -> list[str]:
        from vlm_capcurriculum.schema.answer import ANSWER_TYPES

        found: dict[str, None] = {}
        for step in self.steps:
            for key in step:
                if key.startswith("accuracy_capability_") or (
                    key.startswith("accuracy_") and key[len("accuracy_") :] not in ANSWER_TYPES
                ):
                    found[key] = None
        return list(found)

    def boundaries(self) -> list[tuple[int, str]]:
        """``(first step, stage name)`` of every stage after the first."""
        starts: list[tuple[int, str]] = []
        previous = None
        for step in self.steps:
            index = step.get("stage_index", step.get("stage"))
            if previous is not None and index != previous:
                starts.append((int(step["step"]), str(step.get("stage"))))
            previous = index
        return starts


def read_run(path: str | os.PathLike[str], name: str | None = None) -> Run:
    """A run folder of the common layout; at least one of its two files must exist."""
    folder = Path(path)
    summary_path, steps_path = folder / SUMMARY_FILE, folder / STEPS_FILE
    if not summary_path.exists() and not steps_path.exists():
        raise ReportError(f"{folder}: not a run folder (neither {SUMMARY_FILE} nor {STEPS_FILE} is there)")
    summary = read_json(summary_path, "the run summary") if summary_path.exists() else {}
    steps: list[dict[str, Any]] = []
    torn = False
    if steps_path.exists():
        lines = steps_path.read_text(encoding="utf-8").split("\n")
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError as err:
                if number == len(lines):  # no newline after it: a write cut by a kill, rewritten on resume
                    torn = True
                    continue
                raise ReportError(f"{steps_path}:{number}: not JSON ({err})") from None
            if not isinstance(record, dict) or not isinstance(record.get("step"), int):
                raise ReportError(f"{steps_path}:{number}: a step line needs an integer 'step'")
            steps.append(record)
    return Run(name or folder.name, folder, summary, steps, torn)


@dataclass
class PlotInfo:
    file: str
    title: str
    panels: list[dict[str, Any]] = field(default_factory=list)


def _panel(axis: Any, runs: Sequence[Run], key_of: Any, *, title: str, ylabel: str) -> dict[str, Any]:
    """One panel: a line per run that has the metric, and that run's stage boundaries in its colour."""
    info: dict[str, Any] = {"title": title, "xlabel": "step", "ylabel": ylabel, "series": [], "boundaries": {}}
    for number, run in enumerate(runs):
        key = key_of(run)
        if key is None:
            continue
        xs, ys = run.series(key)
        if not xs:
            continue
        colour = f"C{number}"
        axis.plot(xs, ys, color=colour, label=run.name, marker="." if len(xs) < 40 else None)
        info["series"].append({"run": run.name, "key": key, "points": len(xs)})
        starts = run.boundaries()
        for step, stage in starts:
            axis.axvline(step - 0.5, color=colour, linestyle="--", linewidth=1, alpha=0.7, gid=BOUNDARY_GID)
            axis.annotate(
                stage,
                (step - 0.5, 1),
                xycoords=("data", "axes fraction"),
                rotation=90,
                fontsize=7,
                va="top",
                ha="right",
                color=colour,
            )
        info["boundaries"][run.name] = [step - 0.5 for step, _ in starts]
    axis.set_title(title)
    axis.set_xlabel("step")
    axis.set_ylabel(ylabel)
    if info["series"]:
        axis.legend(fontsize=8)
    else:
        axis.text(0.5, 0.5, "no data in the runs' step logs", transform=axis.transAxes, ha="center")
    return info


def figure(runs: Sequence[Run], file: str, title: str, panels: Sequence[tuple[Any, str, str]]) -> tuple[Any, PlotInfo]:
    """One panel per ``(key_of, panel title, y label)``: a line per run that has the metric."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    shown = Figure(figsize=(7, 3.2 * len(panels)), layout="constrained")
    axes = shown.subplots(len(panels), 1, squeeze=False)[:, 0]
    info = PlotInfo(file, title)
    for axis, (key_of, panel_title, ylabel) in zip(axes, panels, strict=True):
        info.panels.append(_panel(axis, runs, key_of, title=panel_title, ylabel=ylabel))
    return shown, info


def accuracy_figure(runs: Sequence[Run]) -> tuple[Any, PlotInfo]:
    """One panel per capability (the overall accuracy when the steps carry none)."""
    keys: dict[str, None] = {}
    for run in runs:
        keys.update(dict.fromkeys(run.capabilities()))
    panels = []
    for key in list(keys) or ["accuracy"]:
        name = key.removeprefix("accuracy_capability_").removeprefix("accuracy_") if key != "accuracy" else "all"
        panels.append((lambda run, key=key: key, f"accuracy: {name}", f"accuracy ({name})"))
    return figure(runs, "accuracy.png", "accuracy per capability", panels)


# -- tables ------------------------------------------------------------------------------------------------------


def _num(value: Any, digits: int = 3) -> str:
    return "-" if not isinstance(value, (int, float)) or isinstance(value, bool) else f"{value:.{digits}f}"


def percent(value: Any) -> str:
    """A share as a percentage with one decimal; ``-`` when there is none (None, NaN)."""
    return "-" if not isinstance(value, (int, float)) or value != value else f"{100 * value:.1f}"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def stage_table(run: Run) -> list[str]:
    stages = run.summary.get("stages") or []
    if not stages:  # no summary: the stages as the steps file has them
        by_stage: dict[str, list[dict[str, Any]]] = {}
        for step in run.steps:
            by_stage.setdefault(str(step.get("stage")), []).append(step)
        stages = [
            {
                "name": name,
                "steps": len(items),
                "first_step": items[0]["step"],
                "last_step": items[-1]["step"],
                "reward_start": items[0].get("reward"),
                "reward_end": items[-1].get("reward"),
                "accuracy": mean([s.get("accuracy") for s in items]),
            }
            for name, items in by_stage.items()
        ]
    length_key = run.length_key()

    def length(stage: Mapping[str, Any]) -> Any:
        if isinstance(stage.get("mean_completion_length"), (int, float)):
            return stage["mean_completion_length"]
        if length_key is None or not isinstance(stage.get("first_step"), int):
            return None
        span = range(stage["first_step"], int(stage.get("last_step", stage["first_step"])) + 1)
        return mean([s.get(length_key) for s in run.steps if s["step"] in span])

    rows = [
        [
            str(i + 1),
            str(s.get("name")),
            str(s.get("steps")),
            f"{s.get('first_step')}-{s.get('last_step')}",
            _num(s.get("reward_start")),
            _num(s.get("reward_end")),
            _num(s.get("accuracy")),
            _num(length(s), 1),
            str(s.get("checkpoint") or "-"),
        ]
        for i, s in enumerate(stages)
    ]
    header = ["#", "stage", "steps", "step range", "reward start", "reward end", "accuracy", "length", "checkpoint"]
    return _table(header, rows)


def benchmark_table(evals: Sequence[tuple[str, Mapping[str, Any]]]) -> list[str]:
    """Accuracy (%) per benchmark, one column per evaluation, and each later one's delta against the first."""
    names: dict[str, None] = {}
    for _, summary in evals:
        names.update(dict.fromkeys(summary.get("by_source", {})))
    header = ["benchmark", *(label for label, _ in evals)]
    header += [f"Δ {label} − {evals[0][0]}" for label, _ in evals[1:]]
    rows = []
    for name in [*names, None]:
        values = [(s if name is None else s.get("by_source", {}).get(name, {})).get("accuracy") for _, s in evals]
        row = ["**overall**" if name is None else name, *(percent(v) for v in values)]
        for value in values[1:]:
            row.append(f"{100 * (value - values[0]):+.1f}" if value is not None and values[0] is not None else "-")
        rows.append(row)
    return _table(header, rows)


def audit_table(audits: Sequence[tuple[str, Mapping[str, Any]]]) -> list[str]:
    labels: dict[str, None] = {}
    for _, summary in audits:
        labels.update({k: None for k, v in summary.get("labels", {}).items() if v.get("count")})
    header = ["audit", "wrong answers", *labels]
    rows = []
    for name, summary in audits:
        cells = []
        for label in labels:
            entry = summary.get("labels", {}).get(label, {})
            ci = entry.get("ci95")
            cells.append(f"{percent(entry.get('share'))}" + (f" [{percent(ci[0])}, {percent(ci[1])}]" if ci else ""))
        rows.append([name, str(summary.get("audited", "-")), *cells])
    return _table(header, rows)


def length_table(analysis: Mapping[str, Any]) -> list[str]:
    """``vlmcc analyze length``'s output: lengths per checkpoint and the paired comparison."""
    rows = [
        [
            label,
            str(entry.get("answered")),
            _num(entry["all"]["mean"], 1),
            _num(entry["correct"]["mean"], 1),
            percent(entry["length_limit_hit"]["share"]),
        ]
        for label, entry in analysis.get("checkpoints", {}).items()
    ]
    lines = _table(["checkpoint", "answers", "mean tokens", "mean tokens (correct)", "limit hit %"], rows)
    comparison = analysis.get("comparison")
    if comparison:
        change, test = comparison.get("relative_change_of_mean"), comparison.get("test") or {}
        lines += [
            "",
            f"{comparison['second']} against {comparison['first']} on the {comparison['both_correct']} "
            f"items both answered correctly: {_num(comparison['second_lengths']['mean'], 1)} against "
            f"{_num(comparison['first_lengths']['mean'], 1)} tokens"
            + ("" if change is None else f" ({100 * change:+.1f}%)")
            + ("" if test.get("p_value") is None else f"; {test['test']}: p = {test['p_value']:.3g}"),
        ]
    return lines


def read_json(path: str | os.PathLike[str], what: str) -> dict[str, Any]:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as err:
        raise ReportError(f"{path}: cannot read {what} ({err.strerror or err})") from None
    except ValueError as err:
        raise ReportError(f"{path}: {what} is not JSON ({err})") from None
    if not isinstance(data, dict):
        raise ReportError(f"{path}: {what} is not a JSON object")
    return data


def write_report(
    runs: Sequence[Run],
    output: str | os.PathLike[str],
    *,
    evals: Sequence[tuple[str, Mapping[str, Any]]] = (),
    audits: Sequence[tuple[str, Mapping[str, Any]]] = (),
    lengths: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Write the PNGs, ``plots.json`` and ``report.md`` into ``output``; returns what ``plots.json`` holds."""
    folder = Path(output)
    folder.mkdir(parents=True, exist_ok=True)
    plots = []
    for shown, info in (
        figure(runs, "reward.png", "reward", [(lambda run: "reward", "mean reward per step", "reward")]),
        accuracy_figure(runs),
        figure(
            runs,
            "response_length.png",
            "response length",
            [(Run.length_key, "mean response length per step", "response length (tokens)")],
        ),
    ):
        shown.savefig(folder / info.file, dpi=110)
        plots.append(info)
    meta = {
        "runs": [{"name": r.name, "path": str(r.path), "steps": len(r.steps)} for r in runs],
        "plots": [info.__dict__ for info in plots],
    }
    (folder / "plots.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")

    lines = ["# Curriculum runs", ""]
    overview = [
        [
            r.name,
            str(r.summary.get("mode", "-")),
            f"{r.summary.get('completed_steps', len(r.steps))}/{r.summary.get('total_steps', '-')}",
            str(len(r.summary.get("stages") or []) or len(r.boundaries()) + 1),
            _num(mean([s.get("reward") for s in r.steps])),
            str(r.path),
        ]
        for r in runs
    ]
    lines += [*_table(["run", "mode", "steps", "stages", "mean reward", "folder"], overview), ""]
    for run in runs:
        lines += [f"## {run.name}: stages", "", *stage_table(run), ""]
        if run.torn_last_line:
            lines += [f"(the last line of {run.path / STEPS_FILE} was cut off by a kill and is not shown)", ""]
    lines += ["## Training curves", ""]
    lines += [f"![{info.title}]({info.file})" for info in plots] + [""]
    if evals:
        lines += ["## Benchmarks (accuracy %)", "", *benchmark_table(evals), ""]
    if audits:
        lines += ["## Error audit (share % of wrong answers, 95% Wilson interval)", "", *audit_table(audits), ""]
    if lengths:
        lines += ["## Response length (tokens, from the evaluations)", "", *length_table(lengths), ""]
    (folder / "report.md").write_text("\n".join(lines), encoding="utf-8")
    return meta
