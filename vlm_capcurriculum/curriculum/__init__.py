"""The capability curriculum: spec, schedule, resumable sampler, engine protocol and stage controller. How a
backend launcher uses them: recipes/README.md, "Contract for backends".
"""

from vlm_capcurriculum.curriculum.controller import StageController, StepOrderError
from vlm_capcurriculum.curriculum.data import (
    CurriculumData,
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
    KNOBS,
    START_ACTIONS,
    OverrideError,
    Overrides,
    VisionTower,
)
from vlm_capcurriculum.curriculum.plan import Plan, PlanError, PlannedStage
from vlm_capcurriculum.curriculum.sampler import CurriculumSampler, SamplerStateError
from vlm_capcurriculum.curriculum.schedule import StageData, build_plan
from vlm_capcurriculum.curriculum.spec import CurriculumSpec, Mode, Order, SpecError, StageSpec, parse_curriculum

__all__ = [
    "END_ACTIONS",
    "KNOBS",
    "OPERATION_OF_FIELD",
    "START_ACTIONS",
    "CurriculumData",
    "CurriculumEngine",
    "CurriculumSampler",
    "CurriculumSpec",
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
