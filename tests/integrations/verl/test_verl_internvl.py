"""InternVL on verl at plan time: what is refused (Ulysses > 1, remote-code checkpoints) and the training guard."""

from __future__ import annotations

from typing import Any

import pytest

pytest.importorskip("verl")

from vlm_capcurriculum.integrations.verl.internvl import (
    RUNTIME_GAPS,
    InternVLConfigError,
    check_internvl,
    is_internvl,
    refuse_training,
)

NATIVE = "actor_rollout_ref.model.path=OpenGVLab/InternVL3_5-8B-HF"


def test_internvl_is_recognised_by_family_or_checkpoint(verl_config: Any) -> None:
    assert is_internvl(verl_config([NATIVE]))
    assert is_internvl(verl_config(), "internvl") and not is_internvl(verl_config([NATIVE]), "qwen3_vl")
    assert not is_internvl(verl_config(["actor_rollout_ref.model.path=Qwen/Qwen3-VL-8B-Instruct"]))


def test_the_native_checkpoint_plans_and_ulysses_is_refused(verl_config: Any) -> None:
    check_internvl(verl_config([NATIVE]), "internvl")
    with pytest.raises(InternVLConfigError) as error:
        check_internvl(verl_config([NATIVE, "actor_rollout_ref.actor.ulysses_sequence_parallel_size=2"]), "internvl")
    message = str(error.value)
    assert "Ulysses sequence parallelism is not wired for InternVL" in message
    assert "actor_rollout_ref.actor.ulysses_sequence_parallel_size=2" in message  # the key to change, named
    # the same setting is fine for a Qwen model
    check_internvl(verl_config(["actor_rollout_ref.actor.ulysses_sequence_parallel_size=2"]), "qwen3_vl")


def test_the_remote_code_checkpoint_is_refused_with_the_native_id(verl_config: Any) -> None:
    with pytest.raises(InternVLConfigError, match="use the transformers-native OpenGVLab/InternVL3-8B-hf"):
        check_internvl(verl_config(["actor_rollout_ref.model.path=OpenGVLab/InternVL3-8B"]))


def test_training_is_refused_until_the_runtime_fixes_exist(verl_config: Any) -> None:
    with pytest.raises(InternVLConfigError) as error:
        refuse_training(verl_config([NATIVE]), "internvl")
    assert all(gap in str(error.value) for gap in RUNTIME_GAPS) and "backend=trl" in str(error.value)
    refuse_training(verl_config(), "qwen3_vl")
