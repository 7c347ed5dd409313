"""The ``hf`` rollout for verl 0.9.1 on a CPU (``actor_rollout_ref.rollout.name=hf``): ``transformers`` ``generate``.

verl has no CPU rollout (vLLM, SGLang and TRT-LLM need GPUs; its own ``hf_rollout.py`` is not instantiable in 0.9.1).
:class:`HFReplica` (``RolloutReplicaRegistry``) starts one :class:`HFServer` Ray actor per replica serving the agent
loop's token-in/token-out ``generate``; ``HFServerAdapter`` (the private rollout-class registry) ships the FSDP weights
from the actor workers to it. Sampling is reproducible: no request names its sample, so identical requests are
counted and generated in chunks of ``rollout.n``, each seeded from the weights' step, its content and its number
(``docs/integrations/verl.md``, "The CPU device").
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import time
from collections.abc import Iterable
from typing import Any

import ray
import torch

from . import internvl

logger = logging.getLogger(__name__)


#: How long the first queued request waits for the step's others to arrive.
BATCH_WAIT_S = 0.05
#: A chunk of identical requests still incomplete this long after the last arrival is generated as it is, with a
#: warning (a request of it failed before reaching the server; verl then fails the step anyway): never hang.
STALL_S = 60.0


def server_name(replica_rank: int) -> str:
    return f"vlmcc_hf_server_{replica_rank}"


def chunk_size(config: Any, sampling_params: dict[str, Any], replicas: int) -> int:
    """Identical requests per chunk: a GRPO group (``rollout.n``) for training requests; one for validation
    (``val_kwargs.n`` is usually 1), anything else, and with several replicas (verl's router may split a group).
    Training and validation requests are told apart by their sampling parameters; where both match, the chunk
    divides both group sizes."""
    if replicas > 1:
        return 1

    def matches(source: Any) -> bool:
        wanted = (float(source.temperature), float(source.top_p), int(source.top_k))
        given = sampling_params.get("temperature"), sampling_params.get("top_p"), sampling_params.get("top_k")
        return given[0] is not None and wanted == (float(given[0]), float(given[1] or 1.0), int(given[2] or -1))

    val_kwargs = getattr(config, "val_kwargs", None)
    train = int(config.n) if matches(config) else None
    val = int(val_kwargs.n) if val_kwargs is not None and matches(val_kwargs) else None
    if train and val:
        return math.gcd(train, val)
    return train or 1


class _Request:
    """One queued ``generate`` call; requests with equal ``digest`` (prompt, images, sampling parameters, pixel
    bounds) are identical, ``occurrence`` counts them since the last weight update."""

    def __init__(self, prompt_ids: list[int], sampling_params: dict[str, Any], image_data: Any, mm_kwargs: dict):
        self.prompt_ids = prompt_ids
        self.sampling_params = sampling_params
        self.image_data = list(image_data) if image_data else None
        self.mm_kwargs = mm_kwargs
        key = repr((sorted(sampling_params.items()), sorted(mm_kwargs.items())))
        digest = hashlib.sha256(repr((key, prompt_ids)).encode())
        for image in self.image_data or []:
            tobytes = getattr(image, "tobytes", None)
            digest.update(repr((getattr(image, "size", None), getattr(image, "mode", None))).encode())
            digest.update(tobytes() if tobytes is not None else repr(image).encode())
        self.digest = digest.hexdigest()
        self.occurrence = 0
        self.future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()


class HFServer:
    """A Ray actor holding a ``transformers`` model that serves verl's token-in/token-out ``generate``."""

    def __init__(self, config: Any, model_config: Any, replicas: int = 1) -> None:
        from transformers import AutoModelForImageTextToText, AutoProcessor

        import vlm_capcurriculum.models  # noqa: F401  (our image-only processors)

        self.config = config
        self.replicas = replicas
        path = model_config.get("local_path") or model_config.path
        torch.set_num_threads(1)
        self.model = AutoModelForImageTextToText.from_pretrained(path, dtype=torch.float32, attn_implementation="sdpa")
        self.model.eval()
        self.processor = AutoProcessor.from_pretrained(path)
        self.image_token_id = getattr(self.model.config, "image_token_id", None)
        self.internvl = internvl.is_internvl_processor(self.processor)  # issue 15
        # A response must not contain multimodal placeholders: verl recomputes mrope positions over prompt +
        # response and would look for an image that does not exist (a tiny model may sample any token).
        self.suppressed = [
            token
            for name in ("image_token_id", "video_token_id", "vision_start_token_id")
            if (token := getattr(self.model.config, name, None)) is not None
        ]
        eos = self.model.generation_config.eos_token_id
        self.eos_token_ids = list(eos) if isinstance(eos, list) else [eos] if eos is not None else []
        if self.processor.tokenizer.eos_token_id not in [*self.eos_token_ids, None]:
            self.eos_token_ids.append(self.processor.tokenizer.eos_token_id)
        self.pad_token_id = self.processor.tokenizer.pad_token_id
        self.lock = asyncio.Lock()  # one generate or weight update at a time
        self.queue: list[_Request] = []
        self.last_arrival = time.monotonic()
        self.occurrences: dict[str, int] = {}
        self.server_task: asyncio.Task[None] | None = None
        self.global_steps: int | None = None

    def _pixels(self, images: list[Any], mm_kwargs: dict[str, Any]) -> dict[str, Any]:
        if self.internvl:  # issue 15: InternVL tiles (its processor's crop_to_patches), see internvl.py
            return internvl.rollout_image_inputs(self.processor, images, mm_kwargs)[0]
        return dict(self.processor.image_processor(images=images, return_tensors="pt", **mm_kwargs))

    def _check_placeholders(self, prompt_ids: list[int], images: list[Any] | None, mm_kwargs: dict[str, Any]) -> None:
        """The prompt's image placeholder count must match what its images make (same processor bounds)."""
        if not images or self.image_token_id is None:
            return
        if self.internvl:  # issue 15: tiles x tokens per tile
            expected = internvl.rollout_image_inputs(self.processor, images, mm_kwargs)[1]
        else:
            grid = self._pixels(images, mm_kwargs).get("image_grid_thw")
            if grid is None:
                return
            merge = getattr(self.processor.image_processor, "merge_size", 1)
            expected = int(grid.prod(dim=-1).sum()) // (merge * merge)
        found = sum(1 for token in prompt_ids if token == self.image_token_id)
        if expected != found:
            raise ValueError(
                f"hf rollout: the prompt holds {found} image placeholder tokens but its {len(images)} image(s) make "
                f"{expected} features (data.mm_processor_kwargs differ between the agent loop and the rollout?)"
            )

    def _generate_batch(self, requests: list[_Request], chunk: int) -> list[tuple[list[int], list[float] | None, str]]:
        """One ``generate`` over identical requests (left-padded if not), seeded from the weights' step, the
        content and the chunk number: the same chunk gets the same responses in every run."""
        seed = hashlib.sha256(repr((self.global_steps, requests[0].digest, chunk)).encode()).digest()
        torch.manual_seed(int.from_bytes(seed[:8], "little"))
        params = dict(requests[0].sampling_params)
        longest = max(len(request.prompt_ids) for request in requests)
        limit = self.config.prompt_length + self.config.response_length - longest
        max_tokens = params.pop("max_tokens", params.pop("max_new_tokens", self.config.response_length))
        max_tokens = max(1, min(int(max_tokens), self.config.response_length, limit))
        temperature = float(params.get("temperature", 1.0) or 0.0)
        top_k = int(params.get("top_k", -1) or -1)
        pad = self.pad_token_id if self.pad_token_id is not None else self.eos_token_ids[0]
        generation: dict[str, Any] = {
            "max_new_tokens": max_tokens,
            "do_sample": temperature > 0,
            "eos_token_id": self.eos_token_ids,
            "pad_token_id": pad,
            "output_scores": bool(params.get("logprobs")),
            "return_dict_in_generate": True,
            "suppress_tokens": self.suppressed or None,
        }
        if temperature > 0:
            generation.update(temperature=temperature, top_p=float(params.get("top_p", 1.0)), top_k=max(top_k, 0))
        input_ids = torch.full((len(requests), longest), pad, dtype=torch.long)
        attention_mask = torch.zeros((len(requests), longest), dtype=torch.long)
        for row, request in enumerate(requests):
            length = len(request.prompt_ids)
            input_ids[row, longest - length :] = torch.tensor(request.prompt_ids, dtype=torch.long)
            attention_mask[row, longest - length :] = 1
        inputs: dict[str, Any] = {"input_ids": input_ids, "attention_mask": attention_mask}
        images = [image for request in requests for image in (request.image_data or [])]
        if images:
            inputs.update(self._pixels(images, requests[0].mm_kwargs))
        with torch.no_grad():
            out = self.model.generate(**inputs, **generation)
        results = []
        for row in range(len(requests)):
            tokens = out.sequences[row, longest:].tolist()
            stop = "length"
            for position, token in enumerate(tokens):
                if token in self.eos_token_ids:
                    tokens, stop = tokens[: position + 1], "completed"
                    break
            log_probs = None
            if params.get("logprobs") and out.scores:
                log_probs = [
                    float(torch.log_softmax(score[row].float() / max(temperature, 1e-6), dim=-1)[token])
                    for score, token in zip(out.scores, tokens, strict=False)
                ]
            results.append((tokens, log_probs, stop))
        return results

    def _next_batch(self) -> tuple[list[_Request], int]:
        """The next chunk to generate: a complete one, else (stalled) an incomplete one; with its number."""
        chunks: dict[tuple[str, int], list[_Request]] = {}
        for request in self.queue:
            size = chunk_size(self.config, request.sampling_params, self.replicas)
            chunks.setdefault((request.digest, request.occurrence // size), []).append(request)
        for (_, number), members in sorted(chunks.items(), key=lambda item: item[0]):
            if len(members) == chunk_size(self.config, members[0].sampling_params, self.replicas):
                return members, number
        if chunks and time.monotonic() - self.last_arrival > STALL_S:
            (digest, number), members = min(chunks.items(), key=lambda item: item[0])
            logger.warning("hf rollout: %d identical request(s) of %s wait for the rest of their group after %.0f s; "
                           "generated as they are (not reproducible)", len(members), digest[:12], STALL_S)  # fmt: skip
            return members, number
        return [], 0

    async def _serve(self) -> None:
        """Serve the queued requests chunk by chunk (a step's requests arrive together)."""
        while self.queue:
            await asyncio.sleep(BATCH_WAIT_S)  # let the step's other requests arrive
            batch, number = self._next_batch()
            if not batch:
                continue
            self.queue = [request for request in self.queue if all(request is not taken for taken in batch)]
            async with self.lock:
                try:
                    results = await asyncio.to_thread(self._generate_batch, batch, number)
                except Exception as error:  # each caller sees the failure (verl logs it per prompt)
                    for request in batch:
                        request.future.set_exception(error)
                    continue
            for request, result in zip(batch, results, strict=True):
                request.future.set_result(result)

    async def generate(
        self,
        request_id: str,
        prompt_ids: list[int],
        sampling_params: dict[str, Any],
        image_data: list[Any] | None = None,
        video_data: Any = None,
        mm_processor_kwargs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> Any:
        from verl.workers.rollout.replica import TokenOutput

        if video_data:
            raise ValueError("hf rollout: video inputs are not supported")
        mm_kwargs = dict(mm_processor_kwargs or {})
        self._check_placeholders(list(prompt_ids), image_data, mm_kwargs)
        request = _Request(list(prompt_ids), dict(sampling_params), image_data, mm_kwargs)
        request.occurrence = self.occurrences.get(request.digest, 0)
        self.occurrences[request.digest] = request.occurrence + 1
        self.queue.append(request)
        self.last_arrival = time.monotonic()
        if self.server_task is None or self.server_task.done():
            self.server_task = asyncio.create_task(self._serve())
        tokens, log_probs, stop = await request.future
        return TokenOutput(
            token_ids=tokens,
            log_probs=log_probs,
            stop_reason="completed" if stop == "completed" else None,
            extra_fields={"global_steps": self.global_steps},
        )

    async def update_weights(self, state_dict: dict[str, torch.Tensor], global_steps: int | None = None) -> int:
        """Load the policy's full weights (HF names); returns the number of tensors loaded."""
        async with self.lock:
            missing, unexpected = self.model.load_state_dict(state_dict, strict=False)
            if unexpected:
                raise ValueError(f"hf rollout: weights the model does not have: {sorted(unexpected)[:5]}")
            output = self.model.get_output_embeddings()
            shared = output is not None and output.weight is self.model.get_input_embeddings().weight
            tied = {"lm_head.weight"} if shared else set()
            if set(missing) - tied:
                raise ValueError(f"hf rollout: weights missing from the update: {sorted(set(missing) - tied)[:5]}")
            if global_steps is not None:  # verl's validation re-pushes the same weights without a step
                self.global_steps = global_steps
            self.occurrences.clear()
        return len(state_dict)


def _replica_class() -> type:
    from verl.workers.rollout.replica import RolloutReplica

    class HFReplica(RolloutReplica):
        """One :class:`HFServer` per replica, created in the hybrid mode (verl calls ``init_hybrid`` for every
        rollout but ``trtllm``), which tells the replica count."""

        replicas = 1

        async def init_hybrid(self, worker_group: Any) -> None:
            self.replicas = max(1, len(worker_group.workers) // self.world_size)
            await super().init_hybrid(worker_group)

        async def launch_servers(self) -> None:
            name = server_name(self.replica_rank)
            server = (
                ray.remote(HFServer)
                .options(name=name, num_cpus=0, max_concurrency=self.max_concurrency)
                .remote(
                    config=self.config,
                    model_config=self.model_config,
                    replicas=self.replicas,
                )
            )
            await server.__ray_ready__.remote()  # the model is loaded
            self.servers = []  # what the replica wakes, puts to sleep, aborts: a CPU model holds no memory to free
            self._server_handle = server
            self._server_address = name

        def rollout_worker_use_gpu(self) -> bool:
            return False

    return HFReplica


def _adapter_class() -> type:
    from verl.workers.rollout.base import BaseRollout

    class HFServerAdapter(BaseRollout):
        """Inside each actor worker: receives verl's weight generator and ships the weights to the server."""

        def __init__(self, config: Any, model_config: Any, device_mesh: Any) -> None:
            super().__init__(config, model_config, device_mesh)
            self.rank = torch.distributed.get_rank() if torch.distributed.is_initialized() else 0
            infer = self.config.tensor_model_parallel_size * self.config.data_parallel_size
            infer *= self.config.pipeline_model_parallel_size
            self.replica_rank = self.rank // infer
            self.is_leader = self.rank % infer == 0
            self._server: Any = None

        async def resume(self, tags: list[str]) -> None:
            return None

        async def release(self) -> None:
            return None

        async def update_weights(self, weights: Iterable[tuple[str, torch.Tensor]], **kwargs: Any) -> None:
            # Every rank iterates: each full_tensor() is a collective over the FSDP group.
            state = {name: tensor.detach().to("cpu", torch.float32).clone() for name, tensor in weights}
            if not self.is_leader:
                return
            if self._server is None:
                self._server = ray.get_actor(server_name(self.replica_rank))
            await self._server.update_weights.remote(state, kwargs.get("global_steps"))

    return HFServerAdapter


def __getattr__(name: str) -> Any:  # verl's rollout registry imports the adapter class by its dotted path
    if name == "HFServerAdapter":
        return _adapter_class()
    raise AttributeError(name)


def register() -> None:
    """Register the ``hf`` rollout with verl's replica registry and rollout-class registry."""
    from verl.workers.rollout import base
    from verl.workers.rollout.replica import RolloutReplicaRegistry

    RolloutReplicaRegistry.register("hf", _replica_class)
    base._ROLLOUT_REGISTRY[("hf", "async")] = f"{__name__}.HFServerAdapter"
