from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from data_helpers import FAST_RETRY, png_bytes
from fault_server import FaultServer
from testkit import REPO

from vlm_capcurriculum.data.openai_backend import OpenAIBackend

HERE = Path(__file__).parent


@pytest.fixture
def start_server() -> Iterator[Callable[..., FaultServer]]:
    """A factory: ``start_server(latency=..., faults=...)`` starts a server, stopped at teardown."""
    servers: list[FaultServer] = []

    def start(**options: object) -> FaultServer:
        server = FaultServer(**options).start()  # type: ignore[arg-type]
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def backend_for() -> Callable[..., OpenAIBackend]:
    def make(server: FaultServer, model: str = "m1", **options: object) -> OpenAIBackend:
        options.setdefault("retry", FAST_RETRY)
        options.setdefault("timeout", 5.0)
        return OpenAIBackend(server.base_url, model, **options)  # type: ignore[arg-type]

    return make


@pytest.fixture
def images(tmp_path: Path) -> dict[str, Path]:
    """Three small PNGs on disk: red, green, and a copy of red under another name."""
    root = tmp_path / "images"
    root.mkdir()
    paths = {"red": root / "red.png", "green": root / "green.png", "red_copy": root / "sub" / "again.png"}
    paths["red_copy"].parent.mkdir()
    paths["red"].write_bytes(png_bytes((255, 0, 0)))
    paths["green"].write_bytes(png_bytes((0, 255, 0)))
    paths["red_copy"].write_bytes(png_bytes((255, 0, 0)))
    return paths


# The models one `transformers serve` process serves (not pinned: the request's model names the checkpoint
# directory): two tiny Qwen2.5-VL with different weights stand in for the paper's filter models (Qwen2.5-VL-7B
# and -32B), a tiny Qwen3-VL for the pass@K policy (Qwen3-VL-8B).
TINY_SERVED: dict[str, tuple[str, int]] = {
    "filter_a": ("qwen2_5_vl", 0),
    "filter_b": ("qwen2_5_vl", 1),
    "policy": ("qwen3_vl", 0),
}


@dataclass(frozen=True)
class Served:
    base_url: str
    models: dict[str, str]
    """role (a key of ``TINY_SERVED``) -> the model name to request (its checkpoint directory)."""


def save_served_tiny(family: str, seed: int, directory: Path) -> Path:
    from transformers import GenerationConfig

    from vlm_capcurriculum.models import save_tiny

    save_tiny(family, directory, seed=seed)
    # do_sample so a request's temperature > 0 samples (`transformers serve` turns sampling off itself for
    # temperature 0); the instruct checkpoints ship sampling defaults the same way.
    generation = GenerationConfig.from_pretrained(directory)
    generation.do_sample = True
    generation.max_new_tokens = 16
    generation.save_pretrained(directory)
    return directory


@pytest.fixture(scope="session")
def tiny_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """``transformers serve`` (a real, maintained OpenAI-compatible server) on loopback, CPU, offline, serving the
    tiny Qwen2.5-VL and Qwen3-VL checkpoints of :data:`TINY_SERVED` (through ``serve_tiny.py``, which registers
    our image-only processors first)."""
    root = tmp_path_factory.mktemp("tiny-served")
    models = {role: str(save_served_tiny(family, seed, root / role)) for role, (family, seed) in TINY_SERVED.items()}
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    log = tmp_path_factory.mktemp("serve-log") / "serve.log"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "HF_HUB_DISABLE_UPDATE_CHECK": "1",
        "HF_HOME": str(tmp_path_factory.mktemp("hf-home")),
    }
    command = [sys.executable, str(HERE / "serve_tiny.py")]
    command += ["--device", "cpu", "--dtype", "float32", "--host", "127.0.0.1", "--port", str(port)]
    with open(log, "w") as log_file:
        server = subprocess.Popen(command, env=env, stdout=log_file, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 180
        while True:
            if server.poll() is not None:
                raise RuntimeError(f"transformers serve exited with {server.returncode}:\n{log.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"transformers serve not up after 180 s:\n{log.read_text()[-3000:]}")
            time.sleep(0.5)
        yield Served(f"http://127.0.0.1:{port}/v1", models)
    finally:
        server.terminate()
        try:
            server.wait(15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


@pytest.fixture(scope="session")
def transformers_server(tiny_server: Served) -> tuple[str, str]:
    """``(base_url, model)`` of the served tiny Qwen2.5-VL."""
    return tiny_server.base_url, tiny_server.models["filter_a"]
