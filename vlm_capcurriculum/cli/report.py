"""``vlmcc report``: plots and tables of curriculum runs from their output folders.

vlmcc report runs/staged runs/merged --output report/ \\
    --eval staged=staged.eval.summary.json --eval merged=merged.eval.summary.json \\
    --audit staged=staged.audit.summary.json --length length.json

What it writes: docs/evaluation.md.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from vlm_capcurriculum.cli import CLIError, add_command, jobs


def register(subparsers: Any) -> None:
    parser = add_command(subparsers, "report", __doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", metavar="[NAME=]RUN_DIR", help="run output folders")
    parser.add_argument("--output", required=True, help="folder for the PNGs and report.md")
    parser.add_argument(
        "--eval",
        action="append",
        default=[],
        metavar="LABEL=SUMMARY",
        help="a vlmcc eval summary (OUTPUT.summary.json); repeat to compare, deltas vs the first",
    )
    parser.add_argument(
        "--audit",
        action="append",
        default=[],
        metavar="LABEL=SUMMARY",
        help="a vlmcc analyze perception summary (repeatable)",
    )
    parser.add_argument("--length", metavar="FILE", help="a vlmcc analyze length --output file")
    parser.set_defaults(handler=run_report)


def _labelled(items: list[str], option: str) -> list[tuple[str, str]]:
    pairs = []
    for item in items:
        label, sep, path = item.partition("=")
        if not sep or not label or not path:
            raise CLIError(f"{option} {item!r}: expected LABEL=PATH")
        pairs.append((label, path))
    return pairs


@jobs.guarded
def run_report(args: argparse.Namespace) -> int:
    from pathlib import Path

    from vlm_capcurriculum.evaluate.report import read_json, read_run, write_report

    runs = []
    for item in args.runs:
        name, sep, path = item.partition("=")
        runs.append(read_run(path, name) if sep and not Path(item).exists() else read_run(item))
    names = [run.name for run in runs]
    if len(set(names)) != len(names):
        raise CLIError(f"two runs are named alike ({', '.join(names)}); name them NAME=RUN_DIR")
    evals = [(label, read_json(path, "eval summary")) for label, path in _labelled(args.eval, "--eval")]
    audits = [(label, read_json(path, "audit summary")) for label, path in _labelled(args.audit, "--audit")]
    lengths = read_json(args.length, "length analysis") if args.length else None
    write_report(runs, args.output, evals=evals, audits=audits, lengths=lengths)
    print(
        f"report: {Path(args.output) / 'report.md'} (plots: reward.png, accuracy.png, response_length.png)",
        file=sys.stderr,
    )
    return 0
