"""Difficulty by pass@K: K sampled answers per question from the base model, graded by our rewards; the pass rate
(fraction correct) is what the difficulty curricula order by (paper Sec. 4.5).

Every capability works the same way: text-only questions are sent as text, image questions with their images
(``<image>`` placeholders mark where). Each question is asked in the training prompt (the problem followed by the
paper's ``<think>``/``\\boxed{}`` format prompt, rendered as every backend renders it: :mod:`vlm_capcurriculum.prompts`)
and each answer graded
by :func:`vlm_capcurriculum.evaluate.grading.grade` (our rewards) against the record's own ground truth (answer
type, options), as ``vlmcc eval`` grades. The record comes back with ``pass_rate``; optionally ``predictions`` (the extracted
final answers), ``correctness`` (one boolean each, the columns of the paper's released files) and ``responses``.
Extraction is lenient (the fallback chain, not only the last box): pass@K measures whether the base model can
solve a question, and a right answer it forgot to box still says it can.

Paper settings (reference ``data_pipeline/passK/run_stage{1,2,3}.sh`` and ``run_inference.py``): Qwen3-VL-8B-
Instruct, K=16, temperature 0.7, top-p 0.9, 1024 new tokens, and top-k 20: ``run_inference.py`` never sets top-k,
so its ``GenerationConfig`` default (``top_k: int = 20`` in ``passK/models/base_model.py``) reached vLLM's
``SamplingParams``. Samples are cached by index, so a later run with a larger K generates only the extra ones; with
a seed, sample i is seeded ``seed + i`` when the server ignores ``n``.

Prompt placement: by default the question is asked in the training prompt (the user turn the policy sees during
GRPO), so difficulty is measured under the prompt it is trained with. ``prompt_style="reference"`` asks as the
reference did: the problem alone in the user turn and its format instruction (EasyR1's math prompt worded with
``<thinking>`` tags, ``passK/datasets/base_dataset.py``) as the system prompt (``prompts/passk_reference_system.txt``).

:func:`pass_rate_histogram` counts questions by correct answers (0..K), as the reference's ``analyze_pass_rate.py``
plots them; :func:`without_solved` is the reference's filtered difficulty file (``generate_curriculum_*.py``
writes every file twice, once without the questions of pass rate 1, which teach GRPO nothing: all K answers equal).
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

#: Paper pass@K settings: K=16 at temperature 0.7, top-p 0.9, 1024 new tokens (passK/run_stage*.sh), top-k 20
#: (the reference's GenerationConfig default, see the module docstring).
PAPER_K = 16
PAPER_TOP_K = 20
PASSK_SAMPLING = SamplingParams(temperature=0.7, top_p=0.9, max_tokens=1024, n=PAPER_K, extra=(("top_k", PAPER_TOP_K),))
PROMPT_STYLES = ("training", "reference")
REFERENCE_SYSTEM_PROMPT = "passk_reference_system.txt"
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
        system = PromptTemplate.packaged(REFERENCE_SYSTEM_PROMPT).fill()
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
    """A text histogram: one line per number of correct answers."""
    counts, total = histogram["correct_counts"], histogram["questions"]
    top = max(counts) or 1
    mean = histogram["mean_pass_rate"]
    lines = [f"pass@{histogram['k']}: {total} questions, mean pass rate {mean:.3f}" if total else "no questions"]
    for correct, count in enumerate(counts):
        share = count / total if total else 0.0
        lines.append(f"{correct:>3}/{histogram['k']} {count:>8} {share:6.1%} {'#' * round(width * count / top)}")
    return "\n".join(lines)


def without_solved(rows: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], int]:
    """The rows whose pass rate is below 1 (the reference's ``*_filtered_new`` difficulty files), in their order,
    and how many were dropped."""
    kept = [row for row in rows if row["pass_rate"] != 1]
    return kept, len(rows) - len(kept)
