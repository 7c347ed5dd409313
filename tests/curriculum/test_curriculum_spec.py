from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from vlm_capcurriculum.curriculum import Mode, Order, Overrides, SpecError, VisionTower, parse_curriculum


def test_parses_stages_with_defaults(staged_config) -> None:
    spec = parse_curriculum(staged_config(order="easy_to_hard"))
    assert spec.mode is Mode.staged and spec.batch_size == 4 and spec.seed == 1
    assert [stage.name for stage in spec.stages] == ["perception", "text_reasoning", "visual_reasoning"]
    assert [stage.capability for stage in spec.stages] == ["perception", "text_reasoning", "visual_reasoning"]
    assert [stage.order for stage in spec.stages] == [Order.easy_to_hard] * 3  # the run-wide order is the default
    assert (spec.stages[2].epochs, spec.stages[2].steps) == (None, 3)


def test_stage_state_layers_run_wide_then_capability_then_stage(staged_config) -> None:
    config = staged_config(
        overrides={"lr": 1e-6, "reward": {"format_weight": 0.1, "timeout_s": 5}},
        capability_overrides={"text_reasoning": {"lr": 3e-7, "kl_coef": 0.05, "reward": {"format_weight": 0.2}}},
    )
    config["stages"][1]["overrides"]["kl_coef"] = 0.07
    spec = parse_curriculum(config)
    perception, text, visual = (spec.stage_state(stage) for stage in spec.stages)
    assert text == Overrides(
        vision_tower=VisionTower.frozen,
        lr=3e-7,
        kl_coef=0.07,  # the stage's own value beats its capability's
        reward={"format_weight": 0.2, "timeout_s": 5},  # reward kwargs merge key by key
    )
    # a knob a later stage does not mention goes back to the run-wide (or base) value
    assert visual.lr == 1e-6 and visual.kl_coef is None and visual.validate is True
    assert perception.reward == {"format_weight": 0.1, "timeout_s": 5}


@pytest.mark.parametrize(
    ("mutate", "path", "message"),
    [
        (lambda c: c["stages"][0].update(epoch=2), "curriculum.stages[0].epoch", "did you mean 'epochs'"),
        (
            lambda c: c["stages"][0]["overrides"].update(lrr=1),
            "curriculum.stages[0].overrides.lrr",
            "did you mean 'lr'",
        ),
        (lambda c: c.update(shuffle=True), "curriculum.shuffle", "unknown key"),
        (lambda c: c["stages"][0].update(steps=5), "curriculum.stages[0]", "exactly one of epochs or steps"),
        (lambda c: c["stages"][0].pop("epochs"), "curriculum.stages[0]", "exactly one of epochs or steps"),
        (lambda c: c["stages"][0].update(epochs=0), "curriculum.stages[0].epochs", ">= 1"),
        (lambda c: c["stages"][0].update(order="random"), "curriculum.stages[0].order", "Invalid value 'random'"),
        (lambda c: c.update(mode="mixed"), "curriculum.mode", "Invalid value 'mixed'"),
        (lambda c: c.update(batch_size=0), "curriculum.batch_size", ">= 1"),
        (lambda c: c.pop("batch_size"), "curriculum.batch_size", "missing"),
        (lambda c: c.update(stages=[]), "curriculum.stages", "non-empty list"),
        (lambda c: c["stages"][0].update(train_files=[]), "curriculum.stages[0].train_files", "non-empty"),
        (lambda c: c["stages"][1].update(name="perception"), "curriculum.stages[1].name", "duplicate stage name"),
        (
            lambda c: c["stages"][0]["overrides"].update(vision_tower="melted"),
            "curriculum.stages[0].overrides.vision_tower",
            "Invalid value",
        ),
        (
            lambda c: c["stages"][0]["overrides"].update(clip_ratio_low=1.5),
            "curriculum.stages[0].overrides.clip_ratio_low",
            "< 1",
        ),
        (lambda c: c["stages"][0]["overrides"].update(rollout_n=0), "curriculum.stages[0].overrides.rollout_n", ">= 1"),
        (
            lambda c: c["stages"][0]["overrides"].update(kl_coef="big"),
            "curriculum.stages[0].overrides.kl_coef",
            "Float",
        ),
        (lambda c: c.update(capability_overrides={"x": {"kl": 1}}), "curriculum.capability_overrides.x.kl", "kl_coef"),
        (lambda c: c.update(epochs=3), "curriculum.epochs", "only used by mode stitched_replay"),
    ],
)
def test_errors_name_the_key_path(staged_config, mutate, path, message) -> None:
    config = staged_config()
    mutate(config)
    with pytest.raises(SpecError) as err:
        parse_curriculum(config)
    assert err.value.path == path
    assert message in str(err.value)


def test_merged_mode_rejects_what_it_would_ignore(staged_config) -> None:
    with pytest.raises(SpecError, match=r"stages\[0\].overrides: merged mode has a single phase"):
        parse_curriculum(staged_config(mode="merged"))
    config = staged_config(mode="merged")
    for stage in config["stages"]:
        stage.pop("overrides")
    config["stages"][1]["order"] = "file"
    with pytest.raises(SpecError, match=r"stages\[1\].order: merged mode orders the pooled data"):
        parse_curriculum(config)
    del config["stages"][1]["order"]
    spec = parse_curriculum(config)
    assert spec.stage_state(spec.stages[0]) == spec.overrides  # only the run-wide layer


def test_stitched_replay_takes_passes_from_the_curriculum(staged_config) -> None:
    config = staged_config(mode="stitched_replay")
    with pytest.raises(SpecError, match=r"curriculum\.epochs: stitched_replay needs"):
        parse_curriculum(config)
    config["epochs"] = 15
    with pytest.raises(SpecError, match=r"stages\[0\].epochs: not used in stitched_replay"):
        parse_curriculum(config)
    for stage in config["stages"]:
        stage.pop("epochs", None)
        stage.pop("steps", None)
    assert parse_curriculum(config).epochs == 15


def test_interpolations_resolve_against_the_whole_config_and_missing_env_vars_are_named(staged_config) -> None:
    config = OmegaConf.create({"data": {"p": "/data/p.jsonl"}, "curriculum": staged_config()})
    config.curriculum.stages[0].train_files = ["${data.p}"]
    assert parse_curriculum(config.curriculum).stages[0].train_files == ("/data/p.jsonl",)
    config.curriculum.stages[1].train_files = ["${oc.env:VLMCC_TEST_SURELY_UNSET}"]
    with pytest.raises(SpecError) as err:
        parse_curriculum(config.curriculum)
    assert str(err.value) == (
        "curriculum.stages[1].train_files[0]: environment variable VLMCC_TEST_SURELY_UNSET is not set"
    )


def test_unused_capability_overrides_are_listed(staged_config) -> None:
    spec = parse_curriculum(staged_config(capability_overrides={"text_reasoning": {"lr": 1e-7}, "ocr": {"lr": 1e-7}}))
    assert spec.unused_capability_overrides() == ["ocr"]
