"""Every stage override, checked on the objects TRL and transformers actually use, during a real run.

Stage 1 trains everything with no KL term; stage 2 freezes the vision tower and sets lr, its warm-up, KL coefficient (0 -> 0.05:
the reference model must appear), clip ratios, max grad norm, rollout temperature and format weight, after resetting
the optimizer and refreshing the reference; stage 3 returns to the base values. Two optimizer steps per curriculum
step (micro-batches of 4 completions), so the stage hooks must sit on curriculum-step boundaries, not optimizer steps.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
import torch
from transformers import TrainerCallback
from trl_helpers import make_trainer, small_plan

from vlm_capcurriculum.integrations.torch_ops import vision_tower

pytestmark = pytest.mark.slow

FAMILY = "qwen2_5_vl"
STAGE2 = {
    "vision_tower": "frozen",
    "lr": 5e-4,
    "lr_warmup_ratio": 0.5,
    "kl_coef": 0.05,
    "clip_ratio_low": 0.1,
    "clip_ratio_high": 0.15,
    "max_grad_norm": 0.5,
    "rollout_temperature": 0.7,
    "reward": {"format_weight": 0.5},
}
BASE_LR = 1e-3


class Probe(TrainerCallback):
    """Records, around every optimizer step, what the trainer holds and which weights the step changed."""

    def __init__(self, trainer: Any) -> None:
        self.trainer = trainer
        self.records: list[dict[str, Any]] = []
        self._before: dict[str, torch.Tensor] = {}

    def on_pre_optimizer_step(self, args, state, control, **kwargs):  # type: ignore[no-untyped-def]
        trainer = self.trainer
        model = trainer.accelerator.unwrap_model(trainer.model)
        tower = vision_tower(model)
        optimizer = trainer.optimizer.optimizer
        params = dict(model.named_parameters())
        self._before = {name: param.detach().clone() for name, param in params.items()}
        self.records.append(
            {
                "curriculum_step": trainer.curriculum_step,
                "stage": trainer.plan.stage_at(trainer.curriculum_step).position + 1,
                "lrs": [group["lr"] for group in optimizer.param_groups],
                "base_lrs": list(trainer.lr_scheduler.base_lrs),
                "beta": trainer.beta,
                "has_ref": trainer.ref_model is not None,
                "eps": (trainer.epsilon_low, trainer.epsilon_high),
                "max_grad_norm": args.max_grad_norm,
                "temperature": (trainer.temperature, trainer.generation_config.temperature),
                "reward_weights": trainer.reward_weights.tolist(),
                "tower_grads": [params[n].grad is not None for n, _ in tower.named_parameters()],
                "tower_state": [params[n] in optimizer.state for n, _ in tower.named_parameters()],
                "head_logps_temperature": self._head_temperature(model) if trainer.curriculum_step == 4 else None,
            }
        )

    def on_step_end(self, args, state, control, **kwargs):  # type: ignore[no-untyped-def]
        model = self.trainer.accelerator.unwrap_model(self.trainer.model)
        tower = vision_tower(model)
        changed = {n for n, p in model.named_parameters() if not torch.equal(p.detach(), self._before[n])}
        self.records[-1]["tower_changed"] = any(tower.owns(n) for n in changed)
        self.records[-1]["others_changed"] = any(not tower.owns(n) for n in changed)

    def _head_temperature(self, model: torch.nn.Module) -> float:
        """The temperature the fused LM head divides by, read off its log-probs against the plain logits."""
        ids = torch.tensor([[5, 17, 42, 99, 7, 3]])
        labels = ids.clone()
        with torch.no_grad():
            fused = model(input_ids=ids, labels=labels, fused_lm_head=True).log_probs[0]
            logits = model(input_ids=ids).logits[0, :-1]
        for temperature in (1.0, 0.7):
            expected = torch.log_softmax(logits / temperature, dim=-1).gather(1, ids[0, 1:, None]).squeeze(1)
            if torch.allclose(fused, expected, atol=1e-5):
                return temperature
        return float("nan")


def test_every_override_acts_on_the_live_trainer(tiny_base, tmp_path: Path) -> None:
    data, plan = small_plan(
        steps=(2, 3, 2),
        # stage 1 saves no checkpoint: the refresh at stage 2 must save the reference weights itself
        stage_overrides=(
            {"vision_tower": "trainable", "save_checkpoint": False},
            STAGE2,
            {"vision_tower": "trainable"},
        ),
    )
    trainer = make_trainer(
        FAMILY,
        tiny_base(FAMILY),
        tmp_path / "run",
        data,
        plan,
        beta=0.0,
        learning_rate=BASE_LR,
        per_device_train_batch_size=4,  # 8 completions per step in micro-batches of 4, no accumulation:
        gradient_accumulation_steps=1,  # 2 optimizer steps per curriculum step
        # base warm-up 0.25: 1 optimizer step of stages 1 and 3 (int(0.25 x 4)); stage 2's own 0.5: 3 of its 6
        trainer_kwargs={"lr_warmup_ratio": 0.25},
    )
    assert trainer.updates_per_step == 2
    assert trainer.ref_model is None  # beta 0 at start: TRL builds no reference

    events: dict[str, list[Any]] = defaultdict(list)
    engine = trainer.engine
    reset, refresh = engine.reset_optimizer, engine.refresh_reference

    def probed_reset() -> None:
        reset()
        optimizer = trainer.optimizer.optimizer
        factor = trainer.lr_scheduler.lr_lambdas[0]
        events["reset"].append((trainer.curriculum_step, len(optimizer.state), factor.start, factor.warmup))

    def probed_refresh() -> None:
        refresh()
        policy = trainer.accelerator.unwrap_model(trainer.model).state_dict()
        reference = trainer.accelerator.unwrap_model(trainer.ref_model).state_dict()
        same = all(torch.equal(policy[n], reference[n]) for n in policy)
        events["refresh"].append((trainer.curriculum_step, same, Path(engine.reference_source).relative_to(tmp_path)))

    engine.reset_optimizer, engine.refresh_reference = probed_reset, probed_refresh
    probe = Probe(trainer)
    trainer.add_callback(probe)
    trainer.train()

    records = probe.records
    assert [r["curriculum_step"] for r in records] == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7]
    by_stage = {stage: [r for r in records if r["stage"] == stage] for stage in (1, 2, 3)}

    # reset_optimizer at stages 2 and 3 (not at step 1): state emptied, warm-up restarted at the scheduler's step.
    assert events["reset"] == [(3, 0, 4, 3), (6, 0, 10, 1)]
    # refresh_reference: the reference is the policy at that moment (stage 2 built it first: kl_coef 0 -> 0.05), and
    # its weights are on disk for a resume: saved for it, or the previous stage's checkpoint.
    assert events["refresh"] == [
        (3, True, Path("run/reference/after-step-2")),
        (6, True, Path("run/stages/02-text_reasoning")),
    ]
    assert (tmp_path / "run/reference/after-step-2/model.safetensors").is_file()

    for stage, records_of_stage in by_stage.items():
        knobs = STAGE2 if stage == 2 else {}
        lr = knobs.get("lr", BASE_LR)
        for r in records_of_stage:
            assert r["base_lrs"] == [lr] * len(r["base_lrs"])
            assert r["beta"] == knobs.get("kl_coef", 0.0)
            assert r["has_ref"] == (stage >= 2)  # created in stage 2, kept afterwards
            assert r["eps"] == (knobs.get("clip_ratio_low", 0.2), knobs.get("clip_ratio_high", 0.2))
            assert r["max_grad_norm"] == knobs.get("max_grad_norm", 1.0)
            assert r["temperature"] == (knobs.get("rollout_temperature", 1.0),) * 2
            weight = knobs.get("reward", {}).get("format_weight", 0.1)
            assert r["reward_weights"] == pytest.approx([1 - weight, weight])
        # the per-stage warm-up: lr 0 at the stage's first optimizer step, then up to the stage's lr
        lrs = [r["lrs"][0] for r in records_of_stage]
        expected = {1: [0, 1, 1, 1], 2: [0, 1 / 3, 2 / 3, 1, 1, 1], 3: [0, 1, 1, 1]}[stage]
        assert lrs == pytest.approx([lr * factor for factor in expected])

    # Frozen tower: no grads, no optimizer state, bit-identical weights, while the rest trains (lr > 0 steps).
    for r in by_stage[2]:
        assert not any(r["tower_grads"]) and not any(r["tower_state"]) and not r["tower_changed"]
    assert all(r["others_changed"] for r in by_stage[2] if r["lrs"][0] > 0)
    assert all(r["tower_changed"] and r["others_changed"] for r in by_stage[1] + by_stage[3] if r["lrs"][0] > 0)
    # The fused LM head scores at the stage's rollout temperature.
    assert [r["head_logps_temperature"] for r in records if r["head_logps_temperature"] is not None] == [0.7, 0.7]

    # KL: not in the loss without a reference (no "kl" metric), in it from stage 2 on and non-zero once the policy
    # left the freshly refreshed reference.
    logs = [entry for entry in trainer.state.log_history if "loss" in entry]
    assert all("kl" not in entry for entry in logs[:4])
    assert all("kl" in entry for entry in logs[4:10]) and max(entry["kl"] for entry in logs[4:10]) > 0
    # The logged reward is the weighted sum the stage asks for.
    for line in trainer.steps_log.read():
        weight = 0.5 if line["stage_index"] == 2 else 0.1
        assert line["reward"] == pytest.approx((1 - weight) * line["accuracy"] + weight * line["format"], abs=1e-6)
