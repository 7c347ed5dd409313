import json
import math

import pytest

from vlm_capcurriculum.curriculum.run_layout import STEPS_FILE, StepsLog, stage_dir, stage_summary, step_record


def test_stage_dir_numbers_from_one(tmp_path):
    assert stage_dir(tmp_path, 0, "perception") == tmp_path / "stages" / "01-perception"
    assert stage_dir(tmp_path, 11, "x") == tmp_path / "stages" / "12-x"


def test_step_record_maps_nan_to_null_and_keeps_extra_metrics():
    record = step_record(3, "perception", 0, ["a", 7], math.nan, 0.5, response_length=12.0, seconds=math.inf)
    assert record == {
        "step": 3, "stage": "perception", "stage_index": 1, "sample_ids": ["a", "7"],
        "reward": None, "accuracy": 0.5, "response_length": 12.0, "seconds": None,
    }
    json.dumps(record, allow_nan=False)


def test_resume_drops_later_steps_and_repairs_a_torn_line(tmp_path):
    log = StepsLog(tmp_path)
    log.resume_at(0)
    for step in (1, 2, 3):
        log.append(step_record(step, "s", 0, [str(step)], 1.0, 1.0))
    with (tmp_path / STEPS_FILE).open("a") as handle:
        handle.write('{"step": 4, "sta')  # killed mid-write
    assert [r["step"] for r in StepsLog(tmp_path).read()] == [1, 2, 3]
    resumed = StepsLog(tmp_path)
    resumed.resume_at(2)  # the newest checkpoint was step 2
    resumed.append(step_record(3, "s", 0, ["3"], 1.0, 1.0))
    assert [r["step"] for r in resumed.read()] == [1, 2, 3]
    assert (tmp_path / STEPS_FILE).read_text().endswith("\n")


def test_append_refuses_gaps_and_a_missing_resume(tmp_path):
    log = StepsLog(tmp_path)
    with pytest.raises(RuntimeError, match="resume_at"):
        log.append(step_record(1, "s", 0, [], 0.0, 0.0))
    log.resume_at(0)
    with pytest.raises(ValueError, match="step 2 logged after step 0"):
        log.append(step_record(2, "s", 0, [], 0.0, 0.0))


def test_stage_summary_averages_the_first_and_last_tenth_of_the_steps_that_ran(tmp_path):
    from vlm_capcurriculum.curriculum import build_plan, parse_curriculum
    from vlm_capcurriculum.curriculum.schedule import StageData

    spec = parse_curriculum({"batch_size": 1, "stages": [
        {"name": "a", "train_files": ["x.jsonl"], "steps": 20}, {"name": "b", "train_files": ["y.jsonl"], "steps": 3},
    ]})  # fmt: skip
    plan = build_plan(spec, [StageData(20, (None,) * 20), StageData(3, (None,) * 3)])
    records = [step_record(s, "a" if s <= 20 else "b", 0, [], float(s), 0.5, format=math.nan) for s in range(1, 22)]
    first = stage_summary(plan.stages[0], records, checkpoint="ck", validation={"val/accuracy": 1.0})
    assert first["reward_window"] == 2 and first["reward_start"] == 1.5 and first["reward_end"] == 19.5
    assert first["complete"] and first["format"] is None and first["checkpoint"] == "ck"
    second = stage_summary(plan.stages[1], records, checkpoint=None)
    assert (second["steps"], second["complete"], second["validation"]) == (1, False, None)
    assert stage_summary(plan.stages[1], records[:20], checkpoint=None) is None
