"""config.py: EasyR1's whole config plus the curriculum block, loaded as verl.trainer.main does."""

from __future__ import annotations

import dataclasses

import pytest
from omegaconf import OmegaConf

from vlm_capcurriculum.integrations.easyr1.config import (
    ConfigError,
    CurriculumPPOConfig,
    compose,
    to_config,
)


def load_config(argv):
    """EasyR1's config from ``config=FILE.yaml`` and ``key=value`` arguments, as the entry point builds it."""
    return to_config(compose(argv)[0])


def _easyr1_main_config(argv):
    """The config exactly as verl.trainer.main.main builds it (its first six statements, on an explicit argv)."""
    from verl.trainer.config import PPOConfig

    cli_args = OmegaConf.from_cli(argv)
    default_config = OmegaConf.structured(PPOConfig())
    if hasattr(cli_args, "config"):
        config_path = cli_args.pop("config", None)
        default_config = OmegaConf.merge(default_config, OmegaConf.load(config_path))
    ppo_config = OmegaConf.to_object(OmegaConf.merge(default_config, cli_args))
    ppo_config.deep_post_init()
    return ppo_config


@pytest.fixture
def example_config(easyr1_src, monkeypatch):
    monkeypatch.chdir(easyr1_src)  # the example refers to ./examples/format_prompt/math.jinja
    return "examples/config.yaml"


def test_same_config_as_easyr1_plus_the_curriculum_block(example_config, tmp_path):
    overrides = ["worker.actor.model.model_path=/models/qwen", "worker.rollout.n=5", "trainer.max_steps=930"]
    ours = load_config(
        [f"config={example_config}", *overrides, "curriculum.mode=staged", "curriculum.stages=[{name: p, epochs: 16}]"]
    )
    theirs = _easyr1_main_config([f"config={example_config}", *overrides])

    assert isinstance(ours, CurriculumPPOConfig)
    ours_dict = ours.to_dict()
    assert ours_dict.pop("curriculum") == {"mode": "staged", "stages": [{"name": "p", "epochs": 16}]}
    assert ours_dict == theirs.to_dict()
    assert ours.worker.actor.kl_coef == ours.algorithm.kl_coef  # EasyR1's post_init ran


def test_curriculum_block_from_the_yaml_file(example_config, tmp_path):
    recipe = tmp_path / "recipe.yaml"
    base = OmegaConf.load(example_config)
    base.curriculum = {"stages": [{"name": "perception", "epochs": 16, "vision": "trainable"}], "execution": "one_run"}
    OmegaConf.save(base, recipe)
    config = load_config([f"config={recipe}", "curriculum.execution=chained"])
    assert dict(config.curriculum) == {
        "stages": [{"name": "perception", "epochs": 16, "vision": "trainable"}],
        "execution": "chained",
    }


def test_errors_name_the_source_and_the_key(example_config, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("data:\n  train_file: oops\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml: `data\.train_file`: Key 'train_file' not in 'DataConfig'"):
        load_config([f"config={bad}"])
    with pytest.raises(ConfigError, match=r"command line: `worker\.actor\.optim\.lr`"):
        load_config([f"config={example_config}", "worker.actor.optim.lr=fast"])
    with pytest.raises(ConfigError, match="does not exist"):
        load_config([f"config={tmp_path / 'missing.yaml'}"])
    with pytest.raises(ConfigError, match=r"`data\.format_prompt`: nowhere\.jinja does not exist"):
        load_config(["data.format_prompt=nowhere.jinja"])
    with pytest.raises(ConfigError, match=r"`curriculum`"):
        load_config(["curriculum=3"])
    broken = tmp_path / "broken.yaml"
    broken.write_text("data: [unclosed\n")
    with pytest.raises(ConfigError, match="cannot parse YAML"):
        load_config([f"config={broken}"])


def test_curriculum_is_the_only_added_field():
    from verl.trainer.config import PPOConfig

    added = {f.name for f in dataclasses.fields(CurriculumPPOConfig)} - {f.name for f in dataclasses.fields(PPOConfig)}
    assert added == {"curriculum"}
