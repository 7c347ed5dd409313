"""Handmade VLMEvalKit result files (its formats, read from its source). Standard library only: the stand-in
``run.py`` of the tests imports this from a separate process."""

from __future__ import annotations

import json
from pathlib import Path

MODEL = "Qwen3_VL_8B_Staged"
JUDGE = "haiku"


def write_results(work: Path, eval_id: str = "T20260101_Gabc") -> Path:
    """What VLMEvalKit leaves for three benchmarks: predictions plus each benchmark type's judged file."""
    run = work / MODEL / eval_id
    run.mkdir(parents=True)
    mcq = [
        {
            "index": i,
            "question": f"q{i}",
            "answer": "A",
            "prediction": f"<think>..</think> \\boxed{{{p}}}",
            "category": "coarse",
        }
        for i, p in enumerate("ABAA")
    ]
    (run / f"{MODEL}_MMStar.json").write_text(json.dumps(mcq))
    judged = [{**row, "GT": "A", "hit": int(row["prediction"].endswith("{A}")), "log": "matched"} for row in mcq]
    (run / f"{MODEL}_MMStar_{JUDGE}_result.json").write_text(json.dumps(judged))
    # POPE as TSV: yes/no extracted by VLMEvalKit's auxiliary matcher
    rows = [
        ("0", "Is there a dog?", "Yes", "yes there is"),
        ("1", "Is there a cat?", "No", "Yes."),
        ("2", "Is there a car?", "No", "No"),
    ]
    lines = ["index\tquestion\tanswer\tprediction"] + ["\t".join(r) for r in rows]
    (run / f"{MODEL}_POPE.tsv").write_text("\n".join(lines) + "\n")
    aux = ["index\tquestion\tanswer\tprediction\textracted"] + [
        "\t".join([*r, {"0": "Yes", "1": "Yes", "2": "No"}[r[0]]]) for r in rows
    ]
    (run / f"{MODEL}_POPE_auxmatch.tsv").write_text("\n".join(aux) + "\n")
    # MathVista: the judge's file holds only the extracted answer ('res'); the verdict lives in the score file
    vista = [{"index": 7, "question": "x?", "answer": "3", "prediction": "\\boxed{3}"}]
    (run / f"{MODEL}_MathVista_MINI.json").write_text(json.dumps(vista))
    (run / f"{MODEL}_MathVista_MINI_{JUDGE}.json").write_text(json.dumps([{**vista[0], "res": "3", "log": "ok"}]))
    (run / f"{MODEL}_MathVista_MINI_{JUDGE}_score.json").write_text(json.dumps([{"Task&Skill": "Overall"}]))
    return run
