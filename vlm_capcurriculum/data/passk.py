"""Difficulty by pass@K (paper Sec. 4.5): K sampled answers per question from the base model, graded by our rewards
as ``vlmcc eval`` grades (:func:`vlm_capcurriculum.evaluate.grading.grade`, lenient extraction: a right answer the
model forgot to box still shows it can solve the question); the pass rate orders the difficulty curricula.

Each question is asked in the training prompt, so difficulty is measured under the prompt GRPO trains with;
``prompt_style="reference"`` asks as the reference did (the problem alone, its format instruction as the system
prompt, ``prompts/passk_reference_system.txt``). Paper settings (reference ``data_pipeline/passK/run_stage*.sh``):
Qwen3-VL-8B-Instruct, K=16, temperature 0.7, top-p 0.9, 1024 new tokens, and top-k 20: ``run_inference.py`` never
sets it, so its ``GenerationConfig`` default (``passK/models/base_model.py``) reached vLLM.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

from vlm_capcurriculum.data.client import Backend
from vlm_capcurriculum.data.inputs import over_records
from vlm_capcurriculum.data.jobs import Process, Reject
from vlm_capcurriculum.data.prompting import PromptTemplate
from vlm_capcurriculum.data.request import ChatRequest, SamplingParams
from vlm_capcurriculum.data.runner import Runner
from vlm_capcurriculum.evaluate.grading import grade
from vlm_capcurriculum.schema import SampleRecord

#: The paper's settings (module docstring).
PAPER_K = 16
PAPER_TOP_K = 20
PASSK_SAMPLING = SamplingParams(temperature=0.7, top_p=0.9, max_tokens=1024, n=PAPER_K, extra=(("top_k", PAPER_TOP_K),))
PROMPT_STYLES = ("training", "reference")
#: The columns a pass@K run writes (besides ``pass_rate``), as in the paper's released files.
PASSK_COLUMNS = ("predictions", "correctness", "responses")


def make_passk(
    backend: Backend,
    *,
    image_root: str | os.PathLike[str],
    sampling: SamplingParams = PASSK_SAMPLING,
    prompt: PromptTemplate | None = None,
    system: str | None = None,
    prompt_style: str = "training",
    keep_predictions: bool = True,
    keep_responses: bool = False,
) -> Process:
    """The job ``process`` of pass@K (rows from :func:`~vlm_capcurriculum.data.inputs.record_rows`)."""
    if prompt_style not in PROMPT_STYLES:
        raise ValueError(f"prompt_style must be one of {', '.join(PROMPT_STYLES)}, got {prompt_style!r}")
    if prompt_style == "reference":
        if prompt is not None or system is not None:
            raise ValueError("prompt_style 'reference' sets both the user turn and the system prompt")
        template = PromptTemplate("{problem}", "the problem alone (reference passK)")
        system = PromptTemplate.packaged("passk_reference_system.txt").fill()
    else:
        template = prompt or PromptTemplate.training_format()
    root = Path(image_root)

    async def process(record: SampleRecord, runner: Runner) -> dict[str, Any] | Reject:
        request = ChatRequest.user(
            template.fill(problem=record.problem), [root / image for image in record.images], system=system
        )
        completion = await runner.complete(backend, request, sampling)
        responses = completion.texts
        # Grading may wait on the guarded symbolic workers (up to their time limit): off the event loop, so the
        # other questions' requests keep flowing meanwhile.
        n = len(responses)
        grades = await asyncio.to_thread(grade, responses, [record.ground_truth()] * n, [record.answer_type] * n)
        correct = [result.correct for result in grades]
        out = {k: v for k, v in record.to_dict().items() if k not in PASSK_COLUMNS}  # no stale columns
        out["pass_rate"] = sum(correct) / len(correct)
        if keep_predictions:
            out["predictions"] = [result.extracted for result in grades]
            out["correctness"] = correct
        if keep_responses:
            out["responses"] = responses
        return out

    return over_records(process)


def pass_rate_histogram(pass_rates: list[float], k: int) -> dict[str, Any]:
    """Questions per number of correct answers (0..K), as the reference's ``analyze_pass_rate.py`` counts them,
    with the mean and the two ends (never solved, always solved)."""
    counts = [0] * (k + 1)
    for rate in pass_rates:
        correct = round(rate * k)
        if not 0 <= correct <= k or abs(rate * k - correct) > 1e-6:
            raise ValueError(f"pass rate {rate} is not a multiple of 1/{k}: was it measured with another K?")
        counts[correct] += 1
    total = len(pass_rates)
    return {
        "k": k,
        "questions": total,
        "mean_pass_rate": sum(pass_rates) / total if total else None,
        "correct_counts": counts,
        "never_solved": counts[0],
        "always_solved": counts[k],
    }


def render_histogram(histogram: dict[str, Any], width: int = 40) -> str:
    counts, total = histogram["correct_counts"], histogram["questions"]
    top = max(counts) or 1
    mean = histogram["mean_pass_rate"]
    lines = [f"pass@{histogram['k']}: {total} questions, mean pass rate {mean:.3f}" if total else "no questions"]
    for correct, count in enumerate(counts):
        share = count / total if total else 0.0
        lines.append(f"{correct:>3}/{histogram['k']} {count:>8} {share:6.1%} {'#' * round(width * count / top)}")
    return "\n".join(lines)


def without_solved(rows: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], int]:
    """The rows whose pass rate is below 1 (the reference's ``*_filtered_new`` files: a question all K answers
    solve teaches GRPO nothing), in order, and how many were dropped."""
    kept = [row for row in rows if row["pass_rate"] != 1]
    return kept, len(rows) - len(kept)
