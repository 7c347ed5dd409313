"""verl's ``global_step_N`` checkpoints sealed when saved and verified before a resume
(:mod:`vlm_capcurriculum.checkpoints`): a damaged newest checkpoint falls back to the newest complete one.

verl 0.9.1 (``trainer_base.py``) saves the actor, ``data.pt`` and then ``latest_checkpointed_iteration.txt``;
it resumes from the directory that tracker names (``resume_mode=auto``) or from ``trainer.resume_from_path``
(``resume_mode=resume_path``). We seal after its save and, when the tracker's choice does not verify, point
``resume_from_path`` at the newest complete checkpoint for the duration of its load.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from omegaconf import open_dict

from vlm_capcurriculum.checkpoints import checked_resume, seal, unseal


def save_sealed(trainer: Any, save: Callable[[], None]) -> None:
    """``save()`` (verl's ``_save_checkpoint``), then the manifest; an async save is left unsealed (its files
    are still being written), and such checkpoints are judged by verl's tracker alone."""
    folder = Path(trainer.config.trainer.default_local_dir) / f"global_step_{trainer.global_steps}"
    if folder.is_dir():
        unseal(folder)
    save()
    if not trainer.config.actor_rollout_ref.actor.get("checkpoint", {}).get("async_save", False):
        seal(folder)


def load_checked(trainer: Any, load: Callable[[], None]) -> None:
    """``load()`` (verl's ``_load_checkpoint``) from a verified checkpoint."""
    from verl.utils.checkpoint.checkpoint_manager import find_latest_ckpt_path

    config = trainer.config.trainer
    root = os.path.join(os.getcwd(), config.default_local_dir)  # as verl resolves it (an absolute path stays)
    if config.resume_mode == "resume_path":
        checked_resume(Path(config.resume_from_path).parent, config.resume_from_path, explicit=True)
        return load()
    if config.resume_mode != "auto":
        return load()
    latest = find_latest_ckpt_path(root)
    chosen = checked_resume(root, latest)
    if chosen == latest:
        return load()
    saved = config.resume_mode, config.get("resume_from_path")
    with open_dict(config):
        config.resume_mode, config.resume_from_path = ("resume_path", chosen) if chosen else ("disable", None)
    try:
        load()
    finally:
        with open_dict(config):
            config.resume_mode, config.resume_from_path = saved
