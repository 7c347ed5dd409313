"""``vlmcc analyze``: the paper's analyses of evaluated checkpoints (the inputs are ``vlmcc eval``'s per-item rows).

vlmcc analyze perception --input staged.eval.jsonl --image-root BENCH/images --base-url URL --model JUDGE \\
    --output staged.audit.jsonl [--control] [--human-labels labels.jsonl]
vlmcc analyze length staged=staged.eval.jsonl merged=merged.eval.jsonl --compare staged merged

Outputs: docs/evaluation.md.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from vlm_capcurriculum.cli import CLIError, add_command_group, jobs


def register(subparsers: Any) -> None:
    analyses = add_command_group(subparsers, "analyze", __doc__.split("\n\n")[0], metavar="ANALYSIS")

    perception = analyses.add_parser("perception", help="judge-labelled causes of the wrong answers")
    perception.add_argument("--input", required=True, help="vlmcc eval per-item output (JSON lines)")
    perception.add_argument("--image-root", help="folder the image paths are relative to (default: the input's)")
    perception.add_argument("--prompt", help="judge prompt with {question}, {answer}, {response} (and {image_note})")
    perception.add_argument("--control", action="store_true", help="also audit with the image withheld")
    perception.add_argument("--human-labels", help="JSON lines of {id, label}: Cohen's kappa of the judge against them")
    jobs.model_options(perception, multi=False)
    jobs.sampling_options(perception, temperature=0.0, top_p=1.0, max_tokens=512)
    jobs.job_options(perception)
    perception.set_defaults(handler=run_perception)

    length = analyses.add_parser("length", help="response length per checkpoint, and a paired test of two")
    length.add_argument("inputs", nargs="+", metavar="[LABEL=]EVAL.jsonl", help="LABEL is run or run/stage")
    length.add_argument(
        "--compare", nargs=2, metavar=("FIRST", "SECOND"), help="labels to compare (e.g. merged staged)"
    )
    length.add_argument("--output", help="write the analysis here as JSON (default: print it)")
    length.set_defaults(handler=run_length)


@jobs.guarded
def run_perception(args: argparse.Namespace) -> int:
    from collections import Counter

    from vlm_capcurriculum.data.prompting import PromptTemplate
    from vlm_capcurriculum.evaluate.builtin import read_eval_rows
    from vlm_capcurriculum.evaluate.perception import (
        ERROR,
        default_prompt_text,
        is_audited,
        make_audit,
        read_human_labels,
        summarize_audit,
    )
    from vlm_capcurriculum.evaluate.report import audit_table

    rows = read_eval_rows(args.input)
    human = None
    if args.human_labels:
        human = read_human_labels(args.human_labels)
    required = ("question", "answer", "response")
    prompt = (
        PromptTemplate(default_prompt_text(), "package:evaluate/prompts/perception_audit.txt").checked(required)
        if args.prompt is None
        else PromptTemplate.from_file(args.prompt, required=required)
    )
    audited = [row for row in rows if is_audited(row)]
    not_audited = Counter(
        "correct" if row.get("correct") else "no response (request failed)" for row in rows if not is_audited(row)
    )
    if args.limit is not None:
        audited = audited[: max(args.limit, 0)]
    [backend] = jobs.backends(args)
    root = args.image_root or str(Path(args.input).parent)
    sampling = jobs.sampling(args)

    def audit(output: str | Path, control: bool) -> list[dict[str, Any]]:
        process = make_audit(backend, image_root=root, sampling=sampling, prompt=prompt, control=control)
        jobs.run(
            args,
            audited,
            process,
            output,
            desc="audit (image withheld)" if control else "audit",
            print_summary=False,
        )
        return read_eval_rows(str(output))

    results = audit(args.output, control=False)
    control = None
    control_path = jobs.beside(args.output, ".control.jsonl")
    if args.control:
        control = audit(control_path, control=True)
    summary = summarize_audit(
        results,
        eval_rows=len(rows),
        not_audited=not_audited,
        control_rows=control,
        human=human,
        judge=args.model,
        input=args.input,
        prompt=prompt.source,
        outputs={"labels": str(args.output), **({"control": str(control_path)} if control is not None else {})},
    )
    summary_path = jobs.write_summary(args, summary)
    print("\n".join(audit_table([(f"judge {args.model}", summary)])), file=sys.stderr)
    if summary["audited_without_image"]:
        print(
            f"vlmcc analyze: {summary['audited_without_image']} wrong answer(s) were judged without an image (text "
            "questions, or rows whose images are not in the eval output)",
            file=sys.stderr,
        )
    print(f"labels: {args.output}; summary: {summary_path}", file=sys.stderr)
    errors = sum(row["label"] == ERROR for row in [*results, *(control or [])])
    if errors:
        print(f"vlmcc analyze: {errors} judge request(s) failed (label 'error'); run again to retry", file=sys.stderr)
        return jobs.ROWS_FAILED
    return 0


@jobs.guarded
def run_length(args: argparse.Namespace) -> int:
    from vlm_capcurriculum.evaluate.builtin import read_eval_rows
    from vlm_capcurriculum.evaluate.length import analyze_lengths
    from vlm_capcurriculum.evaluate.report import length_table

    entries = []
    for item in args.inputs:
        label, sep, path = item.partition("=")
        if not sep:
            label, path = Path(item).name.split(".")[0], item
        if any(label == seen for seen, _ in entries):
            raise CLIError(f"label {label!r} given twice; name inputs LABEL=PATH")
        entries.append((label, read_eval_rows(path)))
    result = analyze_lengths(entries, tuple(args.compare) if args.compare else None)
    text = json.dumps(result, indent=2)
    if args.output:
        Path(args.output).write_text(text + "\n", encoding="utf-8")
    else:
        print(text)
    print("\n".join(length_table(result)), file=sys.stderr)
    return 0
