"""``vlmcc eval --backend vlmevalkit``: the paper's numbers come from VLMEvalKit (reference
``evaluation/run_eval.sh``); this backend writes its config, runs it as a separate process and reads its per-item
results back into ``vlmcc eval``'s rows. The judge is asked first (:func:`check_judge`): VLMEvalKit falls back to
exact matching, with only a warning, when its judge does not answer. Config and read-back formats:
docs/evaluation.md.
"""

from __future__ import annotations

import csv
import json
import math
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

#: The paper's main table (reference ``evaluation/run_eval.sh`` MAIN_BENCH) -> VLMEvalKit dataset class.
PAPER_BENCHMARKS: dict[str, str] = {
    "MathVista_MINI": "MathVista",
    "MathVision_MINI": "MathVision",
    "MathVerse_MINI_Vision_Intensive": "MathVerse",
    "WeMath": "WeMath",
    "A-OKVQA": "ImageMCQDataset",
    "RealWorldQA": "ImageMCQDataset",
    "MMStar": "ImageMCQDataset",
    "POPE": "ImageYORNDataset",
}
#: The judge of the paper (reference ``run_eval.sh``: ``bedrock-claude-haiku-4.5``).
PAPER_JUDGE = "claude-haiku-4.5"
#: VLMEvalKit's ``LMDeployWrapper`` default; the reference keeps it.
VLMEVALKIT_MAX_TOKENS = 16384


class VLMEvalKitError(RuntimeError):
    """VLMEvalKit cannot be run, its judge does not answer, or its results cannot be read."""


def system_prompt() -> str:
    """The training format prompt without a problem: the instruction the reference passes as system prompt."""
    from vlm_capcurriculum.prompts import render_prompt

    return render_prompt("").strip()


def write_config(
    path: str | os.PathLike[str],
    *,
    name: str,
    served_model: str,
    base_url: str,
    benchmarks: Sequence[str],
    system: str | None,
    temperature: float = 0.0,
    max_tokens: int = VLMEVALKIT_MAX_TOKENS,
    classes: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """VLMEvalKit's ``--config`` JSON (docs/en/ConfigSystem.md): one ``LMDeployAPI`` model, one entry per dataset."""
    classes = {**PAPER_BENCHMARKS, **(classes or {})}
    unknown = [benchmark for benchmark in benchmarks if benchmark not in classes]
    if unknown:
        raise VLMEvalKitError(
            f"no VLMEvalKit dataset class known for {', '.join(unknown)}; give it as NAME=CLASS "
            f"(known: {', '.join(PAPER_BENCHMARKS)})"
        )
    model: dict[str, Any] = {
        "class": "LMDeployAPI",
        "model": served_model,
        "api_base": base_url.rstrip("/") + "/chat/completions",
        "temperature": temperature,
        "max_tokens": max_tokens,
        "retry": 10,
    }
    if system:
        model["system_prompt"] = system
    config = {
        "model": {name: model},
        "data": {benchmark: {"class": classes[benchmark], "dataset": benchmark} for benchmark in benchmarks},
    }
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return config


def check_judge(base_url: str, model: str, api_key_env: str | None, *, retry_delay: float = 1.0) -> str:
    """Ask the judge one question; its reply, or :class:`VLMEvalKitError` when it gives none."""
    from vlm_capcurriculum.data.client import ModelAccessError, RetryPolicy
    from vlm_capcurriculum.data.openai_backend import OpenAIBackend
    from vlm_capcurriculum.data.request import ChatRequest, SamplingParams
    from vlm_capcurriculum.data.runner import map_requests

    try:
        backend = OpenAIBackend(
            base_url,
            model,
            api_key_env=api_key_env,
            timeout=120.0,
            retry=RetryPolicy(max_attempts=3, base_delay=retry_delay),
        )
        [answer] = map_requests(
            backend,
            [ChatRequest.user("Reply with the single word: ready")],
            SamplingParams(temperature=0.0, max_tokens=16),
            progress=False,
        )
    except ModelAccessError as err:
        raise VLMEvalKitError(f"the judge {model} at {base_url} does not answer ({err})") from None
    if isinstance(answer, Exception) or not answer.text.strip():
        detail = str(answer) if isinstance(answer, Exception) else "an empty reply"
        raise VLMEvalKitError(
            f"the judge {model} at {base_url} does not answer ({detail}); VLMEvalKit would silently fall back to "
            "exact matching, so the run is refused"
        )
    return answer.text


def vlmevalkit_command(
    home: str | os.PathLike[str],
    config: str | os.PathLike[str],
    work_dir: str | os.PathLike[str],
    *,
    judge: str,
    judge_base_url: str,
    judge_key_env: str | None,
    nproc: int = 8,
) -> tuple[list[str], dict[str, str]]:
    """``run.py``'s command line and environment (the judge's key passed from its environment variable)."""
    run_py = Path(home) / "run.py"
    if not run_py.is_file():
        raise VLMEvalKitError(f"{run_py}: not found; point --vlmevalkit (or VLMEVALKIT_HOME) at a VLMEvalKit clone")
    command = [
        sys.executable,
        str(run_py),
        "--config",
        str(Path(config).resolve()),
        "--work-dir",
        str(Path(work_dir).resolve()),
        "--judge",
        judge,
        "--judge-base-url",
        judge_base_url,
        "--api-nproc",
        str(nproc),
        "--reuse",
    ]
    env = {**os.environ, "PRED_FORMAT": "json", "EVAL_FORMAT": "json"}
    key = os.environ.get(judge_key_env or "OPENAI_API_KEY")
    if key:
        command += ["--judge-key", key]
    return command, env


def run_vlmevalkit(command: Sequence[str], env: Mapping[str, str], cwd: str | os.PathLike[str]) -> None:
    try:
        done = subprocess.run(list(command), env=dict(env), cwd=cwd, check=False)
    except OSError as err:
        raise VLMEvalKitError(f"cannot start VLMEvalKit: {err}") from None
    if done.returncode != 0:
        raise VLMEvalKitError(f"VLMEvalKit exited with status {done.returncode} ({' '.join(command[:2])})")


# -- read-back ---------------------------------------------------------------------------------------------------

_FORMATS = ("json", "tsv", "xlsx")


def read_table(path: Path) -> list[dict[str, Any]]:
    """The records of a VLMEvalKit result file (JSON list of records, TSV, or XLSX through pandas)."""
    if path.suffix == ".json":
        data = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(data, dict):  # a dict of columns (pandas' default orient) is read as well
            columns = list(data)
            keys = list(data[columns[0]]) if columns else []
            data = [{column: data[column][key] for column in columns} for key in keys]
        if not isinstance(data, list) or not all(isinstance(row, dict) for row in data):
            raise VLMEvalKitError(f"{path}: expected a list of records")
        return data
    if path.suffix == ".tsv":
        with path.open(encoding="utf-8", newline="") as handle:
            return list(csv.DictReader(handle, delimiter="\t"))
    try:
        import pandas
    except ImportError:
        raise VLMEvalKitError(f"{path}: reading .xlsx needs pandas and openpyxl; rerun with PRED_FORMAT=json") from None
    return pandas.read_excel(path).to_dict("records")


def _flag(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return None if math.isnan(value) else value > 0  # NaN: a cell left empty
    if isinstance(value, str) and value.strip():
        try:
            return float(value) > 0
        except ValueError:
            return value.strip().lower() in ("true", "yes")
    return None


def _verdict_of(row: Mapping[str, Any]) -> tuple[bool | None, Any]:
    """``(correct, extracted)`` from a judged row: ``hit``, else ``score``, else ``extracted`` vs ``answer``."""
    extracted = row.get("extracted", row.get("res", row.get("pred")))
    for column in ("hit", "score"):
        if column in row:
            return _flag(row[column]), extracted
    if "extracted" in row and row.get("answer") is not None:
        return str(row["extracted"]).strip().lower() == str(row["answer"]).strip().lower(), extracted
    return None, extracted


def read_results(
    work_dir: str | os.PathLike[str], model: str, benchmarks: Sequence[str], judge: str
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Per-item rows (``vlmcc eval``'s columns) for every prediction of every benchmark, and per benchmark which
    files they came from. A benchmark without a predictions file is an error naming where it was looked for."""
    root = Path(work_dir) / model
    rows: list[dict[str, Any]] = []
    files: dict[str, Any] = {}
    for benchmark in benchmarks:
        stem = f"{model}_{benchmark}"
        # the newest: VLMEvalKit nests runs in <model>/<eval id>/
        found = [path for fmt in _FORMATS for path in root.rglob(f"{stem}.{fmt}")]
        if not found:
            raise VLMEvalKitError(f"{root}: no predictions file {stem}.({'|'.join(_FORMATS)}) for {benchmark}")
        predictions = max(found, key=lambda path: path.stat().st_mtime)
        judged_path = next(
            (
                path
                for suffix in (f"_{judge}_result", "_auxmatch", f"_{judge}")
                if (path := predictions.with_name(predictions.stem + suffix + predictions.suffix)).exists()
            ),
            None,
        )
        judged = {str(row.get("index")): row for row in read_table(judged_path)} if judged_path else {}
        scores = sorted(str(path) for path in predictions.parent.glob(f"{stem}*_score.*"))
        scores += sorted(str(path) for path in predictions.parent.glob(f"{stem}*_acc.*"))
        files[benchmark] = {
            "predictions": str(predictions),
            "judged": str(judged_path) if judged_path else None,
            "scores": scores,
        }
        for number, row in enumerate(read_table(predictions), start=1):
            if "index" not in row or "prediction" not in row:
                raise VLMEvalKitError(f"{predictions}: record {number} has no 'index' or 'prediction'")
            index = str(row["index"])
            correct, extracted = _verdict_of(judged[index]) if index in judged else (None, None)
            prediction = row.get("prediction")
            rows.append(
                {
                    "id": f"{benchmark}:{index}",
                    "source": benchmark,
                    "capability": str(row.get("category") or ""),
                    "problem": row.get("question"),
                    "images": [],
                    "answer": None if row.get("answer") is None else str(row.get("answer")),
                    "model": model,
                    "prediction": None if prediction is None else str(prediction),
                    "extracted": None if extracted is None else str(extracted),
                    "correct": bool(correct),
                    "verdict": "ungraded" if correct is None else ("correct" if correct else "wrong"),
                    "response_tokens": None,
                    "length_source": None,
                    "finish_reason": None,
                    "graded_by": f"VLMEvalKit ({judge})" if correct is not None else None,
                }
            )
    return rows, files
