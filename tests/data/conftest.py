from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fault_server import FaultServer

from vlm_capcurriculum.data import OpenAIBackend, RetryPolicy

# Retries in tests: real backoff logic, millisecond delays.
FAST_RETRY = RetryPolicy(max_attempts=4, malformed_attempts=3, base_delay=0.005, max_delay=0.02)


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


def png_bytes(color: tuple[int, int, int], size: tuple[int, int] = (8, 6)) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format="PNG")
    return buffer.getvalue()


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
