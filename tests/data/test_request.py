from __future__ import annotations

import base64
import hashlib

import pytest
from data_helpers import png_bytes

from vlm_capcurriculum.data.request import ChatRequest, ImageInput, InputError, SamplingParams, request_key, sniff_mime


def test_key_hashes_image_bytes_not_paths(images) -> None:
    params = SamplingParams()
    red = request_key("m", ChatRequest.user("q", [images["red"]]), params)
    assert red == request_key("m", ChatRequest.user("q", [images["red_copy"]]), params)  # same bytes elsewhere
    assert red == request_key("m", ChatRequest.user("q", [images["red"].read_bytes()]), params)
    assert red != request_key("m", ChatRequest.user("q", [images["green"]]), params)
    images["red"].write_bytes(png_bytes((0, 0, 255)))  # replaced in place: a different image
    assert red != request_key("m", ChatRequest.user("q", [images["red"]]), params)


def test_key_covers_model_text_order_and_params_but_not_n(images) -> None:
    base = ChatRequest.user("q <image>", [images["red"]])
    key = request_key("m", base, SamplingParams())
    assert key != request_key("other", base, SamplingParams())
    assert key != request_key("m", ChatRequest.user("<image> q", [images["red"]]), SamplingParams())
    assert key != request_key("m", ChatRequest.user("q <image>", [images["red"]], system="s"), SamplingParams())
    for changed in (
        SamplingParams(temperature=1.0),
        SamplingParams(top_p=0.5),
        SamplingParams(max_tokens=8),
        SamplingParams(seed=1),
        SamplingParams(extra=(("top_k", 5),)),
    ):
        assert key != request_key("m", base, changed)
    assert key == request_key("m", base, SamplingParams(n=8))
    assert request_key("m", base, SamplingParams(temperature=0)) == key  # 0 and 0.0 are one setting


def test_key_is_the_documented_payload_and_stable() -> None:
    # Pinned: changing the key payload silently invalidates every user's cache. Bump CACHE_KEY_VERSION instead.
    image = b"\x89PNG\r\n\x1a\nfake"
    request = ChatRequest.user("Which option? <image>", [image], system="sys")
    key = request_key("Qwen/Qwen2.5-VL-7B-Instruct", request, SamplingParams(temperature=1.0, n=4, seed=3))
    payload = (
        '{"messages":[{"content":[{"text":"sys","type":"text"}],"role":"system"},'
        '{"content":[{"text":"Which option? ","type":"text"},{"sha256":"IMAGE","type":"image"}],"role":"user"}],'
        '"model":"Qwen/Qwen2.5-VL-7B-Instruct",'
        '"params":{"extra":{},"max_tokens":1024,"seed":3,"temperature":1.0,"top_p":1.0},"v":1}'
    ).replace("IMAGE", hashlib.sha256(image).hexdigest())
    assert key == hashlib.sha256(payload.encode()).hexdigest()
    assert key == "602b488a9d841e16ba142d8102560ea9c94665a4328df6818303a1cc2a518ba8"


def test_placeholders_place_images_and_must_match(images) -> None:
    request = ChatRequest.user("A <image> then <image>.", [images["red"], images["green"]])
    parts = request.messages[0].content
    assert [type(p).__name__ for p in parts] == ["str", "ImageInput", "str", "ImageInput", "str"]
    assert parts[0] == "A " and parts[2] == " then " and parts[4] == "."
    no_placeholder = ChatRequest.user("describe", [images["red"]]).messages[0].content
    assert isinstance(no_placeholder[0], ImageInput) and no_placeholder[1] == "describe"
    with pytest.raises(InputError, match="2 <image> placeholder"):
        ChatRequest.user("<image> and <image>", [images["red"]])


def test_openai_messages_inline_images_as_data_urls(images) -> None:
    [message] = ChatRequest.user("<image>what?", [images["red"]]).to_openai()
    image, text = message["content"]
    prefix = "data:image/png;base64,"
    assert image["type"] == "image_url" and image["image_url"]["url"].startswith(prefix)
    assert base64.b64decode(image["image_url"]["url"][len(prefix) :]) == images["red"].read_bytes()
    assert text == {"type": "text", "text": "what?"}
    assert ChatRequest.user("plain").to_openai() == [{"role": "user", "content": "plain"}]


def test_unreadable_images_are_input_errors(tmp_path) -> None:
    missing = ChatRequest.user("q", [tmp_path / "nope.png"])
    with pytest.raises(InputError, match=r"cannot read image .*nope\.png"):
        request_key("m", missing, SamplingParams())
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(InputError, match=r"notes\.txt: not a PNG, JPEG"):
        ChatRequest.user("q", [tmp_path / "notes.txt"]).to_openai()


def test_mime_sniffing() -> None:
    assert sniff_mime(png_bytes((1, 2, 3))) == "image/png"
    assert sniff_mime(b"\xff\xd8\xff\xe0rest") == "image/jpeg"
    assert sniff_mime(b"RIFF\x00\x00\x00\x00WEBPVP8 ") == "image/webp"
    assert sniff_mime(b"????", "x.JPG") == "image/jpeg"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"temperature": -1},
        {"temperature": float("nan")},
        {"top_p": 0},
        {"max_tokens": 0},
        {"n": 0},
        {"extra": (("n", 2),)},
    ],
)
def test_sampling_params_are_validated(kwargs) -> None:
    with pytest.raises(ValueError):
        SamplingParams(**kwargs)
