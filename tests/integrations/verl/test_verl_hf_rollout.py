"""The ``hf`` rollout server (verl's token-in/token-out contract over ``transformers`` ``generate``) on a tiny
Qwen2.5-VL, without Ray: batched requests with and without images, weight updates, placeholder checks."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

pytest.importorskip("verl")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> object:
    from vlm_capcurriculum.integrations.verl.hf_rollout import HFServer
    from vlm_capcurriculum.models import save_tiny

    path = save_tiny("qwen2_5_vl", tmp_path_factory.mktemp("tiny") / "model")
    config = SimpleNamespace(prompt_length=256, response_length=8)
    return HFServer(config, {"path": str(path), "local_path": str(path)}, replica_rank=0)


def _prompt(server: object, text: str, images: int = 0) -> list[int]:
    content = [{"type": "image"}] * images + [{"type": "text", "text": text}]
    messages = [{"role": "user", "content": content}]
    processor = server.processor  # type: ignore[attr-defined]
    rendered = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    from PIL import Image

    pictures = [Image.new("RGB", (72, 72), color=(20 * i, 80, 160)) for i in range(images)] or None
    return processor(text=[rendered], images=pictures, return_tensors="pt")["input_ids"][0].tolist(), pictures


def test_batched_generation_with_and_without_images(server: object) -> None:
    text_ids, _ = _prompt(server, "what is 2+2?")
    image_ids, pictures = _prompt(server, "what colour is it?", images=1)
    params = {"temperature": 1.0, "top_p": 1.0, "top_k": -1, "repetition_penalty": 1.0, "logprobs": True}

    async def run() -> list:
        calls = [
            server.generate(request_id="a", prompt_ids=text_ids, sampling_params=params),  # type: ignore[attr-defined]
            server.generate(request_id="b", prompt_ids=image_ids, sampling_params=params, image_data=pictures),  # type: ignore[attr-defined]
            server.generate(request_id="c", prompt_ids=text_ids[:-3], sampling_params=params),  # type: ignore[attr-defined]
        ]
        return await asyncio.gather(*calls)

    outputs = asyncio.run(run())
    for output in outputs:
        assert 1 <= len(output.token_ids) <= 8
        assert output.log_probs is not None and len(output.log_probs) == len(output.token_ids)
        assert all(value <= 0.0 for value in output.log_probs)


def test_placeholder_mismatch_is_refused(server: object) -> None:
    image_ids, pictures = _prompt(server, "what colour is it?", images=1)
    with pytest.raises(ValueError, match="image placeholder"):
        asyncio.run(
            server.generate(  # type: ignore[attr-defined]
                request_id="x", prompt_ids=image_ids, sampling_params={"temperature": 0}, image_data=pictures * 2
            )
        )


def test_update_weights_loads_every_tensor_and_refuses_unknown_names(server: object, tmp_path: Path) -> None:
    from vlm_capcurriculum.models import build_tiny

    other, _ = build_tiny("qwen2_5_vl", seed=7)
    state = {name: tensor.clone() for name, tensor in other.state_dict().items()}
    asyncio.run(server.update_weights(state, global_steps=3))  # type: ignore[attr-defined]
    loaded = server.model.state_dict()  # type: ignore[attr-defined]
    assert all(torch.equal(loaded[name], tensor) for name, tensor in state.items())
    with pytest.raises(ValueError, match="does not have"):
        asyncio.run(server.update_weights({"no.such.weight": torch.zeros(1)}))  # type: ignore[attr-defined]
