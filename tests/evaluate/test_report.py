"""``vlmcc report`` over two runs of the common output layout: plot content (axes, series, stage boundaries) checked
on the matplotlib objects and in plots.json, the markdown tables, and clear errors for unreadable inputs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from eval_helpers import cli
from PIL import Image

from vlm_capcurriculum.curriculum.run_layout import SUMMARY_FILE, StepsLog, step_record
from vlm_capcurriculum.evaluate.report import BOUNDARY_GID, accuracy_figure, figure, read_run

STAGES = (("perception", 4), ("text_reasoning", 4), ("visual_reasoning", 4))


def staged_run(root: Path) -> Path:
    folder = root / "staged"
    log = StepsLog(folder)
    log.resume_at(0)
    step = 0
    for position, (capability, steps) in enumerate(STAGES):
        for _ in range(steps):
            step += 1
            log.append(
                step_record(
                    step,
                    capability,
                    position,
                    [f"{capability}-{step}"],
                    0.1 * step,
                    0.05 * step,
                    response_length=300 - 10 * step,
                    **{f"accuracy_{capability}": 0.05 * step},
                )
            )
    summary = {
        "mode": "staged",
        "total_steps": 12,
        "completed_steps": 12,
        "stages": [
            {
                "stage": i + 1,
                "name": name,
                "steps": 4,
                "first_step": 4 * i + 1,
                "last_step": 4 * i + 4,
                "reward_start": 0.1,
                "reward_end": 0.4,
                "accuracy": 0.5,
                "checkpoint": f"stages/0{i + 1}-{name}",
            }
            for i, (name, _) in enumerate(STAGES)
        ],
    }
    (folder / SUMMARY_FILE).write_text(json.dumps(summary))
    return folder


def merged_run(root: Path) -> Path:
    folder = root / "merged"
    log = StepsLog(folder)
    log.resume_at(0)
    for step in range(1, 13):
        per_capability = {f"accuracy_{c}": 0.04 * step for c, _ in STAGES}
        # accuracy_number is an answer type's breakdown key, not a capability: no panel of its own
        log.append(
            step_record(
                step,
                "merged",
                0,
                [f"m{step}"],
                0.08 * step,
                0.04 * step,
                response_length=320.0,
                accuracy_number=0.5,
                **per_capability,
            )
        )
    return folder


def boundary_xs(axis) -> list[float]:
    return sorted({line.get_xdata()[0] for line in axis.get_lines() if line.get_gid() == BOUNDARY_GID})


def test_figures_show_each_run_and_its_stage_boundaries(tmp_path) -> None:
    runs = [read_run(staged_run(tmp_path)), read_run(merged_run(tmp_path))]
    shown, info = figure(runs, "reward.png", "reward", [(lambda run: "reward", "mean reward per step", "reward")])
    [axis] = shown.axes
    assert (axis.get_xlabel(), axis.get_ylabel()) == ("step", "reward")
    curves = [line for line in axis.get_lines() if line.get_gid() != BOUNDARY_GID]
    assert [line.get_label() for line in curves] == ["staged", "merged"]
    assert list(curves[0].get_xdata()) == list(range(1, 13))
    assert list(curves[0].get_ydata()) == pytest.approx([0.1 * s for s in range(1, 13)])
    assert boundary_xs(axis) == [4.5, 8.5]  # staged only: the merged run has one stage
    assert info.panels[0]["boundaries"] == {"staged": [4.5, 8.5], "merged": []}

    shown, info = accuracy_figure(runs)
    assert [axis.get_title() for axis in shown.axes] == [
        "accuracy: perception",
        "accuracy: text_reasoning",
        "accuracy: visual_reasoning",
    ]
    perception = shown.axes[0]
    staged_line = next(line for line in perception.get_lines() if line.get_label() == "staged")
    assert list(staged_line.get_xdata()) == [1, 2, 3, 4]  # perception accuracy exists only in its stage
    assert boundary_xs(perception) == [4.5, 8.5]


def test_report_command_writes_plots_and_tables_for_two_runs(tmp_path) -> None:
    staged, merged = staged_run(tmp_path), merged_run(tmp_path)
    evals = {}
    for label, accuracies in (("merged", (0.5, 0.25)), ("staged", (0.6, 0.5))):
        summary = {
            "accuracy": sum(accuracies) / 2,
            "by_source": {"MathVista-MINI": {"accuracy": accuracies[0]}, "POPE": {"accuracy": accuracies[1]}},
        }
        evals[label] = tmp_path / f"{label}.eval.summary.json"
        evals[label].write_text(json.dumps(summary))
    audit = tmp_path / "audit.summary.json"
    audit.write_text(
        json.dumps(
            {
                "audited": 8,
                "labels": {
                    "perception": {"count": 7, "share": 0.875, "ci95": [0.529, 0.978]},
                    "reasoning": {"count": 1, "share": 0.125, "ci95": [0.022, 0.471]},
                    "misunderstanding": {"count": 0, "share": 0.0, "ci95": [0.0, 0.324]},
                },
            }
        )
    )
    for label, tokens in (("merged", 200), ("staged", 150)):
        rows = [
            {
                "id": f"q{i}",
                "correct": True,
                "verdict": "correct",
                "response_tokens": tokens + i,
                "finish_reason": "stop",
            }
            for i in range(6)
        ]
        (tmp_path / f"{label}.eval.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    length = tmp_path / "length.json"
    assert (
        cli(
            "analyze",
            "length",
            str(tmp_path / "merged.eval.jsonl"),
            str(tmp_path / "staged.eval.jsonl"),
            "--compare",
            "merged",
            "staged",
            "--output",
            str(length),
        )
        == 0
    )
    out = tmp_path / "report"
    args = [
        "report",
        str(staged),
        str(merged),
        "--length",
        str(length),
        "--output",
        str(out),
        "--eval",
        f"merged={evals['merged']}",
        "--eval",
        f"staged={evals['staged']}",
        "--audit",
        f"staged={audit}",
    ]
    assert cli(*args) == 0
    for name in ("reward.png", "accuracy.png", "response_length.png"):
        with Image.open(out / name) as image:
            assert image.format == "PNG" and image.width > 300
    meta = json.loads((out / "plots.json").read_text())
    [length] = [plot for plot in meta["plots"] if plot["file"] == "response_length.png"]
    assert length["panels"][0]["ylabel"] == "response length (tokens)"
    assert [s["run"] for s in length["panels"][0]["series"]] == ["staged", "merged"]
    report = (out / "report.md").read_text()
    assert "| benchmark | merged | staged | Δ staged − merged |" in report
    assert "| MathVista-MINI | 50.0 | 60.0 | +10.0 |" in report
    assert "| POPE | 25.0 | 50.0 | +25.0 |" in report
    assert "| **overall** | 37.5 | 55.0 | +17.5 |" in report
    assert "| staged | 8 | 87.5 [52.9, 97.8] | 12.5 [2.2, 47.1] |" in report
    # the staged run's stage table, from its summary; the length (absent there) from the stage's step lines
    assert "| 2 | text_reasoning | 4 | 5-8 | 0.100 | 0.400 | 0.500 | 235.0 | stages/02-text_reasoning |" in report
    assert "![reward](reward.png)" in report
    assert "| staged | 6 | 152.5 | 152.5 | 0.0 |" in report
    assert "staged against merged on the 6 items both answered correctly: 152.5 against 202.5 tokens (-24.7%)" in report


def test_unreadable_inputs_are_named(tmp_path, capsys) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    assert cli("report", str(empty), "--output", str(tmp_path / "r")) == 2
    assert "not a run folder" in capsys.readouterr().err
    run = staged_run(tmp_path)
    lines = (run / "curriculum_steps.jsonl").read_text().splitlines(keepends=True)
    (run / "curriculum_steps.jsonl").write_text("".join(lines) + '{"step": 13, "sta')  # killed mid-write
    assert len(read_run(run).steps) == 12 and read_run(run).torn_last_line
    (run / "curriculum_steps.jsonl").write_text("".join(lines[:3]) + "oops\n" + "".join(lines[3:]))
    assert cli("report", str(run), "--output", str(tmp_path / "r")) == 2
    assert "curriculum_steps.jsonl:4: not JSON" in capsys.readouterr().err
