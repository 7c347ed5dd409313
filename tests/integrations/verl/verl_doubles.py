"""Stand-ins for what needs GPUs or Ray in the verl tests: the actor worker group (a recorder that accepts only the
methods the real worker class exposes to the driver), the rollout weight sync, and a real ``FSDPEngine`` object
assembled around a CPU model without its CUDA-only constructor."""

from __future__ import annotations

from typing import Any


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
        if name == "curriculum_set_vision_trainable":
            return {"trainable": args[0], "vision_parameters": 1234}
        if name == "curriculum_set_lr":
            return [args[0]]
        if name == "curriculum_set_max_grad_norm":
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
