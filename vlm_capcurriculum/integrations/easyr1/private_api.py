"""Every EasyR1 name we depend on that EasyR1 does not promise to keep, in one place.

EasyR1 has no plugin API: it installs as the package ``verl`` and we reach into its trainer, workers and
checkpoint layout. Each entry below says what we use and why, so that an EasyR1 upgrade is reviewed here
and nowhere else. :func:`resolve` imports one entry and, when it is gone, raises :class:`EasyR1APIError`
naming the installed EasyR1 version and the one this module was written against.

Importing this module imports nothing from EasyR1.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: The EasyR1 this integration was written and tested against.
TESTED_EASYR1 = "0.3.3.dev0 (hiyouga/EasyR1 @ b44b311)"


class EasyR1APIError(RuntimeError):
    """An EasyR1 name or behaviour we rely on is missing from the installed EasyR1."""


@dataclass(frozen=True)
class PrivateAPI:
    module: str
    attribute: str | None
    why: str

    @property
    def qualname(self) -> str:
        return self.module if self.attribute is None else f"{self.module}.{self.attribute}"


# Modules that import vLLM at import time (EasyR1 @ b44b311); see vllm_free.py.
NEEDS_VLLM = ("verl.workers.fsdp_workers", "verl.trainer.ray_trainer", "verl.trainer.main")

API: dict[str, PrivateAPI] = {
    # --- configuration (config.py) -------------------------------------------------------------------
    "PPOConfig": PrivateAPI(
        "verl.trainer.config",
        "PPOConfig",
        "the strict dataclass config `verl.trainer.main` builds; we subclass it to add a `curriculum` field and "
        "call its `deep_post_init()` exactly as `verl.trainer.main.main` does",
    ),
    "rollout_config_module": PrivateAPI(
        "verl.workers.rollout.config",
        "RolloutConfig",
        "`verl/workers/rollout/__init__.py` re-exports RolloutConfig next to vLLMRollout (which imports vLLM); "
        "the config-only import in vllm_free.py loads this module without running that __init__",
    ),
    "ActorConfig": PrivateAPI(
        "verl.workers.actor.config",
        "ActorConfig",
        "holds the knobs DataParallelPPOActor reads on every micro-batch (kl_coef, clip_ratio_*, "
        "max_grad_norm); engine_ops.set_actor_knobs writes them",
    ),
    # --- data (dataloader wiring) ------------------------------------------------------------------------
    "create_dataloader": PrivateAPI(
        "verl.trainer.data_loader",
        "create_dataloader",
        "EasyR1's dataloader factory (RLHFDataset + Random/SequentialSampler + StatefulDataLoader, "
        "drop_last=True); our dataloader mirrors it with the curriculum sampler",
    ),
    "RLHFDataset": PrivateAPI("verl.utils.dataset", "RLHFDataset", "EasyR1's dataset, reused unchanged"),
    "collate_fn": PrivateAPI("verl.utils.dataset", "collate_fn", "EasyR1's collate function, reused unchanged"),
    "get_tokenizer": PrivateAPI(
        "verl.utils.tokenizer", "get_tokenizer", "the tokenizer as verl.trainer.main.Runner loads it"
    ),
    "get_processor": PrivateAPI(
        "verl.utils.tokenizer", "get_processor", "the processor as verl.trainer.main.Runner loads it"
    ),
    # --- reward (reward.py) ------------------------------------------------------------------------------
    "AutoRewardManager": PrivateAPI(
        "verl.workers.reward",
        "AutoRewardManager",
        "EasyR1's reward manager (a Ray actor in the runner); we subclass it to switch reward kwargs per stage. "
        "Relies on `self.reward_fn` being `functools.partial(fn, **reward_function_kwargs)`",
    ),
    # --- workers (worker_mixin.py, worker.py) ------------------------------------------------------------
    "Worker": PrivateAPI(
        "verl.single_controller.base",
        "Worker",
        "base of our worker mixin: `create_colocated_worker_cls` subclasses `__ray_actor_class__.__base__`, "
        "so the first base of our worker class must itself be a Worker",
    ),
    "register": PrivateAPI(
        "verl.single_controller.base.decorator",
        "register",
        "marks driver-to-worker methods; `_bind_workers_method_to_parent` binds only decorated methods",
    ),
    "Dispatch": PrivateAPI("verl.single_controller.base.decorator", "Dispatch", "Dispatch.ONE_TO_ALL"),
    "create_colocated_worker_cls": PrivateAPI(
        "verl.single_controller.ray.base",
        "create_colocated_worker_cls",
        "builds the WorkerDict actor from `cls.__ray_actor_class__.__base__` (why our class is a mixin)",
    ),
    "FSDPWorker": PrivateAPI(
        "verl.workers.fsdp_workers",
        "FSDPWorker",
        "EasyR1's actor/rollout/ref worker; we extend it with the engine operations "
        "(attributes used: WORKER_ATTRIBUTES)",
    ),
    "DataParallelPPOActor": PrivateAPI(
        "verl.workers.actor.dp_actor",
        "DataParallelPPOActor",
        "reads `self.config.<knob>` live in update_policy/_optimizer_step (checked by LIVE_KNOB_CHECK)",
    ),
    "load_fsdp_model": PrivateAPI(
        "verl.utils.fsdp_utils", "load_fsdp_model", "bring offloaded params back before touching them"
    ),
    "offload_fsdp_model": PrivateAPI(
        "verl.utils.fsdp_utils", "offload_fsdp_model", "offload again after, as FSDPWorker.save_checkpoint does"
    ),
    "get_fsdp_wrap_policy": PrivateAPI(
        "verl.utils.fsdp_utils",
        "get_fsdp_wrap_policy",
        "the wrap policy EasyR1 applies (one FSDP unit per `_no_split_modules` block); lane tests wrap with it",
    ),
    # --- InternVL (internvl.py; worker.py swaps the two module globals only during _build_model_optimizer) ------
    "apply_ulysses_patch": PrivateAPI(
        "verl.workers.fsdp_workers",
        "apply_ulysses_patch",
        "called by FSDPWorker._build_model_optimizer when padding_free; raises NotImplementedError for `internvl`, "
        "so InternVL gets the patch of its language model's type (internvl.padding_free_patch)",
    ),
    "fsdp_workers_get_fsdp_wrap_policy": PrivateAPI(
        "verl.workers.fsdp_workers",
        "get_fsdp_wrap_policy",
        "the name _build_model_optimizer calls between loading the model and FSDP-wrapping it: where InternVL gets "
        "its FSDP layer classes, its dummy vision forward and its tower freeze (internvl.wrap_policy_patch)",
    ),
    # --- trainer (trainer wiring) --------------------------------------------------------------------------
    "RayPPOTrainer": PrivateAPI(
        "verl.trainer.ray_trainer",
        "RayPPOTrainer",
        "the trainer we subclass; overridden/used: TRAINER_ATTRIBUTES",
    ),
    "Role": PrivateAPI("verl.trainer.ray_trainer", "Role", "worker roles of role_worker_mapping"),
    "ResourcePoolManager": PrivateAPI(
        "verl.trainer.ray_trainer", "ResourcePoolManager", "the GPU pool spec our runner builds as EasyR1's does"
    ),
    "RayWorkerGroup": PrivateAPI("verl.single_controller.ray", "RayWorkerGroup", "EasyR1's worker group class"),
    "MAGIC_ATTR": PrivateAPI(
        "verl.single_controller.base.decorator",
        "MAGIC_ATTR",
        "the attribute `register` sets on driver-callable worker methods (tests check our calls against it)",
    ),
    "FixedKLController": PrivateAPI(
        "verl.trainer.core_algos",
        "FixedKLController",
        "driver-side KL controller (`RayPPOTrainer.kl_ctrl.kl_coef`) used when KL is applied in the reward",
    ),
    # --- checkpoints (merge.py, chained mode) ------------------------------------------------------------------
    "FSDPCheckpointManager": PrivateAPI(
        "verl.utils.checkpoint.fsdp_checkpoint_manager",
        "FSDPCheckpointManager",
        "writes `model_world_size_{W}_rank_{R}.pt` (sharded DTensor state dicts) and `huggingface/` "
        "(config, generation config, processor, no weights): the format merge.py reads",
    ),
    "CHECKPOINT_TRACKER": PrivateAPI(
        "verl.utils.checkpoint",
        "CHECKPOINT_TRACKER",
        "`checkpoint_tracker.json` in trainer.save_checkpoint_path; names the last `global_step_N`",
    ),
    "find_latest_ckpt": PrivateAPI("verl.utils.checkpoint", "find_latest_ckpt", "resume discovery"),
    "remove_obsolete_ckpt": PrivateAPI(
        "verl.utils.checkpoint",
        "remove_obsolete_ckpt",
        "rotates `global_step_*` folders under save_limit: stage checkpoints must live outside them",
    ),
}

#: FSDPWorker attributes the worker mixin reads (set in FSDPWorker.__init__ / init_model / _build_model_optimizer).
WORKER_ATTRIBUTES: dict[str, str] = {
    "fsdp_module": "the actor's root FSDP module (FSDP1)",
    "optimizer": "the actor's torch optimizer (AdamW or AnyPrecisionAdamW), one param group",
    "lr_scheduler": "a LambdaLR from verl.utils.torch_functional (constant or cosine with warmup)",
    "actor": "DataParallelPPOActor; `actor.config` is the live ActorConfig",
    "ref_fsdp_module": "the reference model's FSDP module (the actor itself when LoRA is on)",
    "processor": "the HF processor, or None for text-only models",
    "tokenizer": "the HF tokenizer",
    "model_config": "the HF model config (AutoConfig), set in _build_model_optimizer before the model loads",
    "_has_actor": "role flag",
    "_has_ref": "role flag (False when algorithm.disable_kl)",
    "_is_lora": "LoRA flag: the reference is the actor with adapters disabled",
    "_use_param_offload": "actor params live on CPU between calls",
    "_use_optimizer_offload": "optimizer state lives on CPU between calls",
    "_use_ref_param_offload": "reference params live on CPU between calls",
}

#: RayPPOTrainer members the trainer subclass and the engine override or use (verified at b44b311).
TRAINER_ATTRIBUTES: dict[str, str] = {
    "_make_batch_data": "overridden: per-step batch (pulls `next(self.data_iterator)`); the step is known, nothing of "
    "it has run yet, the rollout engine is loaded",
    "_load_checkpoint": "overridden: resume (actor, optimizer, scheduler, RNG, then `dataloader.pt`)",
    "fit": "overridden (wrapped): the training loop, no hooks; we close the last step after it returns",
    "_save_checkpoint": "overridden (wrapped): writes global_step_N/{actor,dataloader.pt} and checkpoint_tracker.json; "
    "we seal the directory after it (checkpointing.py)",
    "_validate": "called for stage-end validation; loads and releases the rollout engine itself",
    "logger": "assigned in fit() (`Tracker`); our property wraps it to add per-stage reward copies",
    "global_step": "the step in progress (incremented before `_make_batch_data`)",
    "training_steps": "set in __init__ from trainer.max_steps: must equal the plan's total steps",
    "train_dataloader": "its `.sampler` is our CurriculumSampler (repositioned after a resume)",
    "actor_rollout_ref_wg": "the worker group: prepare/release_rollout_engine and our curriculum_* methods",
    "kl_ctrl": "driver KL controller; `.kl_coef` used by apply_kl_penalty when algorithm.use_kl_loss is False",
    "reward_fn": "the training reward actor (our CurriculumRewardManager; stage reward kwargs)",
    "val_reward_fn": "the validation reward actor (keeps the configured kwargs)",
}

#: FSDPWorker members CurriculumFSDPWorker overrides for InternVL (internvl.py says why; verified at b44b311).
INTERNVL_OVERRIDES: dict[str, str] = {
    "_build_model_optimizer": "(model_config, fsdp_config, optim_config, padding_free, role): calls "
    "apply_ulysses_patch(model_type) when padding_free, freezes `model.model.visual` if present, then "
    "get_fsdp_wrap_policy(model, is_lora_model=...) and FSDP(..., use_orig_params=fsdp_config.use_orig_params); "
    "sets self.model_config before all of them",
    "_process_multi_modal_inputs": '(data): reads only `self.processor.image_processor(images=..., return_tensors="pt")`',
}

#: EasyR1's CUDA literals and the name the CPU execution replaces for each, *inside EasyR1's module*, in the worker
#: processes only (tests/integrations/easyr1/cpu_worker.py ``apply_cpu_patches``; EasyR1's files stay unmodified).
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

#: FSDPWorker members the CPU worker overrides (cpu_worker.CPUCurriculumFSDPWorker).
CPU_WORKER_OVERRIDES: dict[str, str] = {
    "FSDPWorker.__init__": 'creates the process group with backend="nccl" unless one exists: we create a gloo one first',
    "FSDPWorker._build_rollout": "always builds vLLMRollout + FSDPVLLMShardingManager (rollout.name is read nowhere): "
    "a transformers rollout behind a sharding manager with the same load/offload/weight-sync contract",
    "FSDPWorker.rollout_sharding_manager": "load_vllm_and_sync_weights/offload_vllm/preprocess_data/postprocess_data/"
    "freed_bytes, called by prepare/release_rollout_engine, generate_sequences and update_actor",
}

#: Actor-config fields that DataParallelPPOActor reads on every micro-batch (not cached at init).
LIVE_ACTOR_KNOBS = ("kl_coef", "clip_ratio_low", "clip_ratio_high", "clip_ratio_dual", "max_grad_norm")
# Where each knob must be read as `self.config.<knob>` for a runtime change to take effect.
LIVE_KNOB_CHECK: dict[str, str] = {
    "kl_coef": "update_policy",
    "clip_ratio_low": "update_policy",
    "clip_ratio_high": "update_policy",
    "clip_ratio_dual": "update_policy",
    "max_grad_norm": "_optimizer_step",
}


#: torch internals the engine operations rely on (not EasyR1's, but just as unpromised; checked by the lane tests).
TORCH_INTERNALS: dict[str, str] = {
    "LRScheduler._last_lr": "what get_last_lr() returns; engine_ops.set_base_lr updates it with base_lrs",
    "FlatParameter (torch.distributed.fsdp._flat_param)": "recognised by class name to refuse use_orig_params=False",
    "FlatParamHandle._writeback_orig_params": "writes a None .grad of an original parameter back as zeros",
    "checkpoint.state_dict._init_optim_state": "fills an empty optimizer with a zero-grad step on save/load",
}


def easyr1_location() -> Path | None:
    """The directory of the installed ``verl`` package, without importing it."""
    spec = importlib.util.find_spec("verl")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def is_easyr1_installed() -> bool:
    """True when ``verl`` is EasyR1 (not volcengine verl, which installs under the same name)."""
    location = easyr1_location()
    return location is not None and all(
        (location / relative).is_file() for relative in ("trainer/ray_trainer.py", "trainer/data_loader.py")
    )


def easyr1_version() -> str:
    """``verl.__version__`` of the installed EasyR1 (imports only ``verl/__init__.py``)."""
    require_easyr1()
    import verl

    return str(getattr(verl, "__version__", "unknown"))


def require_easyr1() -> None:
    """Fail with an actionable message when the importable ``verl`` is not EasyR1."""
    if is_easyr1_installed():
        return
    location = easyr1_location()
    found = "no package named `verl` is installed" if location is None else f"`verl` at {location} is not EasyR1"
    raise EasyR1APIError(
        f"The EasyR1 integration needs EasyR1 ({TESTED_EASYR1}), which installs as the package `verl`, but "
        f"{found} (volcengine verl uses the same name: use vlm_capcurriculum.integrations.verl for it). "
        "Install EasyR1 from a clone: `pip install -e /path/to/EasyR1`."
    )


def _missing(entry: PrivateAPI, detail: str) -> EasyR1APIError:
    return EasyR1APIError(
        f"EasyR1 private API `{entry.qualname}` is unavailable in the installed EasyR1 {easyr1_version()} "
        f"({easyr1_location()}): {detail}. vlm-capcurriculum uses it for: {entry.why}. "
        f"It was written against EasyR1 {TESTED_EASYR1}; install that version or update "
        "vlm_capcurriculum/integrations/easyr1/private_api.py."
    )


def resolve(key: str) -> Any:
    """Import one entry of :data:`API` and return it (the module when ``attribute`` is None)."""
    entry = API[key]
    require_easyr1()
    from .vllm_free import VLLMUnavailableError, allow_config_import_without_vllm

    if entry.module not in NEEDS_VLLM:
        allow_config_import_without_vllm()  # no-op where vLLM is installed
    try:
        module = importlib.import_module(entry.module)
    except VLLMUnavailableError as error:
        raise EasyR1APIError(
            f"`{entry.module}` imports vLLM at import time and vLLM is not installed: {entry.why}. "
            "Install vLLM (GPU machines) to use it."
        ) from error
    except ModuleNotFoundError as error:
        missing = (error.name or "").split(".")[0]
        if missing == "vllm":
            raise EasyR1APIError(
                f"`{entry.module}` imports vLLM at import time and vLLM is not installed: "
                f"{entry.why}. Install vLLM (GPU machines) to use it."
            ) from error
        if missing and missing != "verl":
            raise EasyR1APIError(
                f"`{entry.module}` cannot be imported because EasyR1's dependency `{error.name}` is not "
                f"installed ({error}); needed for: {entry.why}."
            ) from error
        raise _missing(entry, f"module `{entry.module}` cannot be imported ({error})") from error
    if entry.attribute is None:
        return module
    obj: Any = module
    for part in entry.attribute.split("."):
        if not hasattr(obj, part):
            raise _missing(entry, f"`{entry.module}` has no attribute `{entry.attribute}`")
        obj = getattr(obj, part)
    return obj


def worker_attribute(worker: object, name: str) -> Any:
    """Read an FSDPWorker attribute listed in :data:`WORKER_ATTRIBUTES`, with a clear error when absent."""
    if name not in WORKER_ATTRIBUTES:
        raise KeyError(f"{name!r} is not a declared EasyR1 worker attribute; add it to WORKER_ATTRIBUTES")
    if not hasattr(worker, name):
        raise EasyR1APIError(
            f"EasyR1 worker {type(worker).__name__} has no attribute `{name}` ({WORKER_ATTRIBUTES[name]}) "
            f"in the installed EasyR1 {easyr1_version()}; written against EasyR1 {TESTED_EASYR1}. "
            "Was `init_model` called, and does this role build an actor?"
        )
    return getattr(worker, name)


def check_live_knobs() -> None:
    """Verify that DataParallelPPOActor still reads each knob from ``self.config`` where we expect it.

    Our stage transitions change these fields on the live ActorConfig; if EasyR1 started caching them at
    construction, the change would silently do nothing. This reads the source of the two methods.
    """
    actor_cls = resolve("DataParallelPPOActor")
    for knob, method in LIVE_KNOB_CHECK.items():
        function = getattr(actor_cls, method, None)
        if function is None:
            raise _missing(API["DataParallelPPOActor"], f"method `{method}` is gone")
        if f"self.config.{knob}" not in inspect.getsource(function):
            raise _missing(
                API["DataParallelPPOActor"],
                f"`{method}` no longer reads `self.config.{knob}`, so changing it between steps would have no effect",
            )


def check(keys: list[str] | None = None, *, skip_vllm_modules: bool = False) -> list[str]:
    """Resolve entries (all by default) and return one message per problem; empty means all present."""
    problems = []
    for key in keys if keys is not None else list(API):
        if skip_vllm_modules and API[key].module in NEEDS_VLLM:
            continue
        try:
            resolve(key)
        except EasyR1APIError as error:
            problems.append(f"{key}: {error}")
    return problems
