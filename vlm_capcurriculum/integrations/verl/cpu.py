"""``backend.device=cpu``: verl 0.9.1's real trainer, workers and our plugin on a CPU, for smoke tests and CI, not
training. verl's own extension points where it has them (``PlatformRegistry``, the ``hf`` rollout), process-local
patches where it has none; applied only when the launcher selected the CPU device (``docs/integrations/verl.md``, "The CPU
device").
"""

from __future__ import annotations

import logging
import os
import types
from typing import Any

import torch

from .verl_fixes import patch

logger = logging.getLogger(__name__)

#: Our platform's name in verl's ``PlatformRegistry`` (``VERL_PLATFORM``).
PLATFORM_NAME = "capcurriculum_cpu"

_applied = False


def _cpu_device_module() -> types.ModuleType:
    """``torch.cpu`` (``is_available``, ``device_count``, ``set_device``, ``synchronize``, ``Stream``, ...) plus the
    memory and RNG calls verl makes on ``get_torch_device()`` (all no-ops or zeros on a CPU)."""
    module = types.ModuleType("vlmcc_torch_cpu")
    module.__dict__.update({name: value for name, value in vars(torch.cpu).items() if not name.startswith("__")})
    zero = lambda *args, **kwargs: 0  # noqa: E731
    none = lambda *args, **kwargs: None  # noqa: E731
    for name in ("memory_allocated", "memory_reserved", "max_memory_allocated", "max_memory_reserved"):
        setattr(module, name, zero)
    for name in ("empty_cache", "reset_peak_memory_stats", "ipc_collect", "set_per_process_memory_fraction"):
        setattr(module, name, none)
    module.current_device = lambda: 0
    module.mem_get_info = lambda *args, **kwargs: (0, 0)
    module.memory_stats = lambda *args, **kwargs: {}
    module.get_rng_state = torch.get_rng_state
    module.set_rng_state = torch.set_rng_state
    module.manual_seed = torch.manual_seed
    module.manual_seed_all = torch.manual_seed
    module.get_device_name = lambda *args, **kwargs: "CPU"  # flops_counter compares torch.cpu by identity
    return module


def _platform_class() -> type:
    from verl.plugin.platform.platform_cuda import PlatformCUDA
    from verl.plugin.platform.platform_manager import PlatformRegistry

    device_module = _cpu_device_module()

    @PlatformRegistry.register(platform=PLATFORM_NAME)
    class PlatformCPU(PlatformCUDA):
        """verl on the CPU: torch ``cpu`` device, gloo collectives. CUDA's Ray side (resource ``GPU``: Ray is started
        with one logical GPU per rank, so verl's placement groups work; its profiling hooks are never called)."""

        @property
        def device_name(self) -> str:
            return "cpu"

        @property
        def vendor_name(self) -> str:
            return "cpu"

        @property
        def device_module(self) -> types.ModuleType:
            return device_module

        def is_available(self) -> bool:
            return True

        def is_platform_available(self, use_smi_check: bool = False) -> bool:
            return os.environ.get("VERL_PLATFORM") == PLATFORM_NAME

        def current_device(self) -> Any:
            # verl uses the "device id" as a device (model.to(get_device_id()), to_empty(device=...)): an int would
            # mean cuda:N
            return torch.device("cpu")

        def device_count(self) -> int:
            return 1

        def set_device(self, device_index: int) -> None:
            return None

        def synchronize(self, device_index: int | None = None) -> None:
            return None

        def manual_seed(self, seed: int) -> None:
            torch.manual_seed(seed)

        def manual_seed_all(self, seed: int) -> None:
            torch.manual_seed(seed)

        def set_allocator_settings(self, settings: str) -> None:
            return None

        def empty_cache(self) -> None:
            return None

        def get_device_capability(self, device_index: int = 0) -> tuple[int | None, int | None]:
            return None, None

        def communication_backend_name(self) -> str:
            return "gloo"

        def is_ipc_supported(self) -> bool:
            return False

    return PlatformCPU


def _patch_process_group() -> None:
    """verl builds ``cpu:gloo,<device>:<backend>`` = ``cpu:gloo,cpu:gloo``, which torch rejects: use ``gloo``."""
    from verl.utils import distributed

    @patch(distributed, "initialize_global_process_group_ray")
    def initialize_global_process_group_ray(original: Any, timeout_second: Any = None, backend: Any = None) -> Any:
        return original(timeout_second=timeout_second, backend=backend or "gloo")

    @patch(distributed, "initialize_global_process_group")
    def initialize_global_process_group(original: Any, timeout_second: int = 36000) -> Any:
        from datetime import timedelta

        torch.distributed.init_process_group(backend="gloo", timeout=timedelta(seconds=timeout_second))
        return int(os.environ["LOCAL_RANK"]), int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])


def _patch_no_pinned_memory() -> None:
    """FSDP2's forward-only reference is wrapped with ``CPUOffloadPolicy(pin_memory=True)``; pinning needs an
    accelerator. The engine module binds the class by name, so a non-pinning subclass replaces it there."""
    from torch.distributed.fsdp import CPUOffloadPolicy
    from verl.workers.engine.fsdp import transformer_impl

    class UnpinnedCPUOffloadPolicy(CPUOffloadPolicy):
        def __init__(self, pin_memory: bool = False) -> None:
            super().__init__(pin_memory=False)

    transformer_impl.CPUOffloadPolicy = UnpinnedCPUOffloadPolicy


def _patch_torch_compile() -> None:
    """verl compiles a few kernels (entropy, log-probs) with ``torch.compile`` at import; inductor needs a C++
    toolchain and minutes per shape on a CPU. Make ``torch.compile`` the identity in this process."""

    def no_compile(model: Any = None, *args: Any, **kwargs: Any) -> Any:
        if model is None:
            return lambda fn: fn
        return model

    torch.compile = no_compile  # type: ignore[assignment]


#: How often the v1 trainer checks TransferQueue for a step's finished rollouts on the CPU device (verl: 2 s, a
#: rounding error next to a GPU rollout, half of a tiny model's CPU step).
CPU_POLL_INTERVAL_S = 0.05


def patch_replay_buffer_poll() -> None:
    """``ReplayBuffer.sample`` sleeps ``poll_interval`` (2 s, not configurable) between looks at TransferQueue, so
    every step's rollout and every validation took at least 2 s; poll every :data:`CPU_POLL_INTERVAL_S`. Applied
    by the plugin right after verl imports the module (only the trainer's process does: importing it here would
    import verl's whole v1 trainer into every worker)."""
    from verl.trainer.ppo.v1 import replay_buffer

    @patch(replay_buffer.ReplayBuffer, "__init__")
    def __init__(original: Any, self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        self.poll_interval = CPU_POLL_INTERVAL_S


def apply_cpu_patches() -> None:
    """Register the CPU platform and the ``hf`` rollout, then apply the patches (once per process)."""
    global _applied
    if _applied:
        return
    _applied = True
    import vlm_capcurriculum.models  # noqa: F401  (registers our image-only processors with AutoProcessor)

    from . import hf_rollout

    _patch_torch_compile()
    _platform_class()
    _patch_process_group()
    _patch_no_pinned_memory()
    hf_rollout.register()
    logger.info("vlm-capcurriculum: verl CPU device patches applied in pid %d", os.getpid())
