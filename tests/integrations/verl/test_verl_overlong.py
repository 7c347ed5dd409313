"""Over-long training prompts are dropped and counted when a verl run starts (EasyR1's filter_overlong_prompts),
measured by verl's own filter, and the run is written again without them, so verl never meets one mid-run."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

pytest.importorskip("verl")

from testkit import REPO
from verl_samples import SAMPLE_RECIPE_OVERRIDES

from vlm_capcurriculum.config import load_config
from vlm_capcurriculum.integrations.verl.launch import prepare_run
from vlm_capcurriculum.integrations.verl.overlong import overlong_rows


def test_overlong_prompts_are_dropped_counted_and_replanned(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, byte_bpe_tokenizer_dir: str, capsys
) -> None:
    monkeypatch.chdir(REPO)
    overrides = [*SAMPLE_RECIPE_OVERRIDES, f"backend.output_dir={tmp_path}", f"model.path={byte_bpe_tokenizer_dir}"]
    recipe = load_config(REPO / "recipes" / "config.yaml", [*overrides, "train.max_prompt_length=200"])
    assert recipe.backend.drop_overlong_prompts  # recipes/backend/verl.yaml
    full = prepare_run(recipe)  # what a dry run writes: nothing measured
    dropped = overlong_rows(full.config, full.train_files)
    per_stage = [sum(1 for i in dropped if 36 * k <= i < 36 * (k + 1)) for k in range(3)]
    assert 0 < len(dropped) < 108 and per_stage[1] > 0

    run = prepare_run(recipe, measure_prompts=True)
    out = capsys.readouterr().out
    assert f"verl: dropped {len(dropped)} training prompts longer than data.max_prompt_length=200 tokens" in out
    assert "perception {}, text_reasoning {}, visual_reasoning {}".format(*per_stage) in out
    assert run.output_dir == full.output_dir  # the same run directory, resumable
    kept = [36 - n for n in per_stage]
    assert [len(stage.records) for stage in run.data.stages] == kept
    assert [pq.ParquetFile(path).metadata.num_rows for path in run.train_files] == kept
    assert overlong_rows(run.config, run.train_files) == []  # verl would now drop nothing
    assert run.plan.total_steps == sum(n // 8 for n in kept) < full.plan.total_steps
    option = yaml.safe_load((run.config_dir / "curriculum" / "run.yaml").read_text())
    stage_files = [stage["train_files"] for stage in option["curriculum"]["stages"]]
    assert [Path(files[0]).name for files in stage_files] == [
        "kept_01_perception.jsonl",
        "kept_02_text_reasoning.jsonl",
        "kept_03_visual_reasoning.jsonl",
    ]
    first = json.loads(Path(stage_files[0][0]).read_text().splitlines()[0])
    root = Path(option["curriculum"]["stages"][0]["image_root"])  # images stay inside their stage's image root
    assert not Path(first["images"][0]).is_absolute() and (root / first["images"][0]).is_file()
