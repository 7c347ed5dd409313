"""``vlmcc train``: compose a recipe and run it on the backend it selects.

vlmcc train --config recipes/config.yaml backend=trl model=tiny_qwen3_vl
vlmcc train --config recipes/config.yaml backend=easyr1 data=paper --dry-run
"""

from __future__ import annotations

import argparse
from typing import Any

from vlm_capcurriculum.cli import CLIError, add_command, add_recipe_arguments


def register(subparsers: Any) -> None:
    parser = add_command(
        subparsers,
        "train",
        "Compose a recipe (model x curriculum x data x backend) and run every stage in one training run on the "
        "selected backend.",
    )
    add_recipe_arguments(parser, config_default="recipes/config.yaml")
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="build the backend's real config and data pipeline, print the plan, train nothing",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from vlm_capcurriculum.config import ConfigError, load_config
    from vlm_capcurriculum.launch import LaunchError, run_recipe

    try:
        config = load_config(args.config, args.overrides)
        return run_recipe(config, dry_run=args.dry_run)
    except (ConfigError, LaunchError) as err:
        raise CLIError(str(err)) from err
