from __future__ import annotations

import copy

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vlm_capcurriculum.curriculum import Mode, PlanError, StageData, build_plan, parse_curriculum

SIZES = [StageData(10, tuple(i / 10 for i in range(10))), StageData(9, (0.5,) * 9), StageData(13, (1.0,) * 13)]


def plan_of(config, sizes=SIZES):
    return build_plan(parse_curriculum(config), sizes)


def test_staged_plan_expands_epochs_inside_each_stage(staged_config) -> None:
    plan = plan_of(staged_config())
    # floor(n / B) steps per epoch: perception 2 x 2, text 1 x 2, visual 3 steps (epochs 3 / 3 = 1)
    assert [(s.name, s.steps, s.start_step, s.end_step, s.epochs) for s in plan.stages] == [
        ("perception", 4, 1, 4, 2.0),
        ("text_reasoning", 2, 5, 6, 1.0),
        ("visual_reasoning", 3, 7, 9, 1.0),
    ]
    assert plan.total_steps == 9 and len(plan.indices) == 9 * 4
    assert [(d.offset, d.count) for d in plan.stage_data] == [(0, 10), (10, 9), (19, 13)]
    for stage, piece in zip(plan.stages, plan.stage_data, strict=True):
        for step in range(stage.start_step, stage.end_step + 1):
            assert plan.stage_at(step) is stage
            assert all(piece.offset <= i < piece.offset + piece.count for i in plan.batch(step))
    # within one epoch no sample repeats; across the two perception epochs the shuffles differ
    first, second = plan.indices[:8], plan.indices[8:16]
    assert len(set(first)) == 8 and len(set(second)) == 8 and first != second


def test_steps_cut_the_last_epoch_short(staged_config) -> None:
    config = staged_config()
    config["stages"][0] = {**config["stages"][0], "steps": 5}
    del config["stages"][0]["epochs"]
    stage = plan_of(config).stages[0]
    assert (stage.steps, stage.epochs) == (5, 2.5)


def test_plan_is_deterministic_in_the_seed(staged_config) -> None:
    assert plan_of(staged_config()).indices == plan_of(staged_config()).indices
    assert plan_of(staged_config()).indices != plan_of(staged_config(seed=2)).indices


def test_a_stage_keeps_its_shuffles_when_the_stage_order_changes(staged_config) -> None:
    config = staged_config()
    reordered = copy.deepcopy(config)
    reordered["stages"] = [config["stages"][1], config["stages"][0], config["stages"][2]]
    a = plan_of(config)
    b = plan_of(reordered, [SIZES[1], SIZES[0], SIZES[2]])
    # perception is stage 0 (offset 0) in a and stage 1 (offset 9) in b: same local order
    a_local = list(a.indices[:16])
    b_first = b.stages[1]
    b_local = [i - 9 for i in b.indices[(b_first.start_step - 1) * 4 : b_first.end_step * 4]]
    assert a_local == b_local


def test_easy_to_hard_sorts_each_epoch_and_spreads_the_left_out_samples(staged_config) -> None:
    rates = tuple((i % 7) / 7 for i in range(30))
    config = staged_config(order="easy_to_hard")
    config["stages"] = [{"name": "perception", "train_files": ["p"], "epochs": 20}]
    plan = build_plan(parse_curriculum(config), [StageData(30, rates)])
    per_epoch = 28  # floor(30 / 4) * 4
    seen: set[int] = set()
    for epoch in range(20):
        chunk = plan.indices[epoch * per_epoch : (epoch + 1) * per_epoch]
        assert [rates[i] for i in chunk] == sorted((rates[i] for i in chunk), reverse=True)
        seen |= set(chunk)
    assert seen == set(range(30))  # the two samples left out differ from epoch to epoch


def test_hard_to_easy_and_file_orders(staged_config) -> None:
    config = staged_config(order="hard_to_easy")
    config["stages"] = [{"name": "p", "train_files": ["p"], "epochs": 1}]
    plan = build_plan(parse_curriculum(config), [StageData(8, (0.9, 0.1, 0.5, 0.3, 0.7, 0.2, 0.8, 0.4))])
    assert list(plan.indices) == [1, 5, 3, 7, 2, 4, 6, 0]
    config["order"] = "file"
    plan = build_plan(parse_curriculum(config), [StageData(10)])
    assert list(plan.indices) == list(range(8))


def test_merged_pools_all_data_for_the_staged_total(staged_config) -> None:
    config = staged_config(mode="merged", overrides={"vision_tower": "frozen"})
    for stage in config["stages"]:
        stage.pop("overrides")
    staged = plan_of(staged_config())
    merged = plan_of(config)
    assert merged.total_steps == staged.total_steps == 9
    (pool,) = merged.stages
    assert (pool.name, pool.capability, pool.num_samples) == (
        "merged",
        "perception+text_reasoning+visual_reasoning",
        32,
    )
    assert pool.state.set_fields() == {"vision_tower": "frozen"}
    assert set(merged.indices) - set(range(32)) == set()
    # capabilities are interleaved, not staged
    assert {i // 10 for i in merged.indices[:16]} != {0}


def test_merged_difficulty_orders_the_pool(staged_config) -> None:
    config = staged_config(mode="merged", order="easy_to_hard")
    for stage in config["stages"]:
        stage.pop("overrides")
    plan = plan_of(config)
    rates = [r for data in SIZES for r in data.pass_rates]
    epoch = plan.indices[:32]  # floor(32 / 4) = 8 steps, one pool epoch
    assert [rates[i] for i in epoch] == sorted((rates[i] for i in epoch), reverse=True)


def test_stitched_replay_runs_every_stage_every_pass(staged_config) -> None:
    config = staged_config(mode="stitched_replay", epochs=2)
    for stage in config["stages"]:
        stage.pop("epochs", None)
        stage.pop("steps", None)
    plan = plan_of(config)
    assert [(s.name, s.replay_pass, s.start_step, s.end_step) for s in plan.stages] == [
        ("perception", 1, 1, 2),
        ("text_reasoning", 1, 3, 4),
        ("visual_reasoning", 1, 5, 7),
        ("perception", 2, 8, 9),
        ("text_reasoning", 2, 10, 11),
        ("visual_reasoning", 2, 12, 14),
    ]
    assert plan.stages[3].to_json()["pass"] == 2


def test_difficulty_order_without_pass_rates_is_an_error(staged_config) -> None:
    sizes = [SIZES[0], StageData(9, (0.5,) * 8 + (None,)), SIZES[2]]
    with pytest.raises(PlanError, match=r"text_reasoning.*1 of 9 records have none \(record 8\)"):
        plan_of(staged_config(order="easy_to_hard"), sizes)
    with pytest.raises(PlanError, match="needs pass_rate on every record; 10 of 10 records have none"):
        plan_of(staged_config(order="hard_to_easy"), [StageData(10), SIZES[1], SIZES[2]])


def test_a_stage_smaller_than_a_batch_is_an_error(staged_config) -> None:
    with pytest.raises(PlanError, match="'text_reasoning': 3 samples, fewer than one batch of 4"):
        plan_of(staged_config(), [SIZES[0], StageData(3), SIZES[2]])


def test_json_form(staged_config) -> None:
    data = plan_of(staged_config()).to_json()
    assert {"mode", "total_steps", "batch_size", "stages"} <= set(data)
    assert set(data["stages"][0]) >= {
        "name",
        "num_samples",
        "epochs",
        "steps",
        "start_step",
        "end_step",
        "order",
        "overrides",
    }
    assert data["stages"][0]["overrides"] == {
        "vision_tower": "trainable",
        "reset_optimizer": True,
        "refresh_reference": True,
        "save_checkpoint": True,
    }


# ---------------------------------------------------------------------------------------------- properties


@st.composite
def specs_and_sizes(draw):
    batch = draw(st.integers(1, 6))
    mode = draw(st.sampled_from(list(Mode)))
    order_choices = ["shuffle", "file", "easy_to_hard", "hard_to_easy"]
    stages, sizes = [], []
    for i in range(draw(st.integers(1, 4))):
        n = draw(st.integers(batch, batch * 4 + 3))
        stage = {"name": f"s{i}", "train_files": ["x"]}
        if mode is not Mode.stitched_replay:
            if draw(st.booleans()):
                stage["epochs"] = draw(st.integers(1, 3))
            else:
                stage["steps"] = draw(st.integers(1, 7))
        if mode is not Mode.merged:
            stage["order"] = draw(st.sampled_from(order_choices))
        stages.append(stage)
        sizes.append(StageData(n, tuple(draw(st.floats(0, 1)) for _ in range(n))))
    config = {
        "mode": mode.value,
        "batch_size": batch,
        "seed": draw(st.integers(0, 5)),
        "stages": stages,
        "order": draw(st.sampled_from(order_choices)),
    }
    if mode is Mode.stitched_replay:
        config["epochs"] = draw(st.integers(1, 3))
    return config, sizes


@settings(max_examples=100, deadline=None)
@given(specs_and_sizes())
def test_every_step_belongs_to_exactly_one_stage_and_draws_from_its_data(case) -> None:
    config, sizes = case
    spec = parse_curriculum(config)
    plan = build_plan(spec, sizes)
    assert len(plan.indices) == plan.total_steps * plan.batch_size
    assert plan.stages[0].start_step == 1
    for before, after in zip(plan.stages, plan.stages[1:], strict=False):
        assert after.start_step == before.end_step + 1
    for stage in plan.stages:
        assert stage.steps == stage.end_step - stage.start_step + 1 >= 1
    for step in range(1, plan.total_steps + 1):
        owners = [s for s in plan.stages if s.contains(step)]
        assert owners == [plan.stage_at(step)]
        batch = plan.batch(step)
        if plan.mode is Mode.merged:
            assert all(0 <= i < plan.dataset_size for i in batch)
        else:
            piece = plan.stage_data[owners[0].stage_index]
            assert all(piece.offset <= i < piece.offset + piece.count for i in batch)
    if plan.mode is Mode.merged:
        staged = dict(config, mode="staged")
        staged.pop("epochs", None)
        assert plan.total_steps == build_plan(parse_curriculum(staged), sizes).total_steps
    assert build_plan(spec, sizes).indices == plan.indices  # deterministic
