"""A fault-injecting OpenAI-compatible chat server on loopback, for the data-pipeline tests and benchmark.

Written on raw asyncio streams rather than an ASGI framework because the faults live below HTTP: a body cut
off mid-way under a correct Content-Length, a TCP reset instead of a response. Answers are a pure function of
the request (model, message text, image bytes, seed, sample index), so a test can predict every one.

Faults are scripted per prompt (the request's text): ``faults={"q3": ["500", "429:1", "malformed"]}`` makes the
first three attempts at ``q3`` fail in that order and the fourth succeed; ``default_faults`` applies to every
prompt. Fault specs: an HTTP status (``"500"``, ``"400"``, ...), ``"429:SECONDS"`` (with Retry-After),
``"slow:SECONDS"`` (answers correctly after a delay), ``"malformed"`` (200, not JSON), ``"truncated"`` (200,
half the body, then close), ``"reset"`` (TCP RST, no response), ``"empty"`` (200, no choices).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import socket
import struct
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


def message_text(messages: list[dict[str, Any]]) -> str:
    parts: list[str] = []
    for message in messages:
        content = message.get("content")
        if isinstance(content, str):
            parts.append(content)
        else:
            parts.extend(item["text"] for item in content if item.get("type") == "text")
    return "".join(parts)


def image_digests(messages: list[dict[str, Any]]) -> list[str]:
    """SHA-256 (first 12 hex) of each image's decoded bytes, in order."""
    out = []
    for message in messages:
        content = message.get("content")
        if isinstance(content, list):
            for item in content:
                if item.get("type") == "image_url":
                    url = item["image_url"]["url"]
                    header, _, data = url.partition(",")
                    assert header.startswith("data:image/") and header.endswith(";base64"), header
                    out.append(hashlib.sha256(base64.b64decode(data)).hexdigest()[:12])
    return out


def expected_answer(model: str, text: str, images: list[str], seed: int | None, index: int) -> str:
    """What the server answers (tests compute their expectations with this)."""
    return f"{model}|{text}|img={','.join(images)}|seed={seed}|i={index}"


@dataclass
class Received:
    at: float
    prompt: str
    body: dict[str, Any]
    outcome: str
    headers: dict[str, str]


@dataclass
class FaultServer:
    latency: float = 0.0
    faults: dict[str, list[str]] = field(default_factory=dict)
    default_faults: list[str] = field(default_factory=list)
    honour_n: bool = True
    keep_bodies: bool = True
    answer: Callable[[str, str, list[str], int | None, int], str] = expected_answer

    def __post_init__(self) -> None:
        self.received: list[Received] = []
        self.attempts: Counter[str] = Counter()
        self.in_flight = 0
        self.peak_in_flight = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.base_events.Server | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    # -- lifecycle ---------------------------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> FaultServer:
        ready = threading.Event()

        def run() -> None:
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            self._loop = loop
            self._server = loop.run_until_complete(asyncio.start_server(self._handle, "127.0.0.1", 0, backlog=1024))
            self.port = self._server.sockets[0].getsockname()[1]
            ready.set()
            loop.run_forever()
            self._server.close()
            tasks = asyncio.all_tasks(loop)
            for task in tasks:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
            loop.close()

        self._thread = threading.Thread(target=run, name="fault-server", daemon=True)
        self._thread.start()
        ready.wait(10)
        return self

    def stop(self) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)

    def __enter__(self) -> FaultServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def reset_counts(self) -> None:
        self.received.clear()
        self.attempts.clear()
        self.peak_in_flight = self.in_flight

    @property
    def completions(self) -> int:
        """Requests answered successfully."""
        return sum(1 for r in self.received if r.outcome == "ok")

    # -- HTTP --------------------------------------------------------------------------------------------------
    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, path, _ = lines[0].split(" ", 2)
                headers = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:] if ln)}
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                if method == "GET" and path.endswith("/health"):
                    await self._send(writer, 200, b'{"status":"ok"}')
                    continue
                if method != "POST" or not path.endswith("/chat/completions"):
                    await self._send(writer, 404, b'{"error":{"message":"no such route"}}')
                    continue
                if not await self._complete(json.loads(body), headers, writer):
                    return
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    async def _send(
        self, writer: asyncio.StreamWriter, status: int, body: bytes, extra: dict[str, str] | None = None
    ) -> None:
        reason = {200: "OK", 404: "Not Found", 429: "Too Many Requests"}.get(status, "Status")
        head = [f"HTTP/1.1 {status} {reason}", "content-type: application/json", f"content-length: {len(body)}"]
        head += [f"{k}: {v}" for k, v in (extra or {}).items()]
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body)
        await writer.drain()

    async def _complete(self, request: dict[str, Any], headers: dict[str, str], writer: asyncio.StreamWriter) -> bool:
        """Answer one request; False when the connection was deliberately broken."""
        prompt = message_text(request["messages"])
        attempt = self.attempts[prompt]
        self.attempts[prompt] += 1
        script = self.faults.get(prompt, self.default_faults)
        fault = script[attempt] if attempt < len(script) else "ok"
        self.received.append(Received(time.monotonic(), prompt, request if self.keep_bodies else {}, fault, headers))
        self.in_flight += 1
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        try:
            if fault.startswith("slow:"):
                await asyncio.sleep(float(fault.split(":")[1]))
                fault = "ok"
            if fault == "ok":
                await asyncio.sleep(self.latency)
                await self._send(writer, 200, self._completion_body(request))
            elif fault == "malformed":
                await self._send(writer, 200, b'{"id": "x", "choices": [{"index": 0, "message": ')
            elif fault == "empty":
                await self._send(writer, 200, b'{"id": "x", "object": "chat.completion", "choices": []}')
            elif fault == "truncated":
                body = self._completion_body(request)
                head = f"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n\r\n"
                writer.write(head.encode("latin-1") + body[: len(body) // 2])
                await writer.drain()
                return False
            elif fault == "reset":
                sock = writer.get_extra_info("socket")
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                writer.transport.abort()
                return False
            elif fault.startswith("429"):
                retry_after = fault.split(":")[1] if ":" in fault else None
                extra = {"retry-after": retry_after} if retry_after else None
                await self._send(writer, 429, b'{"error":{"message":"rate limited (injected)"}}', extra)
            else:
                status = int(fault)
                message = json.dumps({"error": {"message": f"injected {status} for {prompt!r}", "code": status}})
                await self._send(writer, status, message.encode())
            return True
        finally:
            self.in_flight -= 1

    def _completion_body(self, request: dict[str, Any]) -> bytes:
        text = message_text(request["messages"])
        images = image_digests(request["messages"])
        n = int(request.get("n") or 1) if self.honour_n else 1
        seed = request.get("seed")
        choices = [
            {
                "index": i,
                "message": {"role": "assistant", "content": self.answer(request["model"], text, images, seed, i)},
                "finish_reason": "stop",
            }
            for i in range(n)
        ]
        usage = {
            "prompt_tokens": len(text.split()),
            "completion_tokens": 3 * n,
            "total_tokens": len(text.split()) + 3 * n,
        }
        return json.dumps(
            {
                "id": "chatcmpl-test",
                "object": "chat.completion",
                "model": request["model"],
                "choices": choices,
                "usage": usage,
            }
        ).encode()


def main() -> None:
    """``python fault_server.py --latency 0.05``: serve in this process, print the port, run until stdin closes
    (so a benchmark can keep the server off its own GIL)."""
    import argparse
    import sys

    parser = argparse.ArgumentParser()
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--answer", help="answer every request with this text (default: the echoing answer)")
    args = parser.parse_args()
    options = {} if args.answer is None else {"answer": lambda *_: args.answer}
    server = FaultServer(latency=args.latency, keep_bodies=False, **options).start()
    print(server.port, flush=True)
    for line in sys.stdin:
        if line.strip() == "stats":
            print(json.dumps({"completions": server.completions, "peak_in_flight": server.peak_in_flight}), flush=True)
        elif line.strip() == "reset":
            server.reset_counts()
            print("{}", flush=True)
    server.stop()


if __name__ == "__main__":
    main()
