"""EasyR1's ``global_step_N`` checkpoints sealed when saved and verified before a resume
(:mod:`vlm_capcurriculum.checkpoints`): a damaged newest checkpoint falls back to the newest complete one.

EasyR1 (``RayPPOTrainer._save_checkpoint``, b44b311) saves the actor, ``dataloader.pt`` and then its tracker
file; ``_load_checkpoint`` resumes from ``trainer.load_checkpoint_path`` or, with ``find_last_checkpoint``, from
the tracker's ``last_global_step``. We seal after its save and, when the tracker's choice does not verify, set
``load_checkpoint_path`` to the newest complete checkpoint for the duration of its load.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from vlm_capcurriculum.checkpoints import checked_resume, seal, unseal

from .private_api import resolve


def save_sealed(trainer: Any, save: Callable[[], None]) -> None:
    """``save()`` (EasyR1's ``_save_checkpoint``), then the manifest."""
    folder = Path(trainer.config.trainer.save_checkpoint_path) / f"global_step_{trainer.global_step}"
    if folder.is_dir():
        unseal(folder)
    save()
    seal(folder)


def load_checked(trainer: Any, load: Callable[[], None]) -> None:
    """``load()`` (EasyR1's ``_load_checkpoint``) from a verified checkpoint."""
    config = trainer.config.trainer
    if config.load_checkpoint_path is not None:
        checked_resume(Path(config.load_checkpoint_path).parent, config.load_checkpoint_path, explicit=True)
        return load()
    if not config.find_last_checkpoint:
        return load()
    latest, _ = resolve("find_latest_ckpt")(config.save_checkpoint_path)
    chosen = checked_resume(config.save_checkpoint_path, latest)
    if chosen == latest:
        return load()
    saved = config.load_checkpoint_path, config.find_last_checkpoint
    config.load_checkpoint_path, config.find_last_checkpoint = chosen, chosen is not None
    try:
        load()
    finally:
        config.load_checkpoint_path, config.find_last_checkpoint = saved
