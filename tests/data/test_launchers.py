"""The data-recipe launchers (``data_recipes/``): the paper's models and settings by default, and the perception
steps run end to end against a server given by URL (``SERVE=none``), here the loopback fault server."""

from __future__ import annotations

import os
import subprocess
import sys

from pipeline_helpers import docci_corpus, mcq_json, read_jsonl
from testkit import REPO

RECIPES = REPO / "data_recipes"


def launch(script: str, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, "PYTHONPATH": str(REPO), "VLMCC": f"{sys.executable} -m vlm_capcurriculum", **env}
    return subprocess.run(["bash", str(RECIPES / script), *args], env=full, capture_output=True, text=True, timeout=120)


def test_dry_runs_name_the_papers_models() -> None:
    commands = launch("perception/generate.sh", {"DRY_RUN": "1", "CAPTIONS": "c.jsonlines", "IMAGE_ROOT": "img"})
    assert commands.returncode == 0, commands.stderr
    assert "--model Qwen/Qwen2.5-72B-Instruct" in commands.stdout
    assert "vllm serve Qwen/Qwen2.5-72B-Instruct" in commands.stderr
    commands = launch("perception/filter.sh", {"DRY_RUN": "1", "IMAGE_ROOT": "img"})
    assert "--model Qwen/Qwen2.5-VL-7B-Instruct --base-url http://localhost:8001/v1" in commands.stdout
    assert "--model Qwen/Qwen2.5-VL-32B-Instruct --base-url http://localhost:8002/v1" in commands.stdout
    commands = launch("difficulty/passk.sh", {"DRY_RUN": "1", "STAGE_FILES": "a/p.jsonl b/t.jsonl"})
    assert commands.stdout.count("--model Qwen/Qwen3-VL-8B-Instruct -k 16") == 2
    commands = launch("reasoning/convert.sh", {"DRY_RUN": "1", "ORZ": "orz.json"})
    assert commands.stdout.splitlines()[-1].endswith("data convert orz --input orz.json --output out/orz.jsonl")
    missing = launch("perception/generate.sh", {"DRY_RUN": "1", "IMAGE_ROOT": "img"})
    assert missing.returncode != 0 and "set CAPTIONS" in missing.stderr


def test_generate_then_filter_launchers_against_a_server(start_server, tmp_path) -> None:
    captions, images = docci_corpus(tmp_path, 3)

    def answer(model: str, text: str, image_digests: list[str], seed: int | None, index: int) -> str:
        if "Reply with one JSON object" in text:
            return mcq_json(text.split("Photo ")[1].split(":")[0])
        if "cannot see the image" in text:
            return "A"
        return "B"  # both filter models misperceive every question

    server = start_server(answer=answer)
    env = {"SERVE": "none", "CAPTIONS": str(captions), "IMAGE_ROOT": str(images), "OUT_DIR": str(tmp_path / "out")}
    done = launch("perception/generate.sh", {**env, "BASE_URL": server.base_url}, "--no-progress")
    assert done.returncode == 0, done.stderr[-2000:]
    urls = {"BASE_URL_A": server.base_url, "BASE_URL_B": server.base_url}
    done = launch("perception/filter.sh", {**env, **urls}, "--no-progress")
    assert done.returncode == 0, done.stderr[-2000:]
    kept = read_jsonl(tmp_path / "out" / "docci_perception.jsonl")
    assert [row["id"] for row in kept] == ["train_00000", "train_00001", "train_00002"]
    assert set(kept[0]["filter"]) == {"Qwen/Qwen2.5-VL-7B-Instruct", "Qwen/Qwen2.5-VL-32B-Instruct"}
