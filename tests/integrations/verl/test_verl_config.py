"""Our Hydra config composes over verl's ``ppo_trainer`` and passes verl's own validation (what ``main_ppo`` runs
before starting Ray), and the sections verl turns into dataclasses convert."""

from __future__ import annotations

from importlib import resources
from typing import Any

import pytest

pytest.importorskip("verl")

from omegaconf import OmegaConf
from verl.trainer.ppo.utils import need_critic, need_reference_policy
from verl.utils.config import omega_conf_to_dataclass, validate_config


def test_config_ships_in_the_package() -> None:
    config_dir = resources.files("vlm_capcurriculum.integrations.verl.config")
    assert (config_dir / "capcurriculum_trainer.yaml").is_file()


def test_composes_over_verls_ppo_trainer(verl_config: Any) -> None:
    config = verl_config()
    # ours
    assert config.trainer.v1.trainer_mode == "capcurriculum"
    assert config.data.custom_cls.path == "pkg://vlm_capcurriculum.integrations.verl.dataset"
    assert config.data.custom_cls.name == "CurriculumRLDataset"
    assert config.data.shuffle is False and config.trainer.total_epochs == 1
    assert config.reward.custom_reward_function.path == "pkg://vlm_capcurriculum.integrations.verl.reward"
    assert config.actor_rollout_ref.actor.strategy == "fsdp2" and config.actor_rollout_ref.ref.strategy == "fsdp2"
    assert config.actor_rollout_ref.rollout.n == 5 and config.algorithm.adv_estimator == "grpo"
    # verl's, untouched
    assert config.trainer.use_v1 is True
    assert config.actor_rollout_ref.actor.optim.lr == 1e-6
    assert config.data.image_key == "images" and config.data.prompt_key == "prompt"
    # the dataset sees the curriculum block through data
    assert config.data.curriculum == config.curriculum
    # one step is one batch of the plan; the paper's image bounds and format weight
    assert OmegaConf.to_container(verl_config([]).data, resolve=False)["train_batch_size"] == 2  # BASE_OVERRIDES
    assert config.data.mm_processor_kwargs == {"min_pixels": 262144, "max_pixels": 4194304}
    assert config.reward.custom_reward_function.reward_kwargs == {"format_weight": 0.1}


def test_train_batch_size_follows_the_curriculum() -> None:
    from hydra import compose, initialize_config_module

    with initialize_config_module(config_module="vlm_capcurriculum.integrations.verl.config", version_base=None):
        config = compose("capcurriculum_trainer", overrides=["+curriculum.batch_size=64"])
    assert config.data.train_batch_size == 64


def test_passes_verls_validation_as_main_ppo_runs_it(verl_config: Any) -> None:
    config = verl_config()
    assert need_reference_policy(config) and not need_critic(config)
    validate_config(config=config, use_reference_policy=need_reference_policy(config), use_critic=need_critic(config))
    OmegaConf.resolve(config)  # TaskRunnerV1.run resolves before building the trainer
    actor = omega_conf_to_dataclass(config.actor_rollout_ref.actor)
    assert type(actor).__name__ == "FSDPActorConfig" and actor.engine.strategy == "fsdp2"
    assert actor.use_kl_loss and actor.kl_loss_coef == 0.01
    assert type(omega_conf_to_dataclass(config.actor_rollout_ref.rollout)).__name__ == "RolloutConfig"


def test_verl_validation_still_guards_user_mistakes(verl_config: Any) -> None:
    config = verl_config(["data.train_batch_size=1", "actor_rollout_ref.actor.ppo_mini_batch_size=2"])
    with pytest.raises(ValueError, match="train_batch_size"):
        validate_config(config=config, use_reference_policy=True, use_critic=False)


def test_reward_kwargs_overrides_as_the_readme_gives_them(verl_config: Any) -> None:
    """README: a reward kwarg is added with ``+`` (to ours and to verl's stock ``ppo_trainer``); our config's own
    ``format_weight`` is overridden without it."""
    from hydra import compose, initialize_config_module
    from hydra.errors import ConfigCompositionException

    with pytest.raises(ConfigCompositionException):
        verl_config(["reward.custom_reward_function.reward_kwargs.timeout_s=2.0"])
    ours = verl_config(
        [
            "+reward.custom_reward_function.reward_kwargs.timeout_s=2.0",
            "reward.custom_reward_function.reward_kwargs.format_weight=0.2",
        ]
    )
    assert ours.reward.custom_reward_function.reward_kwargs == {"format_weight": 0.2, "timeout_s": 2.0}
    with initialize_config_module(config_module="verl.trainer.config", version_base=None):
        stock = compose("ppo_trainer", overrides=["+reward.custom_reward_function.reward_kwargs.timeout_s=2.0"])
    assert stock.reward.custom_reward_function.reward_kwargs == {"timeout_s": 2.0}
