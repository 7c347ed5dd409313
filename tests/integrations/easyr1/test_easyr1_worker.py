"""worker_mixin.py / worker.py: the driver-callable methods, and why the mixin must be the first base."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import easyr1_lane as lane
import pytest
import torch
from transformers import Qwen2_5_VLForConditionalGeneration

from vlm_capcurriculum.integrations.easyr1.layout import has_weights
from vlm_capcurriculum.integrations.easyr1.worker_mixin import CurriculumWorkerMixin


def test_colocated_worker_class_accepts_the_mixin_but_not_a_direct_subclass():
    """Builds EasyR1's WorkerDict (create_colocated_worker_cls) in a fresh interpreter with the vLLM stand-in."""
    script = textwrap.dedent(
        """
        import inspect
        import lane_placeholders
        lane_placeholders.install("vllm", "qwen_vl_utils")
        import ray
        from verl.single_controller.base import Worker
        from verl.single_controller.base.decorator import MAGIC_ATTR, Dispatch
        from verl.single_controller.ray import RayClassWithInitArgs, create_colocated_worker_cls
        from verl.workers.fsdp_workers import FSDPWorker
        from vlm_capcurriculum.integrations.easyr1.worker import CurriculumFSDPWorker
        from vlm_capcurriculum.integrations.easyr1.worker_mixin import CurriculumWorkerMixin

        def required(function):
            return sorted(
                name for name, p in inspect.signature(function).parameters.items()
                if name != "self" and p.default is p.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
            )

        def worker_dict(cls):
            pair = {"actor_rollout_ref": RayClassWithInitArgs(cls=ray.remote(cls), config=None, role="actor_rollout_ref")}
            return create_colocated_worker_cls(pair).cls.__ray_actor_class__

        ours = worker_dict(CurriculumFSDPWorker)
        assert ours.__base__ is CurriculumWorkerMixin and issubclass(ours, Worker)
        assert required(ours.__base__.__init__) == []  # WorkerDict calls super().__init__() without arguments
        for name in ("set_vision_trainable", "set_lr", "set_actor_knobs", "reset_optimizer",
                     "refresh_reference", "save_hf_model"):
            method = getattr(ours, "actor_rollout_ref_curriculum_" + name)
            assert getattr(method, MAGIC_ATTR)["dispatch_mode"] is Dispatch.ONE_TO_ALL, name
        assert hasattr(ours, "actor_rollout_ref_update_actor")  # EasyR1's own methods still bound

        class Direct(FSDPWorker):
            pass

        direct = worker_dict(Direct)
        print("direct base:", direct.__base__.__name__, required(direct.__base__.__init__))
        try:
            ray.remote(CurriculumFSDPWorker)  # class only; touching vLLM is what must fail
            from vllm import LLM
            LLM(model="x")
        except lane_placeholders.PlaceholderUsed as error:
            print("placeholder:", error)
        """
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.path.dirname(__file__), os.environ.get("PYTHONPATH", "")]))
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    # A direct subclass makes WorkerDict inherit FSDPWorker, whose __init__ (called with no arguments) needs both.
    assert "direct base: FSDPWorker ['config', 'role']" in result.stdout
    assert "placeholder: vllm.LLM is a lane placeholder" in result.stdout


class _ActorWorker(CurriculumWorkerMixin):
    """The mixin over the attributes FSDPWorker.init_model sets, built from the same EasyR1 components."""

    def __init__(self, model_config, tokenizer, reference: bool) -> None:
        self.fsdp_module = lane.wrap_fsdp(lane.build_model(model_config), use_orig_params=True)
        self.actor, self.optimizer, self.lr_scheduler = lane.build_actor(self.fsdp_module)
        self.ref_fsdp_module = None
        if reference:
            ref_model = lane.build_model(model_config, seed=3).to(torch.bfloat16).requires_grad_(False)
            self.ref_fsdp_module = lane.wrap_fsdp(ref_model, use_orig_params=False)
        self.processor, self.tokenizer = None, tokenizer
        self._has_actor, self._has_ref, self._is_lora = True, reference, False
        self._use_param_offload = self._use_optimizer_offload = self._use_ref_param_offload = False


@pytest.mark.usefixtures("process_group")
def test_driver_calls_on_an_actor_worker(model_config, tokenizer, batch, tmp_path):
    worker = _ActorWorker.__new__(_ActorWorker)  # Worker.__new__ reads the rank env; __init__ is ours
    worker.__init__(model_config, tokenizer, reference=True)

    assert worker.curriculum_set_vision_trainable(False) is False
    lane.train_step(worker.actor, worker.lr_scheduler, batch)
    assert worker.curriculum_set_lr(2e-4) == [pytest.approx(2e-4)]
    assert worker.curriculum_set_actor_knobs({"kl_coef": 0.02})["kl_coef"] == 0.0
    state = (worker.lr_scheduler.base_lrs[0], worker.actor.config.kl_coef, worker._curriculum_gate.trainable)
    assert state == (2e-4, 0.02, False)
    assert worker.curriculum_reset_optimizer() > 0
    tower = len(worker._curriculum_gate.parameters)  # a frozen tower keeps (fresh) state so that FSDP can save
    assert len(worker.optimizer.state) == tower
    assert worker.curriculum_refresh_reference() is True
    written = worker.curriculum_save_hf_model(str(tmp_path / "stage_2"), dtype="float32")

    assert written and has_weights(written)
    saved = Qwen2_5_VLForConditionalGeneration.from_pretrained(written).state_dict()
    reference = lane.full_state(worker.ref_fsdp_module)
    stage_start = lane.full_state(worker.fsdp_module)
    assert all(torch.equal(saved[key], value) for key, value in stage_start.items())
    assert all(torch.equal(reference[key], value.to(torch.bfloat16)) for key, value in stage_start.items())

    # resume later in the stage: the reference comes back from the stage-start export, not from the actor
    worker.curriculum_set_vision_trainable(True)
    lane.train_step(worker.actor, worker.lr_scheduler, batch)
    assert worker.curriculum_refresh_reference()  # now the reference is the moved actor...
    assert worker.curriculum_load_reference(written)  # ...and back to the stage start
    reference = lane.full_state(worker.ref_fsdp_module)
    assert all(torch.equal(reference[key], value.to(torch.bfloat16)) for key, value in stage_start.items())
