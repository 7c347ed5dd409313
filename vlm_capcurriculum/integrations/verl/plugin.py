"""The ``verl.plugins`` entry point: registers the ``capcurriculum`` trainer mode, loudly, and applies our fixes of
verl (:mod:`.verl_fixes`), for InternVL (:mod:`.internvl`) and for the CPU device right after the modules they act
on execute (:data:`AFTER_IMPORT`).

verl imports every ``verl.plugins`` entry point in every process that imports verl and swallows any exception with a
*debug* log, so this module is standard library only and cheap, and fails loudly by itself (an ERROR log, and a
placeholder trainer that raises the cause). Why an import hook: verl offers no hook after its modules import, and
importing ``trainer_base`` or the patched modules here would load ~1,500 modules into every process.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import logging
import os
import sys
import traceback
from collections.abc import Callable
from types import ModuleType

TRAINER_MODE = "capcurriculum"
TRAINER_MODULE = "vlm_capcurriculum.integrations.verl.trainer"
_PACKAGE = "vlm_capcurriculum.integrations.verl"

logger = logging.getLogger(__name__)


#: Set by the launcher (``backend.device=cpu``) for the driver and every Ray process.
DEVICE_ENV = "VLMCC_VERL_DEVICE"


def cpu_device() -> bool:
    return os.environ.get(DEVICE_ENV, "").strip().lower() == "cpu"


def _call(module: str, function: str, when: bool = True) -> None:
    if when:
        getattr(importlib.import_module(f"{_PACKAGE}.{module}"), function)()


#: verl (and transformers) modules we act on right after they execute, and what we do.
AFTER_IMPORT = {
    "verl.trainer.ppo.v1.trainer_base": lambda: register_trainer_mode(),
    "verl.models.transformers.qwen2_vl": lambda: _call("verl_fixes", "fix_qwen2_vl_text_only_embeds"),
    "verl.models.transformers.monkey_patch": lambda: _call("verl_fixes", "fix_trl_value_head_import"),
    # before any verl module binds maybe_fix_3d_position_ids by name
    "verl.utils.tensordict_utils": lambda: _call("verl_fixes", "fix_equal_length_position_ids"),
    "verl.utils.tokenizer.tokenizer": lambda: _call("internvl", "patch_hf_processor"),
    "verl.experimental.agent_loop.agent_loop": lambda: _call("internvl", "patch_prompt_decode"),
    "transformers.models.internvl.modeling_internvl": lambda: _call("internvl", "patch_text_only_vision_forward"),
    "verl.trainer.ppo.v1.replay_buffer": lambda: _call("cpu", "patch_replay_buffer_poll", when=cpu_device()),
}


def _run_after_import(name: str) -> None:
    try:
        AFTER_IMPORT[name]()
    except Exception:
        logger.error("vlm-capcurriculum: the verl plugin's action after importing %s failed", name, exc_info=True)
        raise


def _then_act(execute: Callable[[ModuleType], None], name: str) -> Callable[[ModuleType], None]:
    def exec_module(module: ModuleType) -> None:
        execute(module)
        _run_after_import(name)

    return exec_module


class _AfterImport(importlib.abc.MetaPathFinder):
    """Wraps the loaders of the modules in :data:`AFTER_IMPORT` (once each); removes itself when all are done."""

    def __init__(self) -> None:
        self.pending = {name for name in AFTER_IMPORT if name not in sys.modules}

    def find_spec(
        self, fullname: str, path: object = None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in self.pending:
            return None
        self.pending.discard(fullname)
        if not self.pending:
            sys.meta_path.remove(self)
        for finder in sys.meta_path:
            find_spec = getattr(finder, "find_spec", None) if finder is not self else None
            spec = find_spec(fullname, path, target) if find_spec is not None else None
            if spec is not None:
                if spec.loader is not None:  # the module's own loader (one per module), then our action
                    spec.loader.exec_module = _then_act(spec.loader.exec_module, fullname)  # type: ignore[method-assign]
                return spec
        return None


def register_trainer_mode() -> None:
    """Import the trainer module (which registers ``capcurriculum``); on failure log an error and register a
    placeholder that raises it when the mode is used. Never raises."""
    try:
        importlib.import_module(TRAINER_MODULE)
        return
    except Exception:
        error = traceback.format_exc()
        logger.error(
            "vlm-capcurriculum: the verl trainer mode %r could not be registered; runs with "
            "trainer.v1.trainer_mode=%s will fail. Cause:\n%s",
            TRAINER_MODE,
            TRAINER_MODE,
            error,
        )
    from verl.trainer.ppo.v1.trainer_base import TRAINER_REGISTRY, PPOTrainer

    class CapCurriculumTrainerUnavailable(PPOTrainer):
        """Stands in for the real trainer when it failed to import; constructing it raises the cause."""

        def __init__(self, config: object) -> None:
            raise RuntimeError(
                f"vlm-capcurriculum's verl trainer mode {TRAINER_MODE!r} failed to import when verl loaded its "
                f"plugins:\n{error}"
            )

        def on_step_end(self) -> None:
            return None

        def on_sample_end(self) -> None:
            return None

    # Direct assignment: a real class may have registered before failing late in its module.
    TRAINER_REGISTRY[TRAINER_MODE] = CapCurriculumTrainerUnavailable


def install() -> None:
    """Act now on the modules of :data:`AFTER_IMPORT` already imported, on the others when they are; then, when the
    launcher selected the CPU device (``VLMCC_VERL_DEVICE=cpu``), apply the CPU patches in this process."""
    if not any(isinstance(finder, _AfterImport) for finder in sys.meta_path):
        finder = _AfterImport()
        if finder.pending:
            sys.meta_path.insert(0, finder)
        for name in AFTER_IMPORT:
            if name in sys.modules:
                _run_after_import(name)
    if cpu_device():
        _call("cpu", "apply_cpu_patches")


try:
    install()
except Exception:  # pragma: no cover - only reachable if the import machinery itself misbehaves
    logger.error("vlm-capcurriculum: installing the verl plugin failed", exc_info=True)
    raise
