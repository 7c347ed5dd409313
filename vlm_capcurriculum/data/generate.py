"""Perception MCQs from captions (the paper's Stage-1 synthesis, reference ``data_pipeline/generate_qa.py``): an LLM
reads a detailed caption and writes one four-option question about a spatial relation or a fine visible detail, as
JSON (``prompts/perception_mcq.txt``). A malformed answer is a reject with its reason and raw text; a kept one is a
``perception`` record with the caption beside it for the filter (both listed in ``data_recipes/README.md``).
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from vlm_capcurriculum.data.captions import Caption
from vlm_capcurriculum.data.client import Backend
from vlm_capcurriculum.data.convert.base import options_block
from vlm_capcurriculum.data.inputs import BadRow
from vlm_capcurriculum.data.jobs import Process, Reject
from vlm_capcurriculum.data.prompting import PromptTemplate
from vlm_capcurriculum.data.request import ChatRequest, SamplingParams
from vlm_capcurriculum.data.runner import Runner

LETTERS = ("A", "B", "C", "D")
#: Paper defaults: greedy, 512 new tokens (reference generate_qa.py --temperature 0.0 --max-tokens 512).
GENERATE_SAMPLING = SamplingParams(temperature=0.0, max_tokens=512)

_FENCED = re.compile(r"```(?:json)?\s*(\{.*?\})\s*```", re.DOTALL | re.IGNORECASE)
_THINK = re.compile(r"<think>.*?</think>", re.DOTALL | re.IGNORECASE)
_OPTION_KEY = re.compile(r"\(?\s*([A-Za-z])\s*\)?[.:)]?")
_ANSWER = re.compile(r"(?:option\s*)?\(?\s*([A-Da-d])\s*\)?[.:)]?", re.IGNORECASE)


@dataclass(frozen=True)
class MCQ:
    question: str
    options: dict[str, str]
    answer: str


class MalformedMCQ(ValueError):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


def _json_objects(text: str) -> Iterable[Any]:
    """JSON values in ``text``: fenced blocks first, then every ``{`` that starts a decodable value."""
    for match in _FENCED.finditer(text):
        try:
            value = json.loads(match.group(1))
        except ValueError:
            continue
        yield value
    decoder = json.JSONDecoder()
    start = text.find("{")
    while start != -1:
        try:
            value, end = decoder.raw_decode(text, start)
        except ValueError:
            start = text.find("{", start + 1)
            continue
        yield value
        start = text.find("{", end)


def _fold(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s]", " ", text.casefold()).split())


def parse_mcq(text: str) -> MCQ:
    """The question in a generation, or :class:`MalformedMCQ` with the reason it is not one."""
    text = _THINK.sub("", text)
    found = next((v for v in _json_objects(text) if isinstance(v, Mapping) and "question" in v), None)
    if found is None:
        raise MalformedMCQ("no_json", "no JSON object with a 'question' in the reply")
    question = found.get("question")
    if not isinstance(question, str) or not question.strip():
        raise MalformedMCQ("missing_question", f"question is {question!r}")
    raw = found.get("options")
    if isinstance(raw, list):
        raw = dict(zip(LETTERS + tuple("EFGHIJ"), raw, strict=False))
    if not isinstance(raw, Mapping):
        raise MalformedMCQ("missing_option", f"options must be an object A-D, got {type(raw).__name__}")
    options: dict[str, str] = {}
    for key, value in raw.items():
        match = _OPTION_KEY.fullmatch(str(key).strip())
        letter = match.group(1).upper() if match else str(key)
        if letter not in LETTERS:
            raise MalformedMCQ("extra_option", f"option {key!r} is not one of A-D")
        if not isinstance(value, (str, int, float)) or isinstance(value, bool) or not str(value).strip():
            raise MalformedMCQ("missing_option", f"option {letter} is {value!r}")
        options[letter] = str(value).strip()
    absent = [letter for letter in LETTERS if letter not in options]
    if absent:
        raise MalformedMCQ("missing_option", f"option(s) {', '.join(absent)} missing")
    folded = [_fold(options[letter]) for letter in LETTERS]
    if len(set(folded)) < len(folded):
        raise MalformedMCQ("duplicate_options", "two options say the same: " + json.dumps(options))
    answer = found.get("answer")
    match = _ANSWER.fullmatch(answer.strip()) if isinstance(answer, str) else None
    if match is None:
        raise MalformedMCQ("answer_not_in_options", f"answer {answer!r} is not one of the letters A-D")
    return MCQ(question.strip(), {letter: options[letter] for letter in LETTERS}, match.group(1).upper())


def shuffled(mcq: MCQ, key: str) -> MCQ:
    """``mcq`` with its options in an order fixed by ``key`` (generators favour some letters for the true
    option; the paper keeps the generator's order, so this is opt-in)."""
    order = list(LETTERS)
    random.Random(hashlib.sha256(key.encode("utf-8")).digest()).shuffle(order)
    options = {new: mcq.options[old] for new, old in zip(LETTERS, order, strict=True)}
    return MCQ(mcq.question, options, LETTERS[order.index(mcq.answer)])


def mcq_record(caption: Caption, mcq: MCQ, generator: str) -> dict[str, Any]:
    return {
        "id": caption.id,
        "capability": "perception",
        "problem": f"<image>{mcq.question}\n{options_block(mcq.options)}",
        "images": [caption.image],
        "answer": mcq.answer,
        "answer_type": "choice",
        "choices": dict(mcq.options),
        "pass_rate": None,
        "source": caption.source,
        "caption": caption.caption,
        "question": mcq.question,
        "generator": generator,
        **({"meta": caption.meta} if caption.meta else {}),
    }


def generate_rows(items: Iterable[Caption | BadRow]) -> list[dict[str, Any]]:
    """Job rows (``{"id", "caption"}`` or ``{"id", "bad"}``) in input order; ids made unique where a corpus
    repeats one (a second ``x`` becomes ``x#2``), so one duplicate does not stop the run."""
    rows: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    for item in items:
        if isinstance(item, BadRow):
            rows.append({"id": item.id, "bad": item})
            continue
        seen[item.id] = seen.get(item.id, 0) + 1
        rid = item.id if seen[item.id] == 1 else f"{item.id}#{seen[item.id]}"
        rows.append({"id": rid, "caption": item})
    return rows


def make_generate(
    backend: Backend,
    *,
    prompt: PromptTemplate | None = None,
    sampling: SamplingParams = GENERATE_SAMPLING,
    shuffle_options: bool = False,
) -> Process:
    """The job ``process`` of the generate pipeline (rows from :func:`generate_rows`)."""
    template = prompt or PromptTemplate.packaged("perception_mcq.txt", required=("caption",))

    async def process(row: dict[str, Any], runner: Runner) -> dict[str, Any] | Reject:
        if isinstance(row.get("bad"), BadRow):
            return row["bad"].reject()
        caption: Caption = row["caption"]
        request = ChatRequest.user(template.fill(caption=caption.caption))
        answer = await runner.complete(backend, request, sampling)
        try:
            mcq = parse_mcq(answer.text)
        except MalformedMCQ as err:
            return Reject(
                err.reason,
                {"id": row["id"], "location": str(caption.location), "detail": str(err), "generation": answer.text},
            )
        if shuffle_options:
            mcq = shuffled(mcq, row["id"])
        return {**mcq_record(caption, mcq, backend.model), "id": row["id"]}

    return process
