"""The ``verl.plugins`` entry point: registers the ``capcurriculum`` trainer mode, loudly.

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
import sys
import traceback
from types import ModuleType

TRAINER_MODE = "capcurriculum"
TRAINER_BASE_MODULE = "verl.trainer.ppo.v1.trainer_base"
TRAINER_MODULE = "vlm_capcurriculum.integrations.verl.trainer"

logger = logging.getLogger(__name__)

#: The traceback of the last failed registration, if any (tests and the placeholder trainer read it).
registration_error: str | None = None


class _LoaderThatRegisters(importlib.abc.Loader):
    """Runs verl's own loader for ``trainer_base``, then registers our trainer mode."""

    def __init__(self, wrapped: importlib.abc.Loader) -> None:
        self._wrapped = wrapped

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self._wrapped.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        self._wrapped.exec_module(module)
        register_trainer_mode()

    def __getattr__(self, name: str) -> object:  # get_source, get_filename, ... for inspect/linecache
        return getattr(self._wrapped, name)


class _RegisterAfterTrainerBase(importlib.abc.MetaPathFinder):
    """A one-shot finder that wraps the loader of ``verl.trainer.ppo.v1.trainer_base``."""

    def find_spec(
        self, fullname: str, path: object = None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != TRAINER_BASE_MODULE:
            return None
        sys.meta_path.remove(self)  # one shot; also keeps the search below from finding us again
        for finder in sys.meta_path:
            find_spec = getattr(finder, "find_spec", None)
            spec = find_spec(fullname, path, target) if find_spec is not None else None
            if spec is not None:
                if spec.loader is not None:
                    spec.loader = _LoaderThatRegisters(spec.loader)
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
    """Register now if verl's trainer base is already imported, else when it is."""
    if TRAINER_BASE_MODULE in sys.modules:
        register_trainer_mode()
    elif not any(isinstance(finder, _RegisterAfterTrainerBase) for finder in sys.meta_path):
        sys.meta_path.insert(0, _RegisterAfterTrainerBase())


try:
    install()
except Exception:  # pragma: no cover - only reachable if the import machinery itself misbehaves
    logger.error("vlm-capcurriculum: installing the verl plugin failed", exc_info=True)
    raise
