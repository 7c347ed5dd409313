"""Rebinding the actor's loss function when a stage changes the KL coefficient or the clip ratios.

In verl 0.9.1 these knobs are not read live from a mutable config: ``ActorRolloutRefWorker.init_model`` binds a
frozen ``ActorConfig`` into ``functools.partial(ppo_loss, config=actor_config)`` (or ``distillation_ppo_loss``)
and hands it to the actor's ``TrainingWorker.set_loss_fn``. The driver can replace it at any time through the
worker group's ``set_loss_fn`` (``Dispatch.ONE_TO_ALL``), which is what :func:`build_actor_loss_fn` is for: it
rebuilds the same partial from the driver's config with the stage's values. The worker's copy also carries
``model_config``; ``ppo_loss`` and verl's policy-loss functions never read it, so the driver's copy omits it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

from omegaconf import DictConfig, OmegaConf

#: Curriculum override name -> field of ``actor_rollout_ref.actor`` that the loss function reads.
LOSS_OVERRIDE_FIELDS: dict[str, str] = {
    "kl_coef": "kl_loss_coef",
    "clip_ratio_low": "clip_ratio_low",
    "clip_ratio_high": "clip_ratio_high",
}


def actor_config_with(config: DictConfig, changes: Mapping[str, float]) -> DictConfig:
    """A resolved copy of ``config.actor_rollout_ref.actor`` with curriculum overrides applied."""
    unknown = set(changes) - set(LOSS_OVERRIDE_FIELDS)
    if unknown:
        raise KeyError(f"not loss overrides: {sorted(unknown)}; expected {sorted(LOSS_OVERRIDE_FIELDS)}")
    actor = OmegaConf.create(OmegaConf.to_container(config.actor_rollout_ref.actor, resolve=True))
    for name, value in changes.items():
        actor[LOSS_OVERRIDE_FIELDS[name]] = float(value)
    return actor


def build_actor_loss_fn(config: DictConfig, changes: Mapping[str, float]) -> Callable[..., Any]:
    """The actor loss function verl's worker would build, with ``changes`` applied (see module docstring)."""
    from verl.trainer.distillation import is_distillation_enabled
    from verl.utils.config import omega_conf_to_dataclass
    from verl.workers.utils.losses import ppo_loss

    actor_config = omega_conf_to_dataclass(actor_config_with(config, changes))
    distillation = config.get("distillation")
    if is_distillation_enabled(distillation):
        from verl.trainer.distillation import distillation_ppo_loss

        return partial(
            distillation_ppo_loss, config=actor_config, distillation_config=omega_conf_to_dataclass(distillation)
        )
    return partial(ppo_loss, config=actor_config)
