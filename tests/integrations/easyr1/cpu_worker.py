"""The CPU execution of our EasyR1 integration (lane only): EasyR1's real ``FSDPWorker`` on gloo and CPU tensors,
with a ``transformers`` rollout in place of vLLM.

EasyR1 @ b44b311 has no device or rollout extension point: CUDA is literal in its worker and utilities, and
``FSDPWorker._build_rollout`` always builds ``vLLMRollout``. Two things make it run on a CPU:

* :func:`apply_cpu_patches`: process-local replacements of EasyR1's CUDA literals, one per entry of
  :data:`CPU_PATCHES` (the one list to review on an EasyR1 upgrade). They replace *names inside EasyR1's
  modules* (a module's ``torch``, ``init_device_mesh``, auto-model classes), never EasyR1's files or torch itself,
  and only in the process that calls them (each Ray worker calls it at start, :func:`setup_process`).
* :class:`CPUCurriculumFSDPWorker`: our ``CurriculumFSDPWorker`` whose process group is gloo and whose rollout
  is :class:`TransformersRollout` (EasyR1's ``BaseRollout`` contract: the same output keys, shapes, masks and mrope
  position ids as ``vLLMRollout``) behind :class:`TransformersShardingManager` (EasyR1's load/offload alternation
  and weight sync: the rollout model gets the actor's full state dict at every ``prepare_rollout_engine``).

It stays in the lane, not in the package: ``verl.workers.fsdp_workers`` imports vLLM at module level, so a CPU
machine can import the worker only with the lane's vLLM placeholder (``lane_placeholders.py``).

The run itself needs from the config: ``worker.actor.padding_free=false`` (flash-attn varlen),
``dynamic_batching=false``, ``use_torch_compile=false``, ``worker.rollout.tensor_parallel_size=1`` and
``trainer.n_gpus_per_node`` logical GPUs, which the lane's Ray declares (``ray.init(num_gpus=...)``: EasyR1's
resource pool always asks for GPUs; CPU torch ignores ``CUDA_VISIBLE_DEVICES``).
"""

from __future__ import annotations

import hashlib
import importlib
import os
import signal
import types
from typing import Any

import lane_placeholders

lane_placeholders.install("vllm", "qwen_vl_utils")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.distributed as dist  # noqa: E402
from tensordict import TensorDict  # noqa: E402
from torch.distributed.checkpoint.state_dict import get_model_state_dict  # noqa: E402
from verl.protocol import DataProto  # noqa: E402
from verl.utils import torch_functional as VF  # noqa: E402
from verl.utils.dataset import process_image  # noqa: E402
from verl.workers.rollout.base import BaseRollout  # noqa: E402

from vlm_capcurriculum.integrations.easyr1 import internvl  # noqa: E402
from vlm_capcurriculum.integrations.easyr1.worker import CurriculumFSDPWorker  # noqa: E402
from vlm_capcurriculum.integrations.easyr1.worker_mixin import CurriculumWorkerMixin  # noqa: E402

CPU = torch.device("cpu")

#: EasyR1's CUDA literals the CPU execution replaces *inside EasyR1's modules*, in the worker processes only.
#: ``<module>.torch`` is replaced by a view of torch whose ``torch.cuda`` answers for the CPU.
CPU_PATCHES: dict[str, str] = {
    "verl.single_controller.base.worker.torch": "Worker.__init__ calls torch.cuda.get_device_name() (its AMD check)",
    "verl.workers.fsdp_workers.torch": "FSDP(device_id=torch.cuda.current_device()), data.to(torch.cuda.current_device()), "
    "torch.cuda.max_memory_* metrics in update_actor",
    "verl.workers.fsdp_workers.init_device_mesh": 'init_device_mesh("cuda", ...) for the FSDP and Ulysses meshes',
    "verl.workers.fsdp_workers.AutoModelForImageTextToText": 'from_pretrained(attn_implementation="flash_attention_2", '
    'device_map="cuda") in _build_model_optimizer: sdpa and "cpu" instead',
    "verl.workers.fsdp_workers.AutoModelForCausalLM": "the same, for text-only models",
    "verl.utils.model_utils.torch": "print_gpu_memory_usage calls torch.cuda.mem_get_info()",
    "verl.utils.flops_counter.torch": "FlopsCounter calls torch.cuda.get_device_name()",
    "verl.utils.checkpoint.checkpoint_manager.torch": "the checkpoint's RNG state: torch.cuda.get/set_rng_state",
}


# --- the patches --------------------------------------------------------------------------------------------------


class _CudaOnCPU:
    """``torch.cuda`` as EasyR1's modules see it on a CPU: the device is the CPU, memory counters read 0, the RNG
    state is the CPU generator's (so EasyR1's checkpoint saves and restores it), cache/synchronise do nothing."""

    @staticmethod
    def current_device() -> torch.device:
        return CPU

    @staticmethod
    def get_device_name(*_: Any) -> str:
        return "cpu"

    @staticmethod
    def is_available() -> bool:
        return False

    @staticmethod
    def empty_cache() -> None:
        return None

    @staticmethod
    def synchronize(*_: Any) -> None:
        return None

    @staticmethod
    def max_memory_allocated(*_: Any) -> int:
        return 0

    @staticmethod
    def max_memory_reserved(*_: Any) -> int:
        return 0

    @staticmethod
    def memory_allocated(*_: Any) -> int:
        return 0

    @staticmethod
    def memory_reserved(*_: Any) -> int:
        return 0

    @staticmethod
    def mem_get_info(*_: Any) -> tuple[int, int]:
        return (0, 0)

    get_rng_state = staticmethod(torch.get_rng_state)
    set_rng_state = staticmethod(torch.set_rng_state)
    manual_seed = staticmethod(torch.manual_seed)

    def __getattr__(self, name: str) -> Any:
        return getattr(torch.cuda, name)


class _TorchOnCPU(types.ModuleType):
    """The ``torch`` module with :class:`_CudaOnCPU` as ``torch.cuda``; every other name is torch's own."""

    cuda = _CudaOnCPU()

    def __getattr__(self, name: str) -> Any:
        return getattr(torch, name)


TORCH_ON_CPU = _TorchOnCPU("torch")


def _cpu_device_mesh(device_type: str, *args: Any, **kwargs: Any) -> Any:
    from torch.distributed.device_mesh import init_device_mesh

    return init_device_mesh("cpu" if device_type == "cuda" else device_type, *args, **kwargs)


def _cpu_model_kwargs(kwargs: dict[str, Any]) -> dict[str, Any]:
    if kwargs.get("attn_implementation") == "flash_attention_2":
        kwargs["attn_implementation"] = "sdpa"
    if kwargs.get("device_map") == "cuda":
        kwargs["device_map"] = "cpu"
    return kwargs


def _cpu_auto_class(auto_class: type) -> type:
    """A subclass of a transformers auto class (same model mapping) whose loaders take CPU attention/devices."""

    class CPUAutoClass(auto_class):  # type: ignore[misc, valid-type]
        @classmethod
        def from_pretrained(cls, *args: Any, **kwargs: Any) -> Any:
            return auto_class.from_pretrained(*args, **_cpu_model_kwargs(kwargs))

        @classmethod
        def from_config(cls, *args: Any, **kwargs: Any) -> Any:
            return auto_class.from_config(*args, **_cpu_model_kwargs(kwargs))

    CPUAutoClass.__name__ = CPUAutoClass.__qualname__ = f"CPU{auto_class.__name__}"
    return CPUAutoClass


def _replacement(target: str, original: Any) -> Any:
    name = target.rsplit(".", 1)[1]
    if name == "torch":
        return TORCH_ON_CPU
    if name == "init_device_mesh":
        return _cpu_device_mesh
    if name.startswith("AutoModel"):
        return _cpu_auto_class(original)
    raise KeyError(f"no CPU replacement for {target}")


def apply_cpu_patches() -> list[str]:
    """Install every replacement of :data:`CPU_PATCHES` in this process; returns the targets patched."""
    patched = []
    for target in CPU_PATCHES:
        module_name, name = target.rsplit(".", 1)
        module = importlib.import_module(module_name)
        original = getattr(module, name)  # fails loudly when EasyR1 renamed it
        if getattr(original, "__vlmcc_cpu__", False):
            continue
        replacement = _replacement(target, original)
        if not isinstance(replacement, types.ModuleType):
            replacement.__vlmcc_cpu__ = True
        else:
            object.__setattr__(replacement, "__vlmcc_cpu__", True)
        setattr(module, name, replacement)
        patched.append(target)
    return patched


# --- the rollout ---------------------------------------------------------------------------------------------------


def _sample_seed(seed: int, prompt_ids: torch.Tensor) -> int:
    """Sampling is seeded by the rollout seed and the prompt: a resumed run draws the same responses again."""
    digest = hashlib.sha256(str(seed).encode() + prompt_ids.numpy().astype(np.int64).tobytes()).digest()
    return int.from_bytes(digest[:8], "little") % (2**63)


class TransformersRollout(BaseRollout):
    """``vLLMRollout``'s contract with ``transformers.generate``: per prompt ``n`` responses padded to
    ``response_length``, the image token banned (vLLM's logit bias), sampling settings from the config overridden
    by the batch's ``meta_info`` (validation's ``val_override_config``), mrope position ids continued."""

    def __init__(self, model: Any, config: Any, tokenizer: Any, processor: Any) -> None:
        self.model = model.eval()
        self.config = config
        self.tokenizer = tokenizer
        self.processor = processor
        self.pad_token_id = tokenizer.pad_token_id
        image_token = getattr(processor, "image_token", None)
        self.banned = [tokenizer.convert_tokens_to_ids(image_token)] if image_token is not None else []

    def _settings(self, meta_info: dict[str, Any]) -> dict[str, Any]:
        settings = {key: getattr(self.config, key) for key in ("n", "temperature", "top_p", "top_k", "seed")}
        settings["max_tokens"] = self.config.response_length
        settings.update({key: meta_info[key] for key in settings if key in meta_info})
        return settings

    def _vision_inputs(self, multi_modal_data: Any, meta_info: dict[str, Any]) -> dict[str, torch.Tensor]:
        images = [
            process_image(image, meta_info["min_pixels"], meta_info["max_pixels"])
            for image in (multi_modal_data or {}).get("images", [])
        ]
        if not images:
            return {}
        if internvl.is_internvl_processor(self.processor):  # vLLM tiles InternVL images with the processor's settings
            return dict(internvl.tiling_processor(self.processor).image_processor(images=images, return_tensors="pt"))
        return dict(self.processor.image_processor(images=images, return_tensors="pt"))

    @torch.no_grad()
    def generate_sequences(self, prompts: DataProto) -> DataProto:
        input_ids = prompts.batch["input_ids"]
        attention_mask = prompts.batch["attention_mask"]
        position_ids = prompts.batch["position_ids"]
        eos_token_id = prompts.meta_info["eos_token_id"]
        non_tensor = prompts.non_tensor_batch
        non_tensor.pop("raw_prompt_ids")  # vLLM's input; the left-padded input_ids hold the expanded image tokens
        multi_modal = non_tensor.pop("multi_modal_data", None)
        settings = self._settings(prompts.meta_info)
        n, temperature = int(settings["n"]), float(settings["temperature"])
        sampling: dict[str, Any] = {"do_sample": temperature > 0}
        if temperature > 0:
            top_k = int(settings["top_k"])
            sampling.update(temperature=temperature, top_p=float(settings["top_p"]), top_k=top_k if top_k > 0 else 0)
        responses = []
        for row in range(input_ids.size(0)):
            prompt = input_ids[row][attention_mask[row].bool()].unsqueeze(0)
            vision = self._vision_inputs(None if multi_modal is None else multi_modal[row], prompts.meta_info)
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(_sample_seed(int(settings["seed"]), prompt))
                out = self.model.generate(
                    input_ids=prompt,
                    attention_mask=torch.ones_like(prompt),
                    **vision,
                    max_new_tokens=int(settings["max_tokens"]),
                    num_return_sequences=n,
                    eos_token_id=eos_token_id,
                    pad_token_id=self.pad_token_id,
                    suppress_tokens=self.banned or None,
                    **sampling,
                )
            responses.extend(out[:, prompt.size(1) :].tolist())
        response_ids = VF.pad_2d_list_to_length(responses, self.pad_token_id, max_length=self.config.response_length)
        if n > 1:
            input_ids = input_ids.repeat_interleave(n, dim=0)
            attention_mask = attention_mask.repeat_interleave(n, dim=0)
            position_ids = position_ids.repeat_interleave(n, dim=0)
            if multi_modal is not None:
                multi_modal = np.repeat(multi_modal, n, axis=0)
        batch_size, length = input_ids.size(0), response_ids.size(1)
        offsets = torch.arange(1, length + 1).view(1, -1).expand(batch_size, -1)
        if position_ids.ndim == 3:  # Qwen mrope: (batch, rope dims, length); text continues on every dim
            offsets = offsets.view(batch_size, 1, -1).expand(batch_size, position_ids.size(1), -1)
        response_mask = VF.get_response_mask(
            response_ids=response_ids, eos_token_id=eos_token_id, dtype=attention_mask.dtype
        )
        batch = TensorDict(
            {
                "prompts": input_ids,
                "responses": response_ids,
                "input_ids": torch.cat([input_ids, response_ids], dim=-1),
                "attention_mask": torch.cat([attention_mask, response_mask], dim=-1),
                "response_mask": response_mask,
                "position_ids": torch.cat([position_ids, position_ids[..., -1:] + offsets], dim=-1),
            },
            batch_size=batch_size,
        )
        out_non_tensor = {} if multi_modal is None else {"multi_modal_data": multi_modal}
        return DataProto(batch=batch, non_tensor_batch=out_non_tensor, meta_info=prompts.meta_info)


class TransformersShardingManager:
    """``FSDPVLLMShardingManager``'s contract: load and offload strictly alternate, loading syncs the actor's
    current weights into the rollout model, offloading puts the actor back in train mode; one rollout rank per
    data-parallel rank (tensor parallel size 1), so pre/postprocessing pass data through."""

    freed_bytes = 0

    def __init__(self, module: Any, rollout: TransformersRollout) -> None:
        self.module = module
        self.rollout = rollout
        self.loaded = False
        self.syncs = 0

    def load_vllm_and_sync_weights(self) -> None:
        assert self.loaded is False, "the rollout engine has already been loaded"
        self.loaded = True
        state = {name: tensor.full_tensor() if hasattr(tensor, "full_tensor") else tensor
                 for name, tensor in get_model_state_dict(self.module).items()}  # fmt: skip
        self.rollout.model.load_state_dict(state, strict=True)
        self.syncs += 1

    def offload_vllm(self) -> None:
        assert self.loaded is True, "the rollout engine has not been loaded"
        self.loaded = False
        self.module.train()

    def preprocess_data(self, data: DataProto) -> DataProto:
        return data

    def postprocess_data(self, data: DataProto) -> DataProto:
        return data


# --- the worker ----------------------------------------------------------------------------------------------------


class CPUWorkerMixin(CurriculumWorkerMixin):  # type: ignore[misc, valid-type]
    """What makes ``CurriculumFSDPWorker`` run on a CPU: a gloo group (``FSDPWorker.__init__`` only creates its
    NCCL group when none exists) and the transformers rollout. A mixin first among the bases, for the reason
    worker_mixin.py gives (EasyR1's ``WorkerDict`` subclasses the first base and calls ``__init__()`` bare)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        apply_cpu_patches()
        if (args or kwargs) and not dist.is_initialized():  # the worker itself, not EasyR1's WorkerDict shell
            dist.init_process_group(backend="gloo")
        super().__init__(*args, **kwargs)

    def _build_rollout(self) -> None:
        from transformers import AutoModelForImageTextToText

        config = self.config.rollout
        if config.tensor_parallel_size != 1:
            raise ValueError("the CPU rollout has no tensor parallelism: set worker.rollout.tensor_parallel_size=1")
        model = AutoModelForImageTextToText.from_pretrained(
            self.config.actor.model.model_path, torch_dtype=torch.float32, attn_implementation="sdpa"
        )
        self.rollout = TransformersRollout(model, config, self.tokenizer, self.processor)
        self.rollout_sharding_manager = TransformersShardingManager(self.fsdp_module, self.rollout)


class CPUCurriculumFSDPWorker(CPUWorkerMixin, CurriculumFSDPWorker):  # type: ignore[misc, valid-type]
    """``CurriculumFSDPWorker`` on a CPU."""


# --- process set-up ------------------------------------------------------------------------------------------------


def setup_process() -> None:
    """Ray's ``worker_process_setup_hook`` in the lane: every Ray worker process gets the placeholders, the
    lane's processor class, the CPU patches, and our runner builds the CPU worker."""
    import easyr1_lane

    from vlm_capcurriculum.integrations.easyr1 import runner

    easyr1_lane.register_processor()
    apply_cpu_patches()
    runner.CurriculumFSDPWorker = CPUCurriculumFSDPWorker
    kill_at = os.environ.get("VLMCC_LANE_KILL_AT_STEP")
    if kill_at:
        _kill_when_step_begins(int(kill_at))


def _kill_when_step_begins(step: int) -> None:
    from vlm_capcurriculum.integrations.easyr1.trainer import CurriculumRayPPOTrainer

    make_batch_data = CurriculumRayPPOTrainer._make_batch_data

    def killed_at_step(self: Any, metrics: dict[str, Any]) -> Any:
        if self.global_step == step:
            os.kill(os.getpid(), signal.SIGKILL)  # a preempted job: no clean-up, no final save
        return make_batch_data(self, metrics)

    CurriculumRayPPOTrainer._make_batch_data = killed_at_step


def lane_dir() -> str:
    return os.path.dirname(os.path.abspath(__file__))
