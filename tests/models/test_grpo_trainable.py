"""The tiny models train under TRL's real GRPOTrainer on CPU: images flow through the vision tower into the loss.

One family (Qwen3-VL, the quick-start model) proves the point; the TRL integration's own tests cover the others.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from datasets import Dataset
from PIL import Image

from vlm_capcurriculum.integrations.torch_ops import vision_tower
from vlm_capcurriculum.models import load_tiny, save_tiny

trl = pytest.importorskip("trl")

COLORS = {"red": (230, 20, 20), "green": (20, 200, 40), "blue": (30, 40, 220), "yellow": (240, 230, 30)}


def mixed_dataset() -> Dataset:
    """Image questions alternating with text-only ones, so every 2-prompt batch mixes both (as in merged runs)."""
    rows = []
    for i, (name, rgb) in enumerate(COLORS.items()):
        rows.append(
            {
                "prompt": [{"role": "user", "content": "What color is the image? Answer in one word."}],
                "image": Image.new("RGB", (48 + 16 * i, 64), rgb),
                "answer": name,
            }
        )
        rows.append(
            {"prompt": [{"role": "user", "content": f"What is {i} + {i}?"}], "image": None, "answer": str(2 * i)}
        )
    return Dataset.from_list(rows)


def length_reward(completions: list[list[dict]], answer: list[str], **_: object) -> list[float]:
    """Varies between the completions of a group, so advantages (and gradients) are non-zero."""
    return [float(len(completion[0]["content"])) for completion in completions]


@pytest.mark.slow
def test_two_grpo_steps_on_mixed_batches_update_lm_and_vision_tower(tmp_path: Path) -> None:
    # Loaded from disk, as TRL builds the KL reference model from `config._name_or_path` when beta > 0.
    model, processor = load_tiny(save_tiny("qwen3_vl", tmp_path / "model"))
    before = {name: param.detach().clone() for name, param in model.named_parameters()}
    args = trl.GRPOConfig(
        output_dir=str(tmp_path / "run"),
        use_cpu=True,
        bf16=False,  # TRL defaults to bf16, which CPU autocast makes ~8x slower
        report_to="none",
        per_device_train_batch_size=4,
        num_generations=2,
        max_completion_length=8,
        max_steps=2,
        learning_rate=1e-3,
        beta=0.04,
        logging_steps=1,
        save_strategy="no",
        seed=0,
        shuffle_dataset=False,
    )
    trainer = trl.GRPOTrainer(
        model=model,
        reward_funcs=length_reward,
        args=args,
        train_dataset=mixed_dataset(),
        processing_class=processor,
    )
    assert trainer.ref_model is not None
    trainer.train()

    logs = [entry for entry in trainer.state.log_history if "loss" in entry]
    assert len(logs) == 2
    assert all(torch.isfinite(torch.tensor(entry["loss"])) for entry in logs)
    assert logs[0]["grad_norm"] > 0
    tower = vision_tower(trainer.model)
    changed = {name for name, param in trainer.model.named_parameters() if not torch.equal(param, before[name])}
    assert any(tower.owns(name) for name in changed), "no vision-tower parameter was updated"
    assert "lm_head.weight" in changed
