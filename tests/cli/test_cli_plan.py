from __future__ import annotations

import json
import struct
import sys
import zlib
from pathlib import Path

import pytest
from testkit import REPO

from vlm_capcurriculum.cli import main


def plain_config(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "run.yaml"
    path.write_text(body)
    return path


@pytest.fixture
def text_data(tmp_path: Path) -> Path:
    path = tmp_path / "text.jsonl"
    path.write_text(
        "".join(json.dumps({"id": f"t{i}", "problem": f"{i}+1?", "answer": i + 1}) + "\n" for i in range(10))
    )
    return path


def test_table_of_the_default_recipe(monkeypatch, capsys) -> None:
    monkeypatch.chdir(REPO)
    assert main(["plan", "--config", "recipes/config.yaml"]) == 0
    out = capsys.readouterr().out
    for text in (
        "perception",
        "text_reasoning",
        "visual_reasoning",
        "1-60",
        "61-120",
        "121-180",
        "vision_tower=frozen",
        "start: reset_optimizer, refresh_reference",
        "kept 36 of 36 rows",
    ):
        assert text in out
    assert "total" in out and "180" in out


def test_json_of_a_recipe_with_group_and_value_overrides(monkeypatch, capsys) -> None:
    monkeypatch.chdir(REPO)
    assert (
        main(["plan", "--config", "recipes/config.yaml", "curriculum=order_213", "curriculum.batch_size=4", "--json"])
        == 0
    )
    plan = json.loads(capsys.readouterr().out)
    assert plan["mode"] == "staged" and plan["batch_size"] == 4
    assert [(s["name"], s["steps"], s["start_step"], s["end_step"]) for s in plan["stages"]] == [
        ("text_reasoning", 135, 1, 135),
        ("perception", 135, 136, 270),
        ("visual_reasoning", 135, 271, 405),
    ]
    assert plan["total_steps"] == 405
    assert [d["rows_kept"] for d in plan["data"]] == [36, 36, 36]


def test_plain_yaml_with_only_a_curriculum_block(tmp_path: Path, text_data: Path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    config = plain_config(
        tmp_path,
        "curriculum:\n  batch_size: 2\n  stages:\n    - {name: text_reasoning, train_files: [text.jsonl], epochs: 3}\n",
    )
    assert main(["plan", "--config", str(config), "curriculum.batch_size=5", "+note=hello", "--json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert (plan["batch_size"], plan["total_steps"]) == (5, 6)


@pytest.mark.parametrize(
    ("body", "overrides", "expected"),
    [
        (
            "curriculum:\n  batch_size: 2\n  stages:\n    - {name: t, train_files: [text.jsonl], epoch: 3}\n",
            [],
            "run.yaml: curriculum.stages[0].epoch: unknown key; did you mean 'epochs'?",
        ),
        (
            "curriculum:\n  batch_size: 2\n  stages:\n    - {name: t, train_files: [gone.jsonl], epochs: 3}\n",
            [],
            "run.yaml: curriculum.stages[0].train_files[0]: 'gone.jsonl': no such file",
        ),
        (
            "curriculum:\n  batch_size: 20\n  stages:\n    - {name: t, train_files: [text.jsonl], epochs: 3}\n",
            [],
            "run.yaml: stage 't': 10 samples, fewer than one batch of 20",
        ),
        (
            "curriculum:\n  batch_size: 2\n  stages:\n    - {name: t, train_files: [text.jsonl], epochs: 3}\n",
            ["curriculum=merged"],
            "run.yaml: curriculum: is the string 'merged', not a curriculum block",
        ),
        (
            "curriculum:\n  batch_size: 2\n  order: easy_to_hard\n  stages:\n    - {name: t, train_files: [text.jsonl], epochs: 1}\n",
            [],
            "order easy_to_hard needs pass_rate on every record; 10 of 10",
        ),
        ("other: 1\n", [], "run.yaml: curriculum: missing: the config has no curriculum block"),
    ],
)
def test_errors_are_one_line_with_exit_status_2(tmp_path, text_data, monkeypatch, capsys, body, overrides, expected):
    monkeypatch.chdir(tmp_path)
    config = plain_config(tmp_path, body)
    assert main(["plan", "--config", str(config), *overrides]) == 2
    err = capsys.readouterr().err
    assert err.startswith("vlmcc plan: error: ") and err.count("\n") == 1
    assert expected in err


def test_bad_rows_fail_with_their_location_unless_lenient(tmp_path, text_data, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    with text_data.open("a") as handle:
        handle.write(json.dumps({"id": "t99", "problem": "?", "pass_rate": 2}) + "\n")
    config = plain_config(
        tmp_path, "curriculum:\n  batch_size: 2\n  stages:\n    - {name: t, train_files: [text.jsonl], epochs: 1}\n"
    )
    assert main(["plan", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert f"{text_data}:11: answer: missing (and 1 more: pass_rate_out_of_range 1) (--lenient skips bad rows)" in err
    assert main(["plan", "--config", str(config), "--lenient"]) == 0
    assert "kept 10 of 11 rows; skipped 1 (missing_field 1)" in capsys.readouterr().out


def test_missing_config_file(capsys) -> None:
    assert main(["plan", "--config", "nowhere.yaml"]) == 2
    assert "nowhere.yaml: no such config file" in capsys.readouterr().err


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width`` x ``height`` (a decompression bomb's shape, without the pixels)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


BAD_IMAGES = {  # name -> (bytes or None for a path outside the root, expected message)
    "text.png": (b"not an image at all\n", "'text.png' cannot be decoded (UnidentifiedImageError"),
    "truncated.png": (None, "'truncated.png' cannot be decoded (OSError"),
    "empty.png": (b"", "'empty.png' cannot be decoded (UnidentifiedImageError"),
    "bomb.png": (png_header_only(20000, 20000), "'bomb.png' is 20000x20000 = 400000000 pixels, over the limit"),
    "../outside.png": (None, "'../outside.png' is outside the image root"),
}


@pytest.fixture
def image_data(tmp_path: Path) -> tuple[Path, Path]:
    """A perception stage file: line 1 a good image, then one line per kind of bad image (in BAD_IMAGES order)."""
    from PIL import Image

    root = tmp_path / "images"
    root.mkdir()
    Image.new("RGB", (16, 12), (200, 10, 10)).save(root / "good.png")
    noise = Image.frombytes("RGB", (64, 64), bytes(range(256)) * 48)
    noise.save(tmp_path / "outside.png")
    whole = (tmp_path / "outside.png").read_bytes()
    (root / "truncated.png").write_bytes(whole[: len(whole) // 2])
    for name, (content, _) in BAD_IMAGES.items():
        if content is not None:
            (root / name).write_bytes(content)
    rows = [{"id": f"p{i}", "problem": "<image>What colour?", "images": [name], "answer": "red"}
            for i, name in enumerate(["good.png", *BAD_IMAGES])]  # fmt: skip
    data = tmp_path / "perception.jsonl"
    data.write_text("".join(json.dumps(row) + "\n" for row in rows))
    config = plain_config(
        tmp_path,
        "curriculum:\n  batch_size: 1\n  stages:\n"
        "    - {name: p, capability: perception, train_files: [perception.jsonl], image_root: images, epochs: 1}\n",
    )
    return config, data


@pytest.mark.parametrize("bad", list(BAD_IMAGES))
def test_each_kind_of_bad_image_fails_the_plan_naming_file_and_line(image_data, monkeypatch, capsys, bad) -> None:
    config, data = image_data
    monkeypatch.chdir(config.parent)
    rows = data.read_text().splitlines()
    line = 2 + list(BAD_IMAGES).index(bad)
    data.write_text("\n".join([rows[0], *[""] * (line - 2), rows[line - 1]]) + "\n")  # the good row and this one
    assert main(["plan", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert f"{data}:{line}: images: {BAD_IMAGES[bad][1]}" in err, err


def test_bad_images_are_skipped_and_counted_with_lenient(image_data, monkeypatch, capsys) -> None:
    config, _ = image_data
    monkeypatch.chdir(config.parent)
    assert main(["plan", "--config", str(config), "--lenient"]) == 0
    out = capsys.readouterr().out
    assert "kept 1 of 6 rows; skipped 5 (image_unreadable 3, image_too_large 1, image_outside_root 1)" in out
    # the limit and the root are settings
    assert main(["plan", "--config", str(config), "--lenient", "--allow-images-outside-root",
                 "--max-image-pixels", "400000000"]) == 0  # fmt: skip
    # the header-only bomb now passes: PNGs are checked chunk by chunk (CRCs), not inflated (schema/images.py)
    assert "kept 3 of 6 rows; skipped 3 (image_unreadable 3)" in capsys.readouterr().out


def test_without_pillow_the_plan_checks_presence_and_location_and_says_so(image_data, monkeypatch, capsys) -> None:
    config, _ = image_data
    monkeypatch.chdir(config.parent)
    monkeypatch.setitem(sys.modules, "PIL", None)  # `import PIL.Image` now raises ImportError
    monkeypatch.setitem(sys.modules, "PIL.Image", None)
    assert main(["plan", "--config", str(config), "--lenient"]) == 0
    captured = capsys.readouterr()
    assert "decoding and size checks need pillow (pip install pillow)" in captured.err
    assert "kept 5 of 6 rows; skipped 1 (image_outside_root 1)" in captured.out
