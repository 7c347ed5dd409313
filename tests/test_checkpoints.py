"""Checkpoint manifests (vlm_capcurriculum.checkpoints): sealed last, verified before a resume, newest complete wins."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vlm_capcurriculum.checkpoints import (
    MANIFEST,
    CheckpointError,
    checked_resume,
    newest_complete,
    seal,
    step_directories,
    unseal,
    verify,
)


def checkpoint(root: Path, step: int, *, sealed: bool = True) -> Path:
    folder = root / f"global_step_{step}"
    (folder / "actor").mkdir(parents=True)
    (folder / "actor" / "model.safetensors").write_bytes(bytes(range(256)) * (step + 4))
    (folder / "data.pt").write_bytes(b"dataloader state %d" % step)
    (folder / "state.json").write_text(json.dumps({"step": step}))
    if sealed:
        seal(folder)
    return folder


def test_seal_and_verify_catch_every_kind_of_damage(tmp_path) -> None:
    folder = checkpoint(tmp_path, 1)
    assert verify(folder) is None
    weights = folder / "actor" / "model.safetensors"
    original = weights.read_bytes()
    weights.write_bytes(original[:100])
    assert verify(folder) == f"actor/model.safetensors has 100 bytes, the manifest says {len(original)}"
    weights.write_bytes(original[::-1])  # same size, other bytes
    assert verify(folder) == "actor/model.safetensors does not match its SHA-256 in the manifest"
    weights.write_bytes(original)
    (folder / "state.json").unlink()
    assert verify(folder) == "state.json is missing"
    (folder / MANIFEST).write_text('{"version": 1, "fi')
    assert verify(folder).startswith(f"unreadable {MANIFEST}")
    unseal(folder)
    assert verify(folder) == f"no {MANIFEST} (the save did not finish)"


def test_newest_complete_passes_over_damaged_ones_with_one_warning_line(tmp_path) -> None:
    for step in (2, 4, 6):
        checkpoint(tmp_path, step)
    checkpoint(tmp_path, 8, sealed=False)  # killed mid-save
    (tmp_path / "global_step_6" / "data.pt").write_bytes(b"")
    lines: list[str] = []
    chosen = newest_complete(step_directories(tmp_path, r"global_step_(\d+)"), warn=lines.append)
    assert chosen == tmp_path / "global_step_4"
    assert lines == [
        f"warning: skipped incomplete or damaged checkpoint(s) global_step_8 (no {MANIFEST} (the save did not "
        "finish)); global_step_6 (data.pt has 0 bytes, the manifest says 18): resuming from global_step_4"
    ]
    assert newest_complete([], warn=lines.append) is None


def test_checked_resume_falls_back_refuses_explicit_damage_and_leaves_old_runs_alone(tmp_path, capsys) -> None:
    latest = checkpoint(tmp_path, 2)
    assert checked_resume(tmp_path, str(latest)) == str(latest)
    newer = checkpoint(tmp_path, 3)
    (newer / "actor" / "model.safetensors").write_bytes(b"x")
    assert checked_resume(tmp_path, str(newer)) == str(latest)
    assert "global_step_3 (actor/model.safetensors has 1 bytes" in capsys.readouterr().err
    with pytest.raises(CheckpointError, match=r"global_step_3 is incomplete or damaged: actor/model\.safetensors"):
        checked_resume(tmp_path, str(newer), explicit=True)
    # no checkpoint has a manifest (written before manifests, or saved asynchronously): the framework decides
    old = tmp_path / "old"
    legacy = checkpoint(old, 5, sealed=False)
    assert checked_resume(old, str(legacy)) == str(legacy)
    assert checked_resume(old, None) is None
