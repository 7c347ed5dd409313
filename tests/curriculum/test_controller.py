from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vlm_capcurriculum.curriculum import (
    CurriculumEngine,
    EngineBase,
    Mode,
    Operation,
    StageController,
    StageData,
    StepOrderError,
    UnsupportedOverrideError,
    build_plan,
    parse_curriculum,
    required_operations,
    validate_plan_for_engine,
)
from vlm_capcurriculum.curriculum.overrides import TABLE

SIZES = [StageData(8), StageData(4), StageData(12)]


def run(controller: StageController, steps) -> None:
    for step in steps:
        controller.before_step(step)
        controller.after_step(step)


def test_transitions_of_the_paper_shaped_staged_run(staged_config, recording_engine) -> None:
    plan = build_plan(parse_curriculum(staged_config()), SIZES)
    assert [(s.start_step, s.end_step) for s in plan.stages] == [(1, 4), (5, 5), (6, 8)]
    engine = recording_engine()
    assert isinstance(engine, CurriculumEngine)
    run(StageController(plan, engine), range(1, 9))
    assert engine.calls == [
        ("vision_tower_trainable", True),  # stage 1 state; its start actions are skipped at step 1
        ("save_stage_checkpoint", (0, 4)),
        ("vision_tower_trainable", False),
        ("reset_optimizer", None),
        ("refresh_reference", None),
        ("save_stage_checkpoint", (1, 5)),
        ("vision_tower_trainable", True),
        ("reset_optimizer", None),
        ("refresh_reference", None),
        ("save_stage_checkpoint", (2, 8)),
        ("validate", (2, 8)),
    ]


def test_resume_reapplies_the_current_stage_state_only(staged_config, recording_engine) -> None:
    plan = build_plan(parse_curriculum(staged_config()), SIZES)
    mid = recording_engine()
    run(StageController(plan, mid, completed_steps=6), range(7, 9))  # inside visual_reasoning
    assert mid.calls == [("vision_tower_trainable", True), ("save_stage_checkpoint", (2, 8)), ("validate", (2, 8))]
    boundary = recording_engine()
    run(StageController(plan, boundary, completed_steps=5), range(6, 9))  # exactly at its start
    assert boundary.calls[:3] == [
        ("vision_tower_trainable", True),
        ("reset_optimizer", None),
        ("refresh_reference", None),
    ]


def test_unset_knobs_return_to_the_base_value(staged_config, recording_engine) -> None:
    config = staged_config()
    config["stages"][1]["overrides"].update(lr=3e-7, reward={"format_weight": 0.2})
    plan = build_plan(parse_curriculum(config), SIZES)
    engine = recording_engine()
    controller = StageController(plan, engine)
    run(controller, range(1, 6))
    assert engine.state == {"vision_tower_trainable": False, "lr": 3e-7, "reward": {"format_weight": 0.2}}
    run(controller, [6])
    assert engine.state == {"vision_tower_trainable": True, "lr": None, "reward": {}}


def test_unsupported_overrides_fail_before_training(staged_config, recording_engine) -> None:
    config = staged_config()
    config["stages"][1]["overrides"]["kl_coef"] = 0.05
    plan = build_plan(parse_curriculum(config), SIZES)
    no_kl = frozenset(Operation) - {Operation.kl_coef, Operation.refresh_reference}
    with pytest.raises(UnsupportedOverrideError) as err:
        StageController(plan, recording_engine(no_kl), engine_name="easyr1")
    message = str(err.value)
    assert message.startswith("the easyr1 engine cannot honour 4 override(s):")
    assert "stage 'text_reasoning' (from step 5) sets kl_coef=0.05" in message
    assert "stage 'perception' (from step 1) sets refresh_reference=True" in message
    validate_plan_for_engine(plan, frozenset(Operation))
    assert required_operations(plan) == {
        Operation.vision_tower,
        Operation.kl_coef,
        Operation.reset_optimizer,
        Operation.refresh_reference,
        Operation.save_checkpoint,
        Operation.validate,
    }


def test_an_action_switched_off_needs_no_support(staged_config, recording_engine) -> None:
    config = staged_config(overrides={"reset_optimizer": False})
    for stage in config["stages"]:
        stage["overrides"] = {}
    plan = build_plan(parse_curriculum(config), SIZES)
    StageController(plan, recording_engine(frozenset()))


def test_engine_base_raises_for_operations_it_does_not_implement() -> None:
    class OnlyLr(EngineBase):
        supported_operations = frozenset({Operation.lr})

        def set_lr(self, lr):
            self.lr = lr

    engine = OnlyLr()
    assert isinstance(engine, CurriculumEngine)
    with pytest.raises(NotImplementedError, match="does not support kl_coef"):
        engine.set_kl_coef(0.1)


def test_the_knob_table_names_every_engine_method_once() -> None:
    """The protocol's methods are the table's (a row without its method, or a method without a row, fails)."""
    methods = [knob.method for knob in TABLE]
    protocol = {name for name in vars(CurriculumEngine) if not name.startswith("_")} - {"supported_operations"}
    assert len(methods) == len(set(methods)) and set(methods) == protocol
    assert [Operation[knob.operation] for knob in TABLE] == list(Operation)
    for knob in TABLE:
        with pytest.raises(NotImplementedError, match=f"does not support {knob.value}$"):
            getattr(EngineBase(), knob.method)()


def test_steps_out_of_order_are_refused(staged_config, recording_engine) -> None:
    plan = build_plan(parse_curriculum(staged_config()), SIZES)
    controller = StageController(plan, recording_engine())
    with pytest.raises(StepOrderError, match=r"expected before_step\(1\)"):
        controller.before_step(2)
    controller.before_step(1)
    with pytest.raises(StepOrderError):
        controller.before_step(2)
    with pytest.raises(StepOrderError):
        controller.after_step(2)


# ---------------------------------------------------------------------------------------------- properties

KNOB_VALUES = {
    "vision_tower": st.sampled_from(["trainable", "frozen"]),
    "lr": st.sampled_from([1e-6, 3e-7]),
    "kl_coef": st.sampled_from([0.0, 0.01, 0.05]),
    "clip_ratio_low": st.sampled_from([0.15, 0.2]),
    "clip_ratio_high": st.sampled_from([0.15, 0.28]),
    "max_grad_norm": st.sampled_from([0.5, 1.0]),
    "rollout_temperature": st.sampled_from([0.7, 1.0]),
    "rollout_n": st.sampled_from([4, 5]),
    "reward": st.sampled_from([{"format_weight": 0.1}, {"format_weight": 0.2, "k": 1}]),
    "reset_optimizer": st.booleans(),
    "refresh_reference": st.booleans(),
    "save_checkpoint": st.booleans(),
    "validate": st.booleans(),
}


@st.composite
def overrides(draw):
    names = draw(st.sets(st.sampled_from(sorted(KNOB_VALUES)), max_size=5))
    return {name: draw(KNOB_VALUES[name]) for name in names}


@st.composite
def plans(draw):
    mode = draw(st.sampled_from(list(Mode)))
    batch = draw(st.integers(1, 3))
    stages, sizes = [], []
    for i in range(draw(st.integers(1, 4))):
        stage = {"name": f"s{i}", "capability": draw(st.sampled_from(["a", "b", "c"])), "train_files": ["x"]}
        if mode is not Mode.stitched_replay:
            stage["epochs"] = draw(st.integers(1, 2))
        if mode is not Mode.merged:
            stage["overrides"] = draw(overrides())
        stages.append(stage)
        sizes.append(StageData(draw(st.integers(batch, 3 * batch + 2))))
    config = {
        "mode": mode.value,
        "batch_size": batch,
        "stages": stages,
        "overrides": draw(overrides()),
        "capability_overrides": {c: draw(overrides()) for c in draw(st.sets(st.sampled_from(["a", "b"])))},
    }
    if mode is Mode.stitched_replay:
        config["epochs"] = draw(st.integers(1, 2))
    return build_plan(parse_curriculum(config), sizes)


def trace(plan, engine, steps, completed_steps):
    """The engine state after every step, and the events of each step."""
    controller = StageController(plan, engine, completed_steps=completed_steps)
    states, events = [], []
    for step in steps:
        before = len(engine.events)
        stage = controller.before_step(step)
        assert stage is plan.stage_at(step)
        controller.after_step(step)
        states.append(dict(engine.state))
        events.append(engine.events[before:])
    return states, events


@settings(max_examples=100, deadline=None)
@given(plans(), st.data())
def test_a_resumed_run_matches_an_uninterrupted_one(recording_engine, plan, data) -> None:
    steps = range(1, plan.total_steps + 1)
    states, events = trace(plan, recording_engine(), steps, 0)
    resume_after = data.draw(st.integers(0, plan.total_steps - 1))
    resumed_states, resumed_events = trace(plan, recording_engine(), steps[resume_after:], resume_after)
    assert resumed_states == states[resume_after:]
    assert resumed_events == events[resume_after:]


@settings(max_examples=100, deadline=None)
@given(plans())
def test_boundaries_fire_once_each(recording_engine, plan) -> None:
    engine = recording_engine()
    trace(plan, engine, range(1, plan.total_steps + 1), 0)
    expected = []
    for stage in plan.stages:
        if stage.start_step > 1:
            expected += [(name, None) for name in ("reset_optimizer", "refresh_reference") if stage.state.flag(name)]
        for name, action in (("save_stage_checkpoint", "save_checkpoint"), ("validate", "validate")):
            if stage.state.flag(action):
                expected.append((name, (stage.position, stage.end_step)))
    assert engine.events == expected


def test_a_stage_warm_up_is_set_at_its_start_and_again_on_resume(staged_config, recording_engine) -> None:
    config = staged_config(capability_overrides={"text_reasoning": {"lr": 3e-7, "lr_warmup_ratio": 0.05}})
    plan = build_plan(parse_curriculum(config), SIZES)
    assert plan.stages[1].state.knobs() == {"vision_tower": "frozen", "lr": 3e-7, "lr_warmup_ratio": 0.05}
    assert Operation.lr_warmup in required_operations(plan)
    engine = recording_engine()
    run(StageController(plan, engine), range(1, 9))
    warmups = [value for name, value in engine.calls if name == "lr_warmup"]
    # (ratio, stage start, stage steps): None = the base warm-up, each over its own stage's steps
    assert warmups == [(None, 1, 4), (0.05, 5, 1), (None, 6, 3)]
    resumed = recording_engine()
    run(StageController(plan, resumed, completed_steps=5), [6])  # resumed at stage 3's start
    assert ("lr_warmup", (None, 6, 3)) in resumed.calls
    no_warmup = frozenset(Operation) - {Operation.lr_warmup}
    with pytest.raises(UnsupportedOverrideError, match=r"sets lr_warmup_ratio=0\.05"):
        StageController(plan, recording_engine(no_warmup), engine_name="x")
