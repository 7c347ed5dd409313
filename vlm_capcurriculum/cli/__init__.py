"""The ``vlmcc`` command line.

Each sub-command lives in its own module under this package and exposes ``register(subparsers)``; the
module is listed in :data:`COMMANDS`. Keeping the registry here (and the commands apart) lets every
feature own its command without touching the others.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

# module name (under vlm_capcurriculum.cli) for each sub-command, in --help order
COMMANDS: dict[str, str] = {
    "plan": "plan",
    "train": "train",
    "data": "data",
    "eval": "eval",
    "analyze": "analyze",
    "report": "report",
}


class CLIError(Exception):
    """A user-facing failure: printed as one line, exit status 2."""


def build_parser() -> argparse.ArgumentParser:
    from vlm_capcurriculum import __version__

    parser = argparse.ArgumentParser(prog="vlmcc", description="Capability-curriculum RL post-training for VLMs.")
    parser.add_argument("--version", action="version", version=f"vlmcc {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name in COMMANDS.values():
        importlib.import_module(f"vlm_capcurriculum.cli.{module_name}").register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    # argparse stops filling a positional list at the first option, so `train --dry-run a=b` would reject a=b;
    # overrides may come before and after options (launch scripts append the user's arguments).
    args, extra = parser.parse_known_args(argv)
    if extra:
        overrides = getattr(args, "overrides", None)
        if overrides is None or any(item.startswith("-") for item in extra):
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        args.overrides = [*overrides, *extra]
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    try:
        return int(args.handler(args) or 0)
    except CLIError as err:
        print(f"vlmcc {args.command}: error: {err}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # The reader went away (`vlmcc plan --json | head`): not an error of ours. Point stdout at devnull so the
        # interpreter's final flush does not raise again (the recipe of Python's signal module documentation).
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
