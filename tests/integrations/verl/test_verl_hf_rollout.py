"""The ``hf`` rollout server (verl's token-in/token-out contract over ``transformers`` ``generate``) on a tiny
Qwen2.5-VL, without Ray: batched requests with and without images, weight updates, placeholder checks, and
sampling that does not depend on when or in which order requests arrive."""

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
    val_kwargs = SimpleNamespace(n=1, temperature=0.6, top_p=0.95, top_k=-1)
    config = SimpleNamespace(
        prompt_length=256, response_length=8, n=2, temperature=1.0, top_p=1.0, top_k=-1, val_kwargs=val_kwargs
    )
    return HFServer(config, {"path": str(path), "local_path": str(path)})


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
    params = {"temperature": 0.9, "top_p": 1.0, "top_k": -1, "repetition_penalty": 1.0, "logprobs": True}  # chunks of 1

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


TRAIN = {"temperature": 1.0, "top_p": 1.0, "top_k": -1, "repetition_penalty": 1.0, "logprobs": False}


def test_chunks_are_a_grpo_group_in_training_and_one_request_otherwise(server: object) -> None:
    from vlm_capcurriculum.integrations.verl.hf_rollout import chunk_size

    config = server.config  # type: ignore[attr-defined]
    validation = {**TRAIN, "temperature": 0.6, "top_p": 0.95}
    assert chunk_size(config, TRAIN, replicas=1) == 2
    assert chunk_size(config, validation, replicas=1) == 1
    assert chunk_size(config, {**TRAIN, "temperature": 0}, replicas=1) == 1  # greedy (REMAX baseline)
    assert chunk_size(config, TRAIN, replicas=2) == 1  # verl's router may split a group between replicas
    same = SimpleNamespace(**{**vars(config), "val_kwargs": SimpleNamespace(n=3, temperature=1.0, top_p=1.0, top_k=-1)})
    assert chunk_size(same, TRAIN, replicas=1) == 1  # gcd(2, 3): divides both batch sizes


def test_responses_do_not_depend_on_arrival_order_or_timing(server: object) -> None:
    """A step's requests (3 prompts x a GRPO group of 2, the second prompt twice with different images) sent at
    once, then one by one in reverse order with pauses (as after a resume under another load): every prompt gets
    the same responses (identical requests may swap theirs: nothing tells them apart)."""
    text = _prompt(server, "what is 2+2?")[0]
    image_ids, red = _prompt(server, "what colour is it?", images=1)
    from PIL import Image

    blue = [Image.new("RGB", (72, 72), color=(0, 0, 255))]
    requests = [(text, None), (image_ids, red), (image_ids, blue)] * 2  # every content twice: a group of 2

    def send(ids: list[int], images: list | None) -> object:
        return server.generate(request_id="det-0", prompt_ids=ids, sampling_params=TRAIN, image_data=images)  # type: ignore[attr-defined]

    def grouped(outputs: list) -> list:
        return [sorted([outputs[i].token_ids, outputs[i + 3].token_ids]) for i in range(3)]

    async def together() -> list:
        return list(await asyncio.gather(*(send(ids, images) for ids, images in requests)))

    async def staggered() -> list:
        tasks: list = [None] * len(requests)
        for position in reversed(range(len(requests))):
            tasks[position] = asyncio.create_task(send(*requests[position]))
            await asyncio.sleep(0.12)  # longer than the server's batching wait: arrivals split across batches
        return [await task for task in tasks]

    weights = {name: tensor.clone() for name, tensor in server.model.state_dict().items()}  # type: ignore[attr-defined]
    asyncio.run(server.update_weights(weights, global_steps=5))  # type: ignore[attr-defined]
    first = grouped(asyncio.run(together()))
    asyncio.run(server.update_weights(weights, global_steps=5))  # type: ignore[attr-defined]  # the step, replayed
    assert grouped(asyncio.run(staggered())) == first
    assert any(pair[0] != pair[1] for pair in first)  # a group's samples differ
    assert first[1] != first[2]  # same prompt ids, other image: another content
