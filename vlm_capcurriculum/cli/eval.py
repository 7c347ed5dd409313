"""``vlmcc eval``: benchmark accuracy of a served checkpoint, graded by our verifiers (or by VLMEvalKit).

vlmcc eval --input mathvista_mini.jsonl --input pope.jsonl --image-root BENCH/images \\
    --base-url http://localhost:8000/v1 --model staged --output staged.eval.jsonl

Outputs and exit status: docs/evaluation.md.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from vlm_capcurriculum.cli import CLIError, add_command, jobs


def register(subparsers: Any) -> None:
    parser = add_command(subparsers, "eval", __doc__.split("\n\n")[0])
    parser.add_argument("--backend", default="builtin", choices=("builtin", "vlmevalkit"), help="default: builtin")
    parser.add_argument("--input", action="append", help="benchmark records (repeatable; built-in backend)")
    parser.add_argument("--image-root", help="folder the image paths are relative to (default: the input's)")
    parser.add_argument(
        "--capability",
        default="unlabelled",
        help="capability of rows that carry none (benchmark files rarely do; default: %(default)s)",
    )
    parser.add_argument("--prompt", help="template with {problem} (default: the training prompt)")
    parser.add_argument("--system", help="system message (default: none, as in training)")
    parser.add_argument(
        "--tokenizer", help="tokenizer (path or name) counting response tokens when the server reports no usage"
    )
    jobs.model_options(parser, multi=False)
    from vlm_capcurriculum.evaluate.builtin import EVAL_MAX_TOKENS, EVAL_TEMPERATURE

    jobs.sampling_options(parser, temperature=EVAL_TEMPERATURE, top_p=1.0, max_tokens=EVAL_MAX_TOKENS)
    for action in parser._actions:  # the limit depends on the backend: resolved in run_eval
        if action.dest == "max_tokens":
            action.default = None
            action.help = f"default: {EVAL_MAX_TOKENS} (built-in), VLMEvalKit's own 16384 (vlmevalkit backend)"
    jobs.job_options(parser)
    kit = parser.add_argument_group("VLMEvalKit backend (--backend vlmevalkit)")
    kit.add_argument(
        "--benchmark",
        action="append",
        metavar="NAME[=CLASS]",
        help="VLMEvalKit dataset (repeatable; default: the paper's eight; CLASS for one we do not know)",
    )
    kit.add_argument("--vlmevalkit", help="VLMEvalKit clone holding run.py (default: $VLMEVALKIT_HOME)")
    kit.add_argument("--work-dir", help="VLMEvalKit's work dir (default: OUTPUT.vlmevalkit/)")
    kit.add_argument("--judge", help="judge model name (the paper: claude-haiku-4.5)")
    kit.add_argument("--judge-base-url", help="the judge's OpenAI-compatible API root")
    kit.add_argument("--judge-api-key-env", help="environment variable holding the judge's key")
    kit.add_argument("--no-system", action="store_true", help="no system prompt (the paper's base models)")
    kit.add_argument("--read-back", action="store_true", help="do not run VLMEvalKit; read the work dir's results")
    parser.set_defaults(handler=run_eval)


@jobs.guarded
def run_eval(args: argparse.Namespace) -> int:
    if args.backend == "vlmevalkit":
        return run_vlmevalkit_eval(args)
    from vlm_capcurriculum.evaluate.builtin import EVAL_MAX_TOKENS

    args.max_tokens = EVAL_MAX_TOKENS if args.max_tokens is None else args.max_tokens
    if not args.input:
        raise CLIError("--input is required (benchmark records) with the built-in backend")
    from vlm_capcurriculum.data.inputs import record_rows
    from vlm_capcurriculum.evaluate.builtin import TokenCounter, make_eval, read_eval_rows, summarize

    [backend] = jobs.backends(args)
    prompt = None if args.prompt is None else jobs.template(args.prompt, "", ("problem",))  # None: the training prompt
    root = args.image_root or str(Path(args.input[0]).parent)
    rows = record_rows(args.input, image_root=root, capability=args.capability)
    if args.limit is not None:
        rows = rows[: max(args.limit, 0)]
    sampling = jobs.sampling(args)
    process = make_eval(
        backend,
        image_root=root,
        sampling=sampling,
        prompt=prompt,
        system=args.system,
        tokens=TokenCounter(args.tokenizer) if args.tokenizer else None,
    )
    rejects = args.rejects or jobs.beside(args.output, ".rejects.jsonl")
    run = jobs.run(
        args,
        rows,
        process,
        rejects=rejects,
        desc=f"eval {args.model}",
        print_summary=False,
    )
    invalid = sum(run.rejected.values())
    summary = summarize(
        read_eval_rows(args.output),
        invalid_rows=invalid,
        model=args.model,
        inputs=list(args.input),
        output=str(args.output),
        prompt=str(prompt.source) if prompt is not None else "training prompt (vlm_capcurriculum.prompts)",
        system=args.system,
        sampling={
            "temperature": sampling.temperature,
            "top_p": sampling.top_p,
            "max_tokens": sampling.max_tokens,
            "seed": sampling.seed,
        },
        run=run.to_dict(),
    )
    _publish(args, summary)
    problems = []
    if summary["errors"]:
        problems.append(f"{summary['errors']} request(s) failed and count as wrong; run the same command to retry")
    if invalid:
        problems.append(f"{invalid} input row(s) are not valid records (see {rejects})")
    for problem in problems:
        print(f"vlmcc eval: {problem}", file=sys.stderr)
    return jobs.ROWS_FAILED if problems else 0


def _publish(args: argparse.Namespace, summary: dict[str, Any]) -> None:
    """Write the summary, print its table and where both files are."""
    from vlm_capcurriculum.evaluate.report import percent

    path = jobs.write_summary(args, summary)
    width = max([len("overall"), *(len(name) for name in summary["by_source"])])
    lines = [f"{'benchmark':<{width}}  {'items':>6}  {'correct':>7}  {'acc %':>6}  {'errors':>6}"]
    for name, tally in [*summary["by_source"].items(), ("overall", summary)]:
        lines.append(
            f"{name:<{width}}  {tally['items']:>6}  {tally['correct']:>7}  {percent(tally['accuracy']):>6}  "
            f"{tally['errors']:>6}"
        )
    print("\n".join(lines), file=sys.stderr)
    print(f"per-item results: {args.output}; summary: {path}", file=sys.stderr)


def run_vlmevalkit_eval(args: argparse.Namespace) -> int:
    import os

    from vlm_capcurriculum.data.io import AtomicJsonlWriter
    from vlm_capcurriculum.evaluate import vlmevalkit as kit
    from vlm_capcurriculum.evaluate.builtin import summarize

    benchmarks, classes = [], {}
    for item in args.benchmark or list(kit.PAPER_BENCHMARKS):
        name, _, cls = item.partition("=")
        benchmarks.append(name)
        if cls:
            classes[name] = cls
    judge = args.judge or kit.PAPER_JUDGE
    work_dir = Path(args.work_dir) if args.work_dir else jobs.beside(args.output, ".vlmevalkit")
    if not args.read_back:
        if not args.base_url or len(args.base_url) != 1:
            raise CLIError("--base-url (the served checkpoint's API root) is required once")
        if not args.judge_base_url:
            raise CLIError("--judge-base-url is required: VLMEvalKit's judge must be reachable (checked first)")
        home = args.vlmevalkit or os.environ.get("VLMEVALKIT_HOME")
        if not home:
            raise CLIError("--vlmevalkit (or VLMEVALKIT_HOME) must name a VLMEvalKit clone")
        config = work_dir / "vlmcc_config.json"
        kit.write_config(
            config,
            name=args.model,
            served_model=args.model,
            base_url=args.base_url[0],
            benchmarks=benchmarks,
            system=None if args.no_system else (args.system or kit.system_prompt()),
            temperature=args.temperature,
            max_tokens=kit.VLMEVALKIT_MAX_TOKENS if args.max_tokens is None else args.max_tokens,
            classes=classes,
        )
        kit.check_judge(args.judge_base_url, judge, args.judge_api_key_env, retry_delay=args.retry_delay)
        command, env = kit.vlmevalkit_command(
            home,
            config,
            work_dir,
            judge=judge,
            judge_base_url=args.judge_base_url,
            judge_key_env=args.judge_api_key_env,
            nproc=args.concurrency,
        )
        print(f"vlmcc eval: running VLMEvalKit: {' '.join(command[:4])} ...", file=sys.stderr)
        kit.run_vlmevalkit(command, env, home)
    rows, files = kit.read_results(work_dir, args.model, benchmarks, judge)
    writer = AtomicJsonlWriter(args.output)
    for row in rows:
        writer.write(row)
    writer.commit()
    summary = summarize(
        rows,
        model=args.model,
        backend="vlmevalkit",
        judge=judge,
        work_dir=str(work_dir),
        grading=f"VLMEvalKit with judge {judge}",
        files=files,
        output=str(args.output),
    )
    _publish(args, summary)
    ungraded = summary["verdicts"].get("ungraded", 0)
    if ungraded:
        print(
            f"vlmcc eval: {ungraded} item(s) have no per-item verdict in VLMEvalKit's files (see the summary's "
            "'files' for the benchmarks' official scores)",
            file=sys.stderr,
        )
    return 0
