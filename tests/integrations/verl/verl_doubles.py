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
                engine.restore_reference(self.current["name"])
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

    def __init__(self, worker_cls: type | None = None, events: list[tuple[Any, ...]] | None = None) -> None:
        from verl.single_controller.base.decorator import MAGIC_ATTR

        from vlm_capcurriculum.integrations.verl.worker import CapCurriculumActorRolloutRefWorker

        cls = worker_cls or CapCurriculumActorRolloutRefWorker
        self.registered = {name for name in dir(cls) if hasattr(getattr(cls, name, None), MAGIC_ATTR)}
        self.calls: list[tuple[str, tuple, dict]] = []
        self.events = events if events is not None else []

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_") or name not in self.registered:
            raise AttributeError(f"the actor worker group has no driver-callable method {name!r}")

        def call(*args: Any, **kwargs: Any) -> list[Any]:
            self.calls.append((name, args, kwargs))
            self.events.append(("worker", name))
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


def make_engine(module: Any, *, lr: float = 1e-2, warmup_steps: int = 0, checkpoint_manager: Any = None) -> Any:
    """A real ``verl.workers.engine.fsdp.transformer_impl.FSDPEngine`` object around ``module``, assembled without
    its constructor (which needs a CUDA device mesh): verl's own optimizer (``build_optimizer``) and LR scheduler
    (``FSDPEngine._build_lr_scheduler``), so ``optimizer_step`` (clip, then step), ``lr_scheduler_step`` and
    ``eval_mode`` are verl's code."""
    from verl.workers.config import FSDPEngineConfig, FSDPOptimizerConfig
    from verl.workers.config.optimizer import build_optimizer
    from verl.workers.engine.fsdp.transformer_impl import FSDPEngine

    engine = object.__new__(FSDPEngine)
    engine.module = module
    engine.rank = 0
    engine.scaler = None
    engine._qat_enabled = False
    engine._is_offload_param = False
    engine._is_offload_optimizer = False
    # Parameters live on CPU here, as with FSDP2's CPUOffloadPolicy: save_checkpoint must not move them to CUDA.
    engine._uses_fsdp2_cpu_offload_policy = True
    engine.ulysses_parallel_group = None
    engine.engine_config = FSDPEngineConfig()
    engine.optimizer_config = FSDPOptimizerConfig(
        lr=lr, weight_decay=0.1, clip_grad=1.0, total_training_steps=100, lr_warmup_steps=warmup_steps
    )
    engine.optimizer = build_optimizer(module.parameters(), engine.optimizer_config)
    engine.lr_scheduler = engine._build_lr_scheduler(engine.optimizer)
    engine.checkpoint_manager = checkpoint_manager
    return engine


def vl_inputs(processor: Any, colour: str = "red", seed: int = 0) -> dict[str, Any]:
    """One image+text training example for the tiny model (labels = input ids), built by the tiny processor."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (56, 56), "white")
    ImageDraw.Draw(image).rectangle((4 + seed, 4, 40, 30), fill=colour)
    messages = [
        {"role": "user", "content": [{"type": "image", "image": image}, {"type": "text", "text": "What colour?"}]}
    ]
    text = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False) + "red"
    inputs = dict(processor(text=[text], images=[image], return_tensors="pt"))
    inputs.pop("mm_token_type_ids", None)
    inputs["labels"] = inputs["input_ids"].clone()
    return inputs
