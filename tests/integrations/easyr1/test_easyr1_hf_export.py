"""hf_export.py: complete, loadable, atomically written model directories."""

from __future__ import annotations

import easyr1_lane as lane
import pytest
import torch
from transformers import Qwen2_5_VLForConditionalGeneration

from vlm_capcurriculum.integrations.easyr1.hf_export import read_hf_weights, write_hf_model_dir
from vlm_capcurriculum.integrations.easyr1.layout import has_weights


@pytest.fixture
def tied(model_config):
    config = type(model_config).from_dict(model_config.to_dict())
    config.tie_word_embeddings = True
    model = lane.build_model(config)
    assert model.lm_head.weight is model.model.language_model.embed_tokens.weight
    return config, model


def test_tied_output_layer_may_be_absent(tied, tmp_path):
    config, model = tied
    weights = {key: value for key, value in model.state_dict().items() if key != "lm_head.weight"}
    out = write_hf_model_dir(tmp_path / "tied", weights, config, dtype=torch.float32)
    loaded = Qwen2_5_VLForConditionalGeneration.from_pretrained(out)
    assert torch.equal(loaded.lm_head.weight, model.lm_head.weight)
    assert read_hf_weights(out).keys() == model.state_dict().keys()  # tied keys come back


def test_missing_or_foreign_weights_are_refused_and_leave_nothing(tied, tmp_path):
    config, model = tied
    weights = model.state_dict()
    without_norms = {key: value for key, value in weights.items() if "norm" not in key}
    with pytest.raises(ValueError, match="weights of Qwen2_5_VLForConditionalGeneration are missing"):
        write_hf_model_dir(tmp_path / "a", without_norms, config)
    with pytest.raises(ValueError, match="do not belong"):
        write_hf_model_dir(tmp_path / "a", {**weights, "extra.weight": torch.zeros(1)}, config)
    assert list(tmp_path.iterdir()) == []


def test_overwrite_replaces_a_finished_directory(tied, tmp_path):
    config, model = tied
    first = write_hf_model_dir(tmp_path / "m", model.state_dict(), config, dtype=torch.float32)
    (first / "stale.txt").write_text("from the previous export")
    zeros = {key: torch.zeros_like(value) for key, value in model.state_dict().items()}
    write_hf_model_dir(first, zeros, config, dtype=torch.float32, overwrite=True)
    assert has_weights(first) and not (first / "stale.txt").exists()
    assert sorted(path.name for path in tmp_path.iterdir()) == ["m"]
    assert not has_weights(tmp_path)
