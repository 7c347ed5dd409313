"""The committed sample dataset is exactly what its generator writes, valid in our schema, small, and varied."""

from __future__ import annotations

import importlib.util
import sys
from collections import Counter
from pathlib import Path

import pytest

from vlm_capcurriculum.schema import read_records
from vlm_capcurriculum.schema.answer import ANSWER_TYPES, AnswerSpec

SAMPLES = Path(__file__).resolve().parents[2] / "data_recipes" / "samples"
CAPABILITIES = ("perception", "text_reasoning", "visual_reasoning")


@pytest.fixture(scope="module")
def generator():
    spec = importlib.util.spec_from_file_location("samples_generate", SAMPLES / "generate.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the module executes
    spec.loader.exec_module(module)
    return module


def test_regenerating_reproduces_the_committed_files(generator, tmp_path: Path) -> None:
    from PIL import Image

    generator.main(["--out", str(tmp_path)], _print=lambda _: None)
    for capability in CAPABILITIES:
        assert (tmp_path / f"{capability}.jsonl").read_bytes() == (SAMPLES / f"{capability}.jsonl").read_bytes()
    fresh = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*.png"))
    committed = sorted(p.relative_to(SAMPLES) for p in SAMPLES.rglob("*.png"))
    assert fresh == committed
    for relative in fresh:  # PNG bytes depend on the zlib build; compare pixels
        with Image.open(tmp_path / relative) as new, Image.open(SAMPLES / relative) as old:
            assert new.size == old.size and new.convert("RGB").tobytes() == old.convert("RGB").tobytes()


def test_samples_are_valid_small_and_cover_every_answer_type() -> None:
    types: Counter[str] = Counter()
    for capability in CAPABILITIES:
        result = read_records(SAMPLES / f"{capability}.jsonl")
        assert not result.report.notes  # placeholders written, nothing normalised
        records = result.records
        assert 24 <= len(records) <= 60
        assert all(r.capability == capability and r.pass_rate is not None for r in records)
        assert all(bool(r.images) == (capability != "text_reasoning") for r in records)
        for record in records:
            assert AnswerSpec.parse(record.ground_truth()) == record.answer_spec()
            assert len(record.problem) < 160  # short prompts for the CPU quick start
        types.update(r.answer_type for r in records)
    assert set(types) == set(ANSWER_TYPES)
    assert sum(p.stat().st_size for p in SAMPLES.rglob("*") if p.is_file()) < 1_000_000
    assert any(len(r.images) == 2 for r in read_records(SAMPLES / "visual_reasoning.jsonl").records)
