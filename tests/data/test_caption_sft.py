"""``vlmcc data caption-sft``: image -> "describe the image in detail" -> caption, as TRL or LLaMA-Factory rows."""

from __future__ import annotations

import json

from pipeline_helpers import cli, docci_corpus, read_jsonl


def test_trl_rows_train_through_trls_collator_with_a_tiny_qwen(tmp_path, capsys) -> None:
    captions, images = docci_corpus(tmp_path, 3)
    with captions.open("a") as handle:
        handle.write('{"example_id": "train_00009", "image_file": "nope.jpg", "description": "x"}\n')
    out = tmp_path / "sft.jsonl"
    args = ["caption-sft", "--captions", str(captions), "--source", "docci", "--output", str(out)]
    assert cli(*args, "--image-root", str(images), "--absolute-images") == 0
    assert "wrote 3 rows" in capsys.readouterr().err
    rows = read_jsonl(out)
    assert rows[0]["prompt"] == [{"role": "user", "content": "Describe this image in detail."}]
    assert rows[0]["completion"][0]["content"].startswith("Photo 0: a red mug")
    assert rows[0]["images"] == [str((images / "train_00000.jpg").absolute())]
    [issue] = read_jsonl(out.with_suffix(".issues.jsonl"))
    assert issue["field"] == "image_file" and issue["location"].endswith(":4")

    # The rows are what TRL's vision collator takes: prompt-completion, the loss only on the caption.
    from datasets import Image, Sequence, load_dataset
    from trl.trainer.sft_trainer import DataCollatorForVisionLanguageModeling

    from vlm_capcurriculum.models import build_tiny_processor

    processor = build_tiny_processor("qwen2_5_vl")
    dataset = load_dataset("json", data_files=str(out), split="train").cast_column("images", Sequence(Image()))
    collator = DataCollatorForVisionLanguageModeling(processor, completion_only_loss=True)
    batch = collator([dataset[0], dataset[1]])
    assert batch["pixel_values"].shape[0] > 0 and batch["image_grid_thw"].shape[0] == 2
    taught = processor.tokenizer.decode(batch["input_ids"][0][batch["labels"][0] != -100])
    assert taught.startswith("Photo 0: a red mug stands to the left of a wooden box")
    assert "Describe this image" not in taught


def test_llamafactory_rows_and_dataset_info(tmp_path) -> None:
    captions, _ = docci_corpus(tmp_path, 2)
    info = tmp_path / "dataset_info.json"
    info.write_text(json.dumps({"other_dataset": {"file_name": "other.json"}}))
    out = tmp_path / "docci_caption.jsonl"
    args = ["caption-sft", "--captions", str(captions), "--source", "docci", "--output", str(out)]
    assert cli(*args, "--format", "llamafactory", "--instruction", "Please describe the picture.") == 0
    row = read_jsonl(out)[1]
    assert row["messages"] == [
        {"role": "user", "content": "<image>Please describe the picture."},
        {"role": "assistant", "content": row["messages"][1]["content"]},
    ]
    assert row["images"] == ["train_00001.jpg"]
    entries = json.loads(info.read_text())
    assert entries["other_dataset"] == {"file_name": "other.json"}  # merged, not overwritten
    assert entries["docci_caption"]["file_name"] == "docci_caption.jsonl"
    assert entries["docci_caption"]["formatting"] == "sharegpt"
