"""Test stand-ins for what the curriculum core will provide through ``curriculum.driver`` and ``curriculum.order``.

The curriculum block read here is a test format: ``curriculum.stages`` = ``[{name, file_index, epochs, overrides,
at_end}]``. The driver applies a stage's ``overrides`` when the stage starts and its ``at_end`` actions
(``save_checkpoint``, ``validate``) after its last update, through the real :class:`VerlEngine`; it is loaded by
file path through verl's ``load_extern_object``, exactly as the real factories will be.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


def _stages(curriculum: Any) -> list[dict[str, Any]]:
    from omegaconf import OmegaConf

    return OmegaConf.to_container(curriculum.stages, resolve=True)


def reversed_stage_order(curriculum: Any, files: Sequence[str], rows_per_file: Sequence[int]) -> list[int]:
    """Each stage's file, ``epochs`` times, rows in reverse (so the plan's order differs from the files')."""
    offsets = [sum(rows_per_file[:i]) for i in range(len(rows_per_file))]
    order: list[int] = []
    for stage in _stages(curriculum):
        first, rows = offsets[stage["file_index"]], rows_per_file[stage["file_index"]]
        for _ in range(stage["epochs"]):
            order.extend(range(first + rows - 1, first - 1, -1))
    return order


class ScriptedStageDriver:
    """Knows each stage's step range (batch size ``curriculum.batch_size``) and records every call."""

    def __init__(self, curriculum: Any, engine: Any) -> None:
        self.engine = engine
        self.calls: list[tuple[Any, ...]] = []
        self.stages = _stages(curriculum)
        batch_size = curriculum.batch_size
        step = 1
        for index, stage in enumerate(self.stages):
            engine.check_overrides(stage.get("overrides", {}), where=f"stage {stage['name']!r}")
            rows = stage["rows"] * stage["epochs"]
            stage["index"], stage["first"], stage["last"] = index, step, step + rows // batch_size - 1
            step = stage["last"] + 1

    def stage_at(self, step: int) -> dict[str, Any]:
        return next(stage for stage in self.stages if stage["first"] <= step <= stage["last"])

    def _apply(self, overrides: Mapping[str, Any], *, resumed: bool) -> None:
        engine = self.engine
        if "vision_tower" in overrides:
            engine.set_vision_trainable(overrides["vision_tower"] == "trainable")
        if "lr" in overrides:
            engine.set_lr(overrides["lr"])
        loss = {k: overrides[k] for k in ("kl_coef", "clip_ratio_low", "clip_ratio_high") if k in overrides}
        if loss:
            engine.set_loss(**loss)
        if "max_grad_norm" in overrides:
            engine.set_max_grad_norm(overrides["max_grad_norm"])
        if overrides.get("reset_optimizer") and not resumed:
            engine.reset_optimizer()
        if overrides.get("refresh_reference"):
            if resumed:
                engine.restore_reference(engine._curriculum_dir(f"reference_{self.current['name']}.pt"))
            else:
                engine.refresh_reference(self.current["name"])

    def on_train_begin(self, global_step: int) -> None:
        self.calls.append(("train_begin", global_step))
        self.current = self.stage_at(global_step)
        if global_step > self.current["first"]:  # resumed inside the stage: re-apply its state
            self._apply(self.current.get("overrides", {}), resumed=True)

    def on_step_begin(self, global_step: int) -> None:
        self.calls.append(("step_begin", global_step))
        self.current = self.stage_at(global_step)
        if global_step == self.current["first"]:
            self._apply(self.current.get("overrides", {}), resumed=False)

    def on_step_end(self, global_step: int, metrics: Mapping[str, Any]) -> Mapping[str, float]:
        self.calls.append(("step_end", global_step, "actor/pg_loss" in metrics))
        stage = self.stage_at(global_step)
        if global_step == stage["last"]:
            at_end = stage.get("at_end", {})
            if at_end.get("save_checkpoint"):
                self.engine.save_checkpoint(stage["name"])
            if at_end.get("validate"):
                self.engine.validate()
        return {"curriculum/stage": float(stage["index"]), "curriculum/stage_step": float(global_step - stage["first"])}


def recording_driver(curriculum: Any, engine: Any) -> ScriptedStageDriver:
    return ScriptedStageDriver(curriculum, engine)


class RecordingWorkerGroup:
    """Stands where verl's actor ``RayWorkerGroup`` would be (one rank): records every call, and refuses methods
    that the real worker class does not expose to the driver (so the driver cannot call something that does not
    exist)."""

    def __init__(self, worker_cls: type | None = None) -> None:
        from verl.single_controller.base.decorator import MAGIC_ATTR

        from vlm_capcurriculum.integrations.verl.worker import CapCurriculumActorRolloutRefWorker

        cls = worker_cls or CapCurriculumActorRolloutRefWorker
        self.registered = {name for name in dir(cls) if hasattr(getattr(cls, name, None), MAGIC_ATTR)}
        self.calls: list[tuple[str, tuple, dict]] = []

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_") or name not in self.registered:
            raise AttributeError(f"the actor worker group has no driver-callable method {name!r}")

        def call(*args: Any, **kwargs: Any) -> list[Any]:
            self.calls.append((name, args, kwargs))
            return [self._result(name, args)]

        return call

    @staticmethod
    def _result(name: str, args: tuple) -> Any:
        if name == "cc_set_vision_trainable":
            return {"trainable": args[0], "vision_parameters": 1234}
        if name == "cc_set_lr":
            return [args[0]]
        if name == "cc_set_max_grad_norm":
            return args[0]
        return None

    def names(self) -> list[str]:
        return [name for name, _, _ in self.calls]


class RecordingCheckpointManager:
    """Stands where verl's ``CheckpointEngineManager`` (trainer -> rollout weight sync) would be."""

    def __init__(self, events: list[tuple[Any, ...]]) -> None:
        self.events = events

    def update_weights(self, global_steps: int | None = None) -> None:
        self.events.append(("update_weights", global_steps))

    def sleep_replicas(self) -> None:
        self.events.append(("sleep_replicas",))
