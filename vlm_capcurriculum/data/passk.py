"""Difficulty by pass@K: K sampled answers per question from the base model, graded by our rewards; the pass rate
(fraction correct) is what the difficulty curricula order by (paper Sec. 4.5).

Every capability works the same way: text-only questions are sent as text, image questions with their images
(``<image>`` placeholders mark where). Each question is asked in the training prompt (the problem followed by the
paper's ``<think>``/``\\boxed{}`` format prompt, rendered as every backend renders it: :mod:`vlm_capcurriculum.prompts`)
and each answer graded with
:func:`~vlm_capcurriculum.rewards.score_batch` against the record's own ground truth (answer type, options), the
same reward the trainer uses. The record comes back with ``pass_rate``; optionally ``predictions`` (the extracted
final answers), ``correctness`` (one boolean each, the columns of the paper's released files) and ``responses``.
Answers are extracted with ``extraction="lenient"`` (the fallback chain, not only the last box): pass@K measures
whether the base model can solve a question, and a right answer it forgot to box still says it can.

Paper settings (reference ``data_pipeline/passK/run_stage{1,2,3}.sh`` and ``run_inference.py``): Qwen3-VL-8B-
Instruct, K=16, temperature 0.7, top-p 0.9, 1024 new tokens. Samples are cached by index, so a later run with a
larger K generates only the extra ones; with a seed, sample i is seeded ``seed + i`` when the server ignores ``n``.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

from vlm_capcurriculum.data.client import Backend
from vlm_capcurriculum.data.inputs import bad_row_of
from vlm_capcurriculum.data.jobs import Process, Reject
from vlm_capcurriculum.data.prompting import PromptTemplate
from vlm_capcurriculum.data.request import ChatRequest, SamplingParams
from vlm_capcurriculum.data.runner import Runner
from vlm_capcurriculum.rewards import extract_answer, score_batch
from vlm_capcurriculum.schema import SampleRecord

#: Paper pass@K settings: K=16 at temperature 0.7, top-p 0.9, 1024 new tokens (passK/run_stage*.sh).
PAPER_K = 16
PASSK_SAMPLING = SamplingParams(temperature=0.7, top_p=0.9, max_tokens=1024, n=PAPER_K)
#: The columns a pass@K run writes (besides ``pass_rate``), as in the paper's released files.
PASSK_COLUMNS = ("predictions", "correctness", "responses")


def make_passk(
    backend: Backend,
    *,
    image_root: str | os.PathLike[str],
    sampling: SamplingParams = PASSK_SAMPLING,
    prompt: PromptTemplate | None = None,
    system: str | None = None,
    keep_predictions: bool = True,
    keep_responses: bool = False,
) -> Process:
    """The job ``process`` of pass@K (rows from :func:`~vlm_capcurriculum.data.inputs.record_rows`)."""
    template = prompt or PromptTemplate.training_format()
    root = Path(image_root)

    async def process(row: dict[str, Any], runner: Runner) -> dict[str, Any] | Reject:
        bad = bad_row_of(row)
        if bad is not None:
            return bad.reject()
        record: SampleRecord = row["record"]
        request = ChatRequest.user(
            template.fill(problem=record.problem), [root / image for image in record.images], system=system
        )
        completion = await runner.complete(backend, request, sampling)
        responses = completion.texts
        truth = record.ground_truth()
        # Scoring may wait on the guarded symbolic workers (up to their time limit): off the event loop, so the
        # other questions' requests keep flowing meanwhile.
        scores = await asyncio.to_thread(score_batch, responses, [truth] * len(responses), extraction="lenient")
        correct = [s["accuracy"] == 1.0 for s in scores]
        out = {k: v for k, v in record.to_dict().items() if k not in PASSK_COLUMNS}  # no stale columns
        out["pass_rate"] = sum(correct) / len(correct)
        if keep_predictions:
            out["predictions"] = [extract_answer(r, record.answer_type, extraction="lenient") for r in responses]
            out["correctness"] = correct
        if keep_responses:
            out["responses"] = responses
        return out

    return process
