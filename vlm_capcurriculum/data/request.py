"""What a pipeline asks a model: chat messages with images, sampling parameters, and the cache key of both.

An image is identified by the SHA-256 of its *bytes*, never by its path: the same picture under two roots (or a
re-downloaded copy) hits the same cache entry, and an image replaced in place does not. Bytes are read when
needed and not kept, so a request for a 15K-image dataset holds paths, not pictures.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vlm_capcurriculum.schema import IMAGE_PLACEHOLDER

# Bump when the key payload changes shape, so old cache entries can never be mistaken for new ones.
CACHE_KEY_VERSION = 1

_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"BM", "image/bmp"),
)
_EXT_MIME = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".bmp": "image/bmp",
}


class InputError(ValueError):
    """A bad input record (missing image, malformed field): reported against its row, never sent to the model."""


def sniff_mime(data: bytes, name: str | None = None) -> str:
    """The image MIME type from its leading bytes (servers decode by content; the extension is only a hint)."""
    for magic, mime in _MAGIC:
        if data.startswith(magic):
            return mime
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if name is not None:
        ext = os.path.splitext(name)[1].lower()
        if ext in _EXT_MIME:
            return _EXT_MIME[ext]
    raise InputError(f"{name or 'image bytes'}: not a PNG, JPEG, GIF, WEBP or BMP image")


class ImageInput:
    """An image given by path (read lazily) or by bytes; hashed by content."""

    __slots__ = ("_data", "_digest", "path")

    def __init__(self, source: str | os.PathLike[str] | bytes) -> None:
        self.path = None if isinstance(source, bytes) else Path(source)
        self._data = source if isinstance(source, bytes) else None
        self._digest: str | None = None

    def read(self) -> bytes:
        if self._data is not None:
            return self._data
        assert self.path is not None
        try:
            return self.path.read_bytes()
        except OSError as err:
            raise InputError(f"cannot read image {self.path}: {err.strerror or err}") from err

    @property
    def digest(self) -> str:
        if self._digest is None:
            self._digest = hashlib.sha256(self.read()).hexdigest()
        return self._digest

    def data_url(self) -> str:
        """The image as a ``data:`` URL, the form every OpenAI-compatible server accepts."""
        data = self.read()
        name = str(self.path) if self.path is not None else None
        return f"data:{sniff_mime(data, name)};base64,{base64.b64encode(data).decode('ascii')}"


Content = str | ImageInput


@dataclass(frozen=True)
class Message:
    """One chat turn: a role and its parts in order (text strings and images)."""

    role: str
    content: tuple[Content, ...]


@dataclass(frozen=True)
class ChatRequest:
    """A chat-completion prompt. Build single-turn prompts with :meth:`user`."""

    messages: tuple[Message, ...]

    @classmethod
    def user(
        cls,
        text: str,
        images: Sequence[ImageInput | str | os.PathLike[str] | bytes] = (),
        *,
        system: str | None = None,
    ) -> ChatRequest:
        """A one-turn request. Images go where ``text`` has ``<image>`` placeholders (our schema's convention; their
        count must match), or before the text when it has none (the Qwen-VL chat convention)."""
        coerced = [image if isinstance(image, ImageInput) else ImageInput(image) for image in images]
        pieces = text.split(IMAGE_PLACEHOLDER)
        parts: list[Content] = []
        if len(pieces) == 1:
            parts.extend(coerced)
            parts.append(text)
        elif len(pieces) - 1 != len(coerced):
            raise InputError(
                f"prompt has {len(pieces) - 1} {IMAGE_PLACEHOLDER} placeholder(s) but {len(coerced)} image(s)"
            )
        else:
            for i, piece in enumerate(pieces):
                if piece:
                    parts.append(piece)
                if i < len(coerced):
                    parts.append(coerced[i])
        messages = [Message("user", tuple(parts))]
        if system is not None:
            messages.insert(0, Message("system", (system,)))
        return cls(tuple(messages))

    def key_payload(self) -> list[dict[str, Any]]:
        return [
            {
                "role": m.role,
                "content": [
                    {"type": "text", "text": p} if isinstance(p, str) else {"type": "image", "sha256": p.digest}
                    for p in m.content
                ],
            }
            for m in self.messages
        ]

    def to_openai(self, image_url: Callable[[ImageInput], str] | None = None) -> list[dict[str, Any]]:
        """The messages in the OpenAI chat format, images as base64 data URLs (or ``image_url(image)``); a text-only
        turn as a plain string, which every server and chat template accepts."""
        image_url = image_url or ImageInput.data_url
        out: list[dict[str, Any]] = []
        for m in self.messages:
            if all(isinstance(p, str) for p in m.content):
                out.append({"role": m.role, "content": "".join(p for p in m.content if isinstance(p, str))})
                continue
            content = [
                {"type": "text", "text": p}
                if isinstance(p, str)
                else {"type": "image_url", "image_url": {"url": image_url(p)}}
                for p in m.content
            ]
            out.append({"role": m.role, "content": content})
        return out


@dataclass(frozen=True)
class SamplingParams:
    """Decoding settings sent with every request; ``n``, the samples wanted, is not part of the cache key."""

    temperature: float = 0.0
    top_p: float = 1.0
    max_tokens: int = 1024
    n: int = 1
    seed: int | None = None
    extra: tuple[tuple[str, Any], ...] = ()  # request fields a server understands: ``("top_k", 20)``

    def __post_init__(self) -> None:
        if not (self.temperature >= 0 and math.isfinite(self.temperature)):
            raise ValueError(f"temperature must be a finite number >= 0, got {self.temperature!r}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p!r}")
        if self.max_tokens < 1:
            raise ValueError(f"max_tokens must be >= 1, got {self.max_tokens!r}")
        if self.n < 1:
            raise ValueError(f"n must be >= 1, got {self.n!r}")
        reserved = {"model", "messages", "n", "seed", "temperature", "top_p", "max_tokens", "stream"}
        clash = reserved & {name for name, _ in self.extra}
        if clash:
            raise ValueError(f"extra may not set {sorted(clash)}: they are SamplingParams fields")

    def key_payload(self) -> dict[str, Any]:
        return {
            "temperature": float(self.temperature),
            "top_p": float(self.top_p),
            "max_tokens": int(self.max_tokens),
            "seed": self.seed,
            "extra": {name: value for name, value in self.extra},
        }


def key_blob(model: str, request: ChatRequest, params: SamplingParams) -> str:
    """The canonical JSON a cache key hashes: model, messages (images as the SHA-256 of their bytes), sampling."""
    payload = {
        "v": CACHE_KEY_VERSION,
        "model": model,
        "messages": request.key_payload(),
        "params": params.key_payload(),
    }
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def blob_key(blob: str) -> str:
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def request_key(model: str, request: ChatRequest, params: SamplingParams) -> str:
    """The cache key of a request: the SHA-256 of :func:`key_blob`. ``n`` is left out: sample ``i`` is stored under
    ``(key, i)``, so asking for 8 samples after 5 were cached generates only 3."""
    return blob_key(key_blob(model, request, params))
