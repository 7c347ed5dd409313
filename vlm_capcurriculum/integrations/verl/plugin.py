"""The ``verl.plugins`` entry point: registers the ``capcurriculum`` trainer mode, loudly, and applies our fixes of
verl (:mod:`.verl_fixes`) and for InternVL (:mod:`.internvl`) right after the modules they replace a name of execute
(:data:`AFTER_IMPORT`).

verl 0.9.1 imports every ``verl.plugins`` entry point at the end of ``verl/__init__.py``, in every process that
imports verl (the driver, the ``TaskRunnerV1`` actor, every worker, reward and agent-loop actor), and swallows any
exception with a *debug*-level log line (``verl/__init__.py``: ``except Exception: logger.debug(...)``). A broken
plugin would therefore be invisible until ``get_trainer_cls("capcurriculum")`` says the mode is unknown.

Two consequences shape this module:

* It must be cheap: importing the trainer needs ``verl.trainer.ppo.v1.trainer_base`` (about 1,500 more modules
  than ``import verl``), which most of those processes never use. So this module only installs a one-shot import
  hook; the trainer module is imported, and registers itself, right after verl's own ``trainer_base`` finishes
  importing (or at once if it already has).
* It must fail loudly by itself, since re-raising reaches only verl's debug log: a failure is logged at ERROR level
  with the traceback, and a placeholder trainer is registered under the same name whose constructor raises with the
  original error, so a run that selects ``trainer.v1.trainer_mode=capcurriculum`` stops with the real cause while
  runs of other modes in the same environment are unaffected.

Standard library only: this file runs inside ``import verl``.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import logging
import os
import sys
import traceback
from types import ModuleType

TRAINER_MODE = "capcurriculum"
TRAINER_BASE_MODULE = "verl.trainer.ppo.v1.trainer_base"
TRAINER_MODULE = "vlm_capcurriculum.integrations.verl.trainer"

logger = logging.getLogger(__name__)

#: The traceback of the last failed registration, if any (tests and the placeholder trainer read it).
registration_error: str | None = None


#: verl modules we act on right after they execute (lazily: most processes never import them), and what we do.
def _after_trainer_base() -> None:
    register_trainer_mode()


def _after_qwen2_vl() -> None:
    importlib.import_module(FIXES_MODULE).fix_qwen2_vl_text_only_embeds()


def _after_monkey_patch() -> None:
    importlib.import_module(FIXES_MODULE).fix_trl_value_head_import()


def _after_tokenizer() -> None:
    importlib.import_module(INTERNVL_MODULE).patch_hf_processor()


def _after_agent_loop() -> None:
    importlib.import_module(INTERNVL_MODULE).patch_prompt_decode()


def _after_internvl_model() -> None:
    importlib.import_module(INTERNVL_MODULE).patch_text_only_vision_forward()


def _after_replay_buffer() -> None:
    if os.environ.get("VLMCC_VERL_DEVICE", "").strip().lower() == "cpu":
        importlib.import_module("vlm_capcurriculum.integrations.verl.cpu").patch_replay_buffer_poll()


def _after_tensordict_utils() -> None:  # before any verl module binds maybe_fix_3d_position_ids by name
    importlib.import_module(FIXES_MODULE).fix_equal_length_position_ids()


FIXES_MODULE = "vlm_capcurriculum.integrations.verl.verl_fixes"
INTERNVL_MODULE = "vlm_capcurriculum.integrations.verl.internvl"
AFTER_IMPORT = {
    TRAINER_BASE_MODULE: _after_trainer_base,
    "verl.models.transformers.qwen2_vl": _after_qwen2_vl,
    "verl.models.transformers.monkey_patch": _after_monkey_patch,
    # InternVL3/3.5 (internvl.py): verl's processor loader, the agent loop's prompt decode, the text-only forward
    "verl.utils.tokenizer.tokenizer": _after_tokenizer,
    "verl.experimental.agent_loop.agent_loop": _after_agent_loop,
    "transformers.models.internvl.modeling_internvl": _after_internvl_model,
    # CPU device and bug 2 (verl_fixes.py, cpu.py)
    "verl.utils.tensordict_utils": _after_tensordict_utils,
    "verl.trainer.ppo.v1.replay_buffer": _after_replay_buffer,
}


def _run_after_import(name: str) -> None:
    try:
        AFTER_IMPORT[name]()
    except Exception:
        logger.error("vlm-capcurriculum: the verl plugin's action after importing %s failed", name, exc_info=True)
        raise


class _LoaderThatRegisters(importlib.abc.Loader):
    """Runs verl's own loader for a module of :data:`AFTER_IMPORT`, then our action for it."""

    def __init__(self, wrapped: importlib.abc.Loader, name: str) -> None:
        self._wrapped = wrapped
        self._name = name

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self._wrapped.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        self._wrapped.exec_module(module)
        if self._name == TRAINER_BASE_MODULE:
            register_trainer_mode()  # never raises: it registers a placeholder on failure
        else:
            _run_after_import(self._name)

    def __getattr__(self, name: str) -> object:  # get_source, get_filename, ... for inspect/linecache
        return getattr(self._wrapped, name)


class _RegisterAfterTrainerBase(importlib.abc.MetaPathFinder):
    """A finder that wraps the loaders of the modules in :data:`AFTER_IMPORT` (once each)."""

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
            if finder is self:
                continue
            find_spec = getattr(finder, "find_spec", None)
            spec = find_spec(fullname, path, target) if find_spec is not None else None
            if spec is not None:
                if spec.loader is not None:
                    spec.loader = _LoaderThatRegisters(spec.loader, fullname)
                return spec
        return None


def register_trainer_mode() -> None:
    """Import the trainer module (which registers ``capcurriculum``); on failure log an error and register a
    placeholder that raises it when the mode is used."""
    global registration_error
    try:
        importlib.import_module(TRAINER_MODULE)
        registration_error = None
    except Exception:
        registration_error = traceback.format_exc()
        logger.error(
            "vlm-capcurriculum: the verl trainer mode %r could not be registered; runs with "
            "trainer.v1.trainer_mode=%s will fail. Cause:\n%s",
            TRAINER_MODE,
            TRAINER_MODE,
            registration_error,
        )
        _register_placeholder(registration_error)


def _register_placeholder(error: str) -> None:
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
    if not any(isinstance(finder, _RegisterAfterTrainerBase) for finder in sys.meta_path):
        finder = _RegisterAfterTrainerBase()
        if finder.pending:
            sys.meta_path.insert(0, finder)
        for name in AFTER_IMPORT:
            if name in sys.modules:
                if name == TRAINER_BASE_MODULE:
                    register_trainer_mode()
                else:
                    _run_after_import(name)
    if os.environ.get("VLMCC_VERL_DEVICE", "").strip().lower() == "cpu":
        importlib.import_module("vlm_capcurriculum.integrations.verl.cpu").apply_cpu_patches()


try:
    install()
except Exception:  # pragma: no cover - only reachable if the import machinery itself misbehaves
    logger.error("vlm-capcurriculum: installing the verl plugin failed", exc_info=True)
    raise
