"""``vlmcc data``: the data recipes (perception MCQ synthesis, perception filter, pass@K difficulty, converters,
caption SFT) as resumable jobs against any OpenAI-compatible server.

Examples: data_recipes/README.md. Every model answer is cached (``OUTPUT.cache.sqlite``): the same command run
again redoes only the missing work. Exit status: 0 when every row was processed (rejects are results), 3 when some
rows failed (``OUTPUT.failures.jsonl``; run again to retry them), 2 for a usage or input error.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from vlm_capcurriculum.cli import CLIError, add_command_group, jobs

IMAGE_ROOT_HELP = "folder the image paths are relative to"


def register(subparsers: Any) -> None:
    from vlm_capcurriculum.data.caption_sft import FORMATS
    from vlm_capcurriculum.data.captions import SOURCES as CAPTION_SOURCES
    from vlm_capcurriculum.data.convert import SOURCES

    pipelines = add_command_group(subparsers, "data", __doc__.split("\n\n")[0], metavar="PIPELINE")

    generate = pipelines.add_parser("generate", help="captions -> perception MCQs (one per caption)")
    generate.add_argument("--captions", required=True, help="caption file (JSON lines or parquet)")
    generate.add_argument("--source", required=True, choices=CAPTION_SOURCES)
    generate.add_argument("--image-root", help=IMAGE_ROOT_HELP)
    generate.add_argument("--image-column", help="pixmo: column with each image's path under --image-root")
    generate.add_argument("--prompt", help="prompt template with {caption} (default: the packaged one)")
    generate.add_argument(
        "--prompts",
        choices=("ours", "reference"),
        default="ours",
        help="ours (default) or the reference's DOCCI prompt, sent as a chat message (data_recipes/README.md)",
    )
    generate.add_argument("--shuffle-options", action="store_true", help="reorder each question's options (seeded)")
    jobs.model_options(generate, multi=False)
    jobs.sampling_options(generate, temperature=0.0, top_p=1.0, max_tokens=512)
    jobs.job_options(generate)
    generate.set_defaults(handler=run_generate)

    filt = pipelines.add_parser(
        "filter", help="keep MCQs every model gets wrong from the image, right from the caption"
    )
    filt.add_argument("--input", required=True, help="MCQ records (from generate) with a caption column")
    filt.add_argument("--image-root", required=True, help=IMAGE_ROOT_HELP)
    filt.add_argument("--image-prompt", help="template for the image-only condition ({problem})")
    filt.add_argument("--caption-prompt", help="template for the caption-only condition ({caption}, {problem})")
    filt.add_argument(
        "--prompts",
        choices=("ours", "reference"),
        default="ours",
        help="ours (default) or the reference's: its two prompts and its letter reading, where the article 'a' "
        "reads as option A (data_recipes/README.md: the effect on yield)",
    )
    filt.add_argument(
        "--count-unanswered-as-wrong",
        action="store_true",
        help="an image answer naming no option counts as wrong (default: neither right nor wrong, not kept)",
    )
    jobs.model_options(filt, multi=True)
    jobs.sampling_options(filt, temperature=0.0, top_p=1.0, max_tokens=16)
    jobs.job_options(filt)
    filt.set_defaults(handler=run_filter)

    split = pipelines.add_parser(
        "split", help="filtered MCQs -> train/val/test (85/5/10) by a hash of each example id, reproducibly"
    )
    split.add_argument("--input", required=True, help="records to split (e.g. the filter's output)")
    split.add_argument("--output-dir", required=True, help="writes {train,val,test}_PREFIX.jsonl there")
    split.add_argument("--prefix", default="stage1_perception", help="file name core (default: %(default)s)")
    split.add_argument("--key", default="id", help="column holding the example id (default: %(default)s)")
    split.add_argument("--val-ratio", type=float, default=0.05, help="default: %(default)s, the reference's")
    split.add_argument("--test-ratio", type=float, default=0.10, help="default: %(default)s, the reference's")
    split.add_argument(
        "--seed", type=int, help="salt the hash for another reproducible split (default: the reference's exact split)"
    )
    split.set_defaults(handler=run_split)

    passk = pipelines.add_parser("passk", help="pass rate of K sampled answers per question")
    passk.add_argument("--input", required=True, help="sample records (any capability)")
    passk.add_argument("--image-root", help=IMAGE_ROOT_HELP)
    passk.add_argument("-k", type=int, default=16, help="samples per question (default: %(default)s, the paper's)")
    passk.add_argument("--capability", help="capability of rows that carry none")
    passk.add_argument("--prompt", help="template with {problem} (default: the paper's training prompt)")
    passk.add_argument("--system", help="system message")
    passk.add_argument(
        "--prompt-style",
        choices=("training", "reference"),
        default="training",
        help="training: the problem in the training prompt (default; difficulty under the prompt GRPO sees); "
        "reference: the problem alone, the format instruction as system prompt, as the reference's passK did",
    )
    passk.add_argument(
        "--report", action="store_true", help="print the pass-rate histogram of the output (see passk-report)"
    )
    passk.add_argument("--no-predictions", action="store_true", help="do not write predictions and correctness")
    passk.add_argument("--keep-responses", action="store_true", help="also write the K raw responses")
    jobs.model_options(passk, multi=False)
    jobs.sampling_options(passk, temperature=0.7, top_p=0.9, max_tokens=1024)
    passk.add_argument(
        "--top-k",
        type=int,
        default=20,
        help="top-k sampling, sent as the request's top_k (default: %(default)s, what the reference's passK sampled "
        "with: its GenerationConfig default reached vLLM; 0: not sent, for servers that reject top_k)",
    )
    jobs.job_options(passk)
    passk.set_defaults(handler=run_passk)

    report = pipelines.add_parser(
        "passk-report", help="pass-rate histogram of scored records; optionally drop the always-solved ones"
    )
    report.add_argument("--input", required=True, action="append", help="records with pass_rate (repeatable)")
    report.add_argument("-k", type=int, default=16, help="samples per question the rates came from (default: 16)")
    report.add_argument("--json", action="store_true", help="print the histogram as JSON")
    report.add_argument(
        "--without-solved",
        metavar="OUTPUT",
        help="also write the records with pass rate < 1 to OUTPUT (the reference's *_filtered_new difficulty file)",
    )
    report.set_defaults(handler=run_passk_report)

    convert = pipelines.add_parser("convert", help="a source dataset -> sample records")
    convert.add_argument("source", choices=sorted(SOURCES), help="dataset format")
    convert.add_argument("--input", required=True, action="append", help="input file (repeatable)")
    convert.add_argument("--output", required=True, help="records file (.jsonl or .parquet)")
    convert.add_argument("--image-root", help="folder the image paths are relative to (default: the output's)")
    convert.add_argument("--image-dir", help="where embedded images are written (default: IMAGE_ROOT/images/SOURCE)")
    convert.add_argument("--capability", help="capability of the records (default: the source's)")
    convert.add_argument("--no-check-images", action="store_true", help="do not check that image files exist")
    convert.add_argument("--limit", type=int, help="convert at most this many rows")
    convert.add_argument("--strict", action="store_true", help=f"exit {jobs.ROWS_FAILED} when any row was skipped")
    convert.set_defaults(handler=run_convert)

    sft = pipelines.add_parser("caption-sft", help="captions -> caption-SFT chat JSONL (TRL or LLaMA-Factory)")
    sft.add_argument("--captions", required=True, help="caption file (JSON lines or parquet)")
    sft.add_argument("--source", required=True, choices=CAPTION_SOURCES)
    sft.add_argument("--output", required=True)
    sft.add_argument("--format", default="trl", choices=FORMATS)
    sft.add_argument("--image-root", help=IMAGE_ROOT_HELP)
    sft.add_argument("--image-column", help="pixmo: column with each image's path under --image-root")
    sft.add_argument("--instruction", help="the user turn (default: the packaged 'describe the image in detail')")
    sft.add_argument("--absolute-images", action="store_true", help="write absolute image paths")
    sft.add_argument("--limit", type=int, help="use at most this many captions")
    sft.set_defaults(handler=run_caption_sft)


def _run(args: argparse.Namespace, rows: list[dict[str, Any]], process: Any, desc: str) -> Any:
    if args.limit is not None:
        rows = rows[: max(args.limit, 0)]
    return jobs.run(
        args,
        rows,
        process,
        rejects=args.rejects or jobs.beside(args.output, ".rejects.jsonl"),
        summary=args.summary or jobs.beside(args.output, ".summary.json"),
        desc=desc,
    )


def _finish(summary: Any) -> int:
    if summary.ok:
        return 0
    failed = sum(summary.failed.values())
    print(
        f"vlmcc data: {failed} row(s) failed ({', '.join(f'{r} {c}' for r, c in summary.failed.items())}); "
        f"see {summary.outputs.get('failures')} and run the same command again to retry them",
        file=sys.stderr,
    )
    return jobs.ROWS_FAILED


@jobs.guarded
def run_generate(args: argparse.Namespace) -> int:
    from vlm_capcurriculum.data.captions import read_captions
    from vlm_capcurriculum.data.generate import generate_rows, make_generate

    if args.prompts == "reference" and args.prompt is not None:
        raise CLIError("--prompts reference sets the prompt: drop --prompt")
    [backend] = jobs.backends(args)
    packaged = "reference_perception_mcq.txt" if args.prompts == "reference" else "perception_mcq.txt"
    prompt = jobs.template(args.prompt, packaged, ("caption",))
    items = read_captions(
        args.captions, args.source, image_root=args.image_root, image_column=args.image_column, limit=args.limit
    )
    rows = generate_rows(items)
    process = make_generate(backend, prompt=prompt, sampling=jobs.sampling(args), shuffle_options=args.shuffle_options)
    return _finish(_run(args, rows, process, "generate"))


@jobs.guarded
def run_filter(args: argparse.Namespace) -> int:
    from vlm_capcurriculum.data.filter import FilterReport, make_filter
    from vlm_capcurriculum.data.inputs import record_rows

    if args.prompts == "reference" and (args.image_prompt or args.caption_prompt):
        raise CLIError("--prompts reference sets both prompts: drop --image-prompt/--caption-prompt")
    backends = jobs.backends(args)
    ours = args.prompts == "ours"
    image_prompt = jobs.template(args.image_prompt, "filter_image.txt", ("problem",)) if ours else None
    caption_prompt = jobs.template(args.caption_prompt, "filter_caption.txt", ("caption", "problem")) if ours else None
    rows = record_rows(args.input, image_root=args.image_root, capability="perception")
    report = FilterReport.empty([b.model for b in backends], unanswered_is_wrong=args.count_unanswered_as_wrong)
    process = make_filter(
        backends,
        report,
        image_root=args.image_root,
        image_prompt=image_prompt,
        caption_prompt=caption_prompt,
        sampling=jobs.sampling(args),
        prompts=args.prompts,
    )
    summary = _run(args, rows, process, "filter")
    report_path = jobs.beside(args.output, ".report.json")
    report.write(report_path)
    report.render()
    print(f"filter report: {report_path}", file=sys.stderr)
    return _finish(summary)


@jobs.guarded
def run_passk(args: argparse.Namespace) -> int:
    from vlm_capcurriculum.data.inputs import record_rows
    from vlm_capcurriculum.data.passk import make_passk

    if args.k < 1:
        raise CLIError(f"-k must be >= 1, got {args.k}")
    if args.top_k < 0:
        raise CLIError(f"--top-k must be >= 0 (0: not sent), got {args.top_k}")
    if args.prompt_style == "reference" and (args.prompt is not None or args.system is not None):
        raise CLIError("--prompt-style reference sets the user turn and the system prompt: drop --prompt/--system")
    [backend] = jobs.backends(args)
    prompt = None if args.prompt is None else jobs.template(args.prompt, "", ("problem",))  # None: the training prompt
    root = args.image_root or str(Path(args.input).parent)
    rows = record_rows(args.input, image_root=root, capability=args.capability)
    process = make_passk(
        backend,
        image_root=root,
        sampling=jobs.sampling(args, n=args.k, extra=(("top_k", args.top_k),) if args.top_k else ()),
        prompt=prompt,
        system=args.system,
        prompt_style=args.prompt_style,
        keep_predictions=not args.no_predictions,
        keep_responses=args.keep_responses,
    )
    summary = _run(args, rows, process, f"pass@{args.k}")
    if args.report and Path(args.output).is_file():
        _print_report([args.output], args.k, as_json=False)
    return _finish(summary)


def _print_report(paths: list[str], k: int, *, as_json: bool) -> list[dict[str, Any]]:
    import json

    from vlm_capcurriculum.data.passk import pass_rate_histogram, render_histogram
    from vlm_capcurriculum.schema.readers import iter_rows

    rows: list[dict[str, Any]] = []
    rates: list[float] = []
    for path in paths:
        for location, row in iter_rows(path):
            rate = row.get("pass_rate") if isinstance(row, dict) else None
            if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 <= rate <= 1:
                raise CLIError(f"{location}: field 'pass_rate': needs a number in [0, 1], got {rate!r}")
            rows.append(row)
            rates.append(float(rate))
    try:
        histogram = pass_rate_histogram(rates, k)
    except ValueError as err:
        raise CLIError(f"{', '.join(paths)}: {err}") from None
    print(json.dumps(histogram) if as_json else render_histogram(histogram))
    return rows


@jobs.guarded
def run_passk_report(args: argparse.Namespace) -> int:
    from vlm_capcurriculum.data.io import AtomicJsonlWriter
    from vlm_capcurriculum.data.passk import without_solved

    if args.k < 1:
        raise CLIError(f"-k must be >= 1, got {args.k}")
    rows = _print_report(args.input, args.k, as_json=args.json)
    if args.without_solved:
        kept, dropped = without_solved(rows)
        with AtomicJsonlWriter(args.without_solved) as writer:
            for row in kept:
                writer.write(row)
        print(
            f"passk-report: wrote {len(kept)} rows to {args.without_solved}; dropped {dropped} with pass rate 1",
            file=sys.stderr,
        )
    return 0


@jobs.guarded
def run_split(args: argparse.Namespace) -> int:
    from vlm_capcurriculum.data.split import split_file

    summary = split_file(
        args.input,
        args.output_dir,
        prefix=args.prefix,
        key=args.key,
        val_ratio=args.val_ratio,
        test_ratio=args.test_ratio,
        seed=args.seed,
    )
    print(
        f"split: {summary.line()}; files in {args.output_dir}; summary: {summary.outputs['summary']}", file=sys.stderr
    )
    return 0


@jobs.guarded
def run_convert(args: argparse.Namespace) -> int:
    from vlm_capcurriculum.data.convert import convert

    summary = convert(
        args.source,
        args.input,
        args.output,
        image_root=args.image_root,
        image_dir=args.image_dir,
        capability=args.capability,
        check_images=not args.no_check_images,
        limit=args.limit,
    )
    print(
        f"{args.source}: {summary.line()}; records: {args.output}; bad rows: {summary.outputs['issues']}",
        file=sys.stderr,
    )
    return jobs.ROWS_FAILED if args.strict and summary.skipped else 0


@jobs.guarded
def run_caption_sft(args: argparse.Namespace) -> int:
    from vlm_capcurriculum.data.caption_sft import write_caption_sft
    from vlm_capcurriculum.data.captions import read_captions

    items = read_captions(
        args.captions, args.source, image_root=args.image_root, image_column=args.image_column, limit=args.limit
    )
    summary = write_caption_sft(
        items,
        args.output,
        fmt=args.format,
        instruction=args.instruction,
        image_root=args.image_root,
        absolute_images=args.absolute_images,
    )
    skipped = sum(summary.bad.values())
    print(
        f"caption-sft: wrote {summary.written} rows to {args.output}"
        + (f"; skipped {skipped} (see {summary.outputs['issues']})" if skipped else ""),
        file=sys.stderr,
    )
    return 0
