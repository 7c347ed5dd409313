"""The worker class the entry point hands to EasyR1: its ``FSDPWorker`` plus our engine operations. Importing this
module imports vLLM (``verl.workers.fsdp_workers``): training machines only.
"""

from __future__ import annotations

from typing import Any
from unittest import mock

from verl.workers import fsdp_workers
from verl.workers.fsdp_workers import FSDPWorker

from . import internvl
from .worker_mixin import CurriculumWorkerMixin


class CurriculumFSDPWorker(CurriculumWorkerMixin, FSDPWorker):  # type: ignore[misc, valid-type]
    """EasyR1's ``FSDPWorker`` with ``curriculum_*`` driver calls (the mixin must stay the first base) and the
    InternVL fixes of :mod:`.internvl`. No hook in EasyR1 for these: ``_build_model_optimizer`` calls the module
    globals ``apply_ulysses_patch`` and ``get_fsdp_wrap_policy`` of ``fsdp_workers``, so we swap them for that call.
    """

    def _build_model_optimizer(
        self, model_config: Any, fsdp_config: Any, optim_config: Any, padding_free: bool, role: str
    ) -> None:
        def freeze() -> bool:
            if role != "ref":  # the reference never trains (EasyR1 freezes all of it)
                internvl.check_ulysses(int(getattr(self.config.actor, "ulysses_size", 1)))
            return role != "ref" and bool(model_config.freeze_vision_tower)

        replacements = {
            "apply_ulysses_patch": internvl.padding_free_patch(
                fsdp_workers.apply_ulysses_patch, lambda: self.model_config.get_text_config().model_type
            ),
            "get_fsdp_wrap_policy": internvl.wrap_policy_patch(
                fsdp_workers.get_fsdp_wrap_policy,
                freeze=freeze,
                fsdp_config=fsdp_config,
                log=self.print_rank0,
            ),
        }
        with mock.patch.multiple(fsdp_workers, **replacements):  # this process, this call only
            return super()._build_model_optimizer(model_config, fsdp_config, optim_config, padding_free, role)

    def _process_multi_modal_inputs(self, data: Any) -> None:
        processor = self.processor
        if not internvl.is_internvl_processor(processor):
            return super()._process_multi_modal_inputs(data)
        self.processor = internvl.tiling_processor(processor)
        try:
            return super()._process_multi_modal_inputs(data)
        finally:
            self.processor = processor
