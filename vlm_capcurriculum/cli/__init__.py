"""The ``vlmcc`` command line. Only the module of the command being run is imported (each exposes
``register(subparsers)``), so ``vlmcc --help`` and ``vlmcc plan`` work on a core-only install, and a command whose
extra is missing fails with one line naming the extra (:data:`EXTRA_OF`) instead of breaking every other command.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from typing import Any

# sub-command -> (module under vlm_capcurriculum.cli, one-line help shown by `vlmcc --help`), in --help order.
# A module's register() must import nothing beyond the core at module level (tests/test_core_imports.py).
COMMANDS: dict[str, tuple[str, str]] = {
    "plan": ("plan", "validate data and curriculum, print the plan"),
    "train": ("train", "run a recipe on its backend (backend=easyr1|verl|trl)"),
    "data": ("data", "build stage datasets: generate, filter, split, passk, passk-report, convert, caption-sft"),
    "eval": ("eval", "benchmark accuracy of a served checkpoint (our verifiers, or VLMEvalKit)"),
    "analyze": ("analyze", "audit wrong answers for perception errors; compare reasoning lengths"),
    "report": ("report", "plots and tables across runs and stages"),
}

# Optional top-level packages -> the pip extra that brings them (pyproject.toml [project.optional-dependencies]).
EXTRA_OF: dict[str, str] = {
    "aiohttp": "data",
    "httpx": "data",
    "datasets": "trl",
    "PIL": "trl",
    "torch": "trl",
    "torchdata": "trl",
    "transformers": "trl",
    "trl": "trl",
    "accelerate": "trl",
    "tensorboard": "trl",
    "verl": "verl",
    "ray": "verl",
    "matplotlib": "report",
    "scipy": "report",
}
# packages that more than one extra brings: for the `data` command, name the `data` extra
DATA_EXTRA = {"aiohttp", "httpx", "datasets", "PIL"}


class CLIError(Exception):
    """A user-facing failure: printed as one line, exit status 2."""


def add_command(subparsers: Any, name: str, description: str) -> argparse.ArgumentParser:
    """The parser of command ``name``, with its one-line help from :data:`COMMANDS`."""
    return subparsers.add_parser(name, help=COMMANDS[name][1], description=description)


def add_command_group(subparsers: Any, name: str, description: str, *, metavar: str) -> Any:
    """A command made of sub-commands (added to the returned object); given none, it prints its help (status 2)."""
    parser = add_command(subparsers, name, description)
    group = parser.add_subparsers(dest=metavar.lower(), metavar=metavar)
    parser.set_defaults(handler=lambda args: parser.print_help() or 2)
    return group


def add_recipe_arguments(parser: argparse.ArgumentParser, *, config_default: str | None) -> None:
    """A recipe and its Hydra-style overrides (``vlmcc plan`` and ``vlmcc train``)."""
    if config_default is None:
        parser.add_argument("--config", required=True, help="config file (.yaml)")
    else:
        parser.add_argument("--config", default=config_default, help="recipe file (default: %(default)s)")
    parser.add_argument("overrides", nargs="*", help="Hydra-style overrides: group=option, key=value, +key=value")


def print_bad_rows(error: BaseException) -> None:
    """Every bad row of a :class:`RecordValidationError` (capped, with a count) on stderr, before the one-line error."""
    from vlm_capcurriculum.schema import RecordValidationError
    from vlm_capcurriculum.schema.issues import format_issues

    while error is not None and not isinstance(error, RecordValidationError):
        error = error.__cause__  # type: ignore[assignment]
    if error is not None and len(error.issues) > 1:
        print(format_issues(error.issues), file=sys.stderr)


def build_parser(argv: Sequence[str]) -> argparse.ArgumentParser:
    """The parser, with the full options of the command ``argv`` names (its first argument that is not an option)."""
    from vlm_capcurriculum import __version__

    parser = argparse.ArgumentParser(prog="vlmcc", description="Capability-curriculum RL post-training for VLMs.")
    parser.add_argument("--version", action="version", version=f"vlmcc {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    selected = next((item for item in argv if not item.startswith("-")), None)
    for name, (module_name, help_text) in COMMANDS.items():
        if name == selected:
            importlib.import_module(f"vlm_capcurriculum.cli.{module_name}").register(subparsers)
        else:
            subparsers.add_parser(name, help=help_text)
    return parser


def missing_extra_message(err: ModuleNotFoundError, command: str | None = None) -> str | None:
    """One line naming the pip extra that brings a missing optional package, or None if it is not one of ours."""
    top = (err.name or "").split(".")[0]
    if top not in EXTRA_OF:
        return None
    extra = "data" if command == "data" and top in DATA_EXTRA else EXTRA_OF[top]
    torch_first = " (CPU: pip install torch==2.13.0 first)" if extra == "trl" else ""
    return f"needs the {top!r} package from the {extra!r} extra: pip install 'vlm-capcurriculum[{extra}]'{torch_first}"


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(argv)
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
        print_bad_rows(err)
        print(f"vlmcc {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"\nvlmcc {args.command}: interrupted", file=sys.stderr)
        return 130
    except ModuleNotFoundError as err:
        message = missing_extra_message(err, args.command)
        if message is None:
            raise
        print(f"vlmcc {args.command}: error: {message}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # The reader went away (`vlmcc plan --json | head`): not an error of ours. Point stdout at devnull so the
        # interpreter's final flush does not raise again (the recipe of Python's signal module documentation).
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
