"""The verl glue of vlm_capcurriculum.checkpoints against verl's own tracker lookup."""

from __future__ import annotations

from pathlib import Path

import pytest

from vlm_capcurriculum.checkpoints import verify


def checkpoint(root: Path, step: int) -> Path:
    folder = root / f"global_step_{step}"
    (folder / "actor").mkdir(parents=True)
    (folder / "actor" / "model.safetensors").write_bytes(bytes(range(256)) * (step + 4))
    (folder / "data.pt").write_bytes(b"dataloader state %d" % step)
    return folder


def test_verl_resume_is_redirected_from_a_damaged_newest_checkpoint(tmp_path, monkeypatch) -> None:
    """The verl glue against verl's own tracker lookup: its load runs with resume_path set to the complete one,
    and the config is restored afterwards."""
    from omegaconf import OmegaConf

    from vlm_capcurriculum.integrations.verl.trainer import load_checked, save_sealed

    pytest.importorskip("verl")
    monkeypatch.chdir(tmp_path)
    config = OmegaConf.create(
        {"trainer": {"default_local_dir": "ckpt", "resume_mode": "auto", "resume_from_path": None},
         "actor_rollout_ref": {"actor": {"checkpoint": {"async_save": False}}}}
    )  # fmt: skip
    seen: list[tuple[str, str | None]] = []

    class Trainer:
        def __init__(self) -> None:
            self.config, self.global_steps = config, 0

        def save(self) -> None:  # what verl's _save_checkpoint leaves: the step directory, then the tracker
            folder = checkpoint(tmp_path / "ckpt", self.global_steps)
            (folder.parent / "latest_checkpointed_iteration.txt").write_text(str(self.global_steps))

        def load(self) -> None:
            seen.append((config.trainer.resume_mode, config.trainer.resume_from_path))

    trainer = Trainer()
    for step in (1, 2):
        trainer.global_steps = step
        save_sealed(trainer, trainer.save)
    assert verify(tmp_path / "ckpt" / "global_step_2") is None
    load_checked(trainer, trainer.load)
    assert seen.pop() == ("auto", None)  # the tracker's choice verifies: verl resolves it itself
    (tmp_path / "ckpt" / "global_step_2" / "data.pt").write_bytes(b"")
    load_checked(trainer, trainer.load)
    assert seen.pop() == ("resume_path", str(tmp_path / "ckpt" / "global_step_1"))
    assert (config.trainer.resume_mode, config.trainer.resume_from_path) == ("auto", None)
