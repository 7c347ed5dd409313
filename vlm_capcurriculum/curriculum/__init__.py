"""The capability curriculum: spec, schedule, resumable sampler, engine protocol and stage controller.

Typical use by a backend launcher::

    cfg = load_config("recipes/config.yaml", ["curriculum=merged"])      # vlm_capcurriculum.config
    spec = parse_curriculum(cfg.curriculum)
    data, plan = plan_curriculum(spec)            # records of all stages = the global index space
    validate_plan_for_engine(plan, engine)        # before any GPU time is spent
    sampler = CurriculumSampler(plan)             # StatefulDataLoader(..., sampler=sampler, batch_size=plan.batch_size)
    controller = StageController(plan, engine, completed_steps=resumed_step)
    for step in range(controller.next_step, plan.total_steps + 1):
        controller.before_step(step); train_one_step(); controller.after_step(step)
"""

from vlm_capcurriculum.curriculum.controller import StageController, StepOrderError
from vlm_capcurriculum.curriculum.data import (
    CurriculumData,
    StageRecords,
    expand_train_files,
    load_curriculum_data,
    plan_curriculum,
)
from vlm_capcurriculum.curriculum.engine import (
    OPERATION_OF_FIELD,
    CurriculumEngine,
    EngineBase,
    Operation,
    UnsupportedOverrideError,
    required_operations,
    validate_plan_for_engine,
)
from vlm_capcurriculum.curriculum.overrides import (
    END_ACTIONS,
    KNOB_OF,
    KNOBS,
    START_ACTIONS,
    OverrideError,
    Overrides,
    VisionTower,
)
from vlm_capcurriculum.curriculum.plan import DataSlice, Plan, PlanError, PlannedStage
from vlm_capcurriculum.curriculum.sampler import CurriculumSampler, SamplerStateError
from vlm_capcurriculum.curriculum.schedule import StageData, build_plan
from vlm_capcurriculum.curriculum.spec import CurriculumSpec, Mode, Order, SpecError, StageSpec, parse_curriculum

__all__ = [
    "END_ACTIONS",
    "KNOBS",
    "KNOB_OF",
    "OPERATION_OF_FIELD",
    "START_ACTIONS",
    "CurriculumData",
    "CurriculumEngine",
    "CurriculumSampler",
    "CurriculumSpec",
    "DataSlice",
    "EngineBase",
    "Mode",
    "Operation",
    "Order",
    "OverrideError",
    "Overrides",
    "Plan",
    "PlanError",
    "PlannedStage",
    "SamplerStateError",
    "SpecError",
    "StageController",
    "StageData",
    "StageRecords",
    "StageSpec",
    "StepOrderError",
    "UnsupportedOverrideError",
    "VisionTower",
    "build_plan",
    "expand_train_files",
    "load_curriculum_data",
    "parse_curriculum",
    "plan_curriculum",
    "required_operations",
    "validate_plan_for_engine",
]
