"""``vlmcc plan``: validate a recipe's data and curriculum and show what the run will do, before a GPU is spent.

vlmcc plan --config recipes/config.yaml curriculum=merged curriculum.batch_size=8
vlmcc plan --config my_curriculum.yaml --json
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from vlm_capcurriculum.cli import CLIError, add_command, add_recipe_arguments


def register(subparsers: Any) -> None:
    parser = add_command(
        subparsers,
        "plan",
        "Compose a config (Hydra recipe or plain YAML with a curriculum: block), validate every stage's data and "
        "print the plan: per stage its samples, epochs, steps, step range and overrides.",
    )
    add_recipe_arguments(parser, config_default=None)
    parser.add_argument("--json", action="store_true", help="print the plan as JSON")
    parser.add_argument("--lenient", action="store_true", help="skip bad rows (reported) instead of failing")
    parser.add_argument(
        "--no-check-images", action="store_true", help="do not check the images (present, decodable, not too large)"
    )
    parser.add_argument(
        "--allow-images-outside-root",
        action="store_true",
        help="accept image paths outside their stage's image root (absolute paths elsewhere, '../')",
    )
    parser.add_argument(
        "--max-image-pixels",
        type=int,
        help="largest image accepted, in pixels (default: Pillow's decompression-bomb threshold, 89478485)",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from vlm_capcurriculum.config import ConfigError, load_config
    from vlm_capcurriculum.curriculum import PlanError, SpecError, parse_curriculum, plan_curriculum
    from vlm_capcurriculum.curriculum.plan_table import print_plan
    from vlm_capcurriculum.schema import DataFileError, ImageChecks, RecordValidationError, pillow_available
    from vlm_capcurriculum.schema.images import DEFAULT_MAX_PIXELS

    if args.max_image_pixels is not None and args.max_image_pixels < 1:
        raise CLIError(f"--max-image-pixels must be >= 1, got {args.max_image_pixels}")
    checks = ImageChecks(
        max_pixels=args.max_image_pixels or DEFAULT_MAX_PIXELS, outside_root=args.allow_images_outside_root
    )
    if not args.no_check_images and not pillow_available():
        print(
            "vlmcc plan: images checked for presence and location only; decoding and size checks need pillow "
            "(pip install pillow)",
            file=sys.stderr,
        )
    try:
        config = load_config(args.config, args.overrides)
        spec = parse_curriculum(config.get("curriculum"))
        data, plan = plan_curriculum(
            spec, strict=not args.lenient, check_images=not args.no_check_images, image_checks=checks
        )
    except ConfigError as err:
        raise CLIError(str(err)) from None
    except SpecError as err:
        raise CLIError(f"{args.config}: {err}") from None
    except RecordValidationError as err:
        raise CLIError(f"{err.one_line()} (--lenient skips bad rows)") from err
    except (DataFileError, PlanError) as err:
        raise CLIError(f"{args.config}: {err}") from None

    if args.json:
        out = plan.to_json()
        out["data"] = [
            {"name": stage.stage.name, "files": [str(f) for f in stage.files], "rows_read": stage.report.rows_read,
             "rows_kept": stage.report.rows_kept, "skipped": stage.report.skipped_by_reason(),
             "notes": dict(stage.report.notes)}
            for stage in data.stages
        ]  # fmt: skip
        json.dump(out, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    print_plan(plan, data)
    return 0
