"""The training side of the entry point: Ray, EasyR1's workers and reward actors, our loader and trainer.

No hook in EasyR1: its ``verl.trainer.main.Runner`` hard-codes ``FSDPWorker``, ``create_dataloader`` and
``RayPPOTrainer``, so we build the same pieces with ours. Importing this module imports Ray and EasyR1's trainer,
hence vLLM: training machines only.
"""

from __future__ import annotations

import json
from typing import Any

import ray
from verl.single_controller.ray import RayWorkerGroup
from verl.trainer.ray_trainer import ResourcePoolManager, Role

from vlm_capcurriculum.curriculum import Plan

from .data import load_tokenizer_and_processor, train_dataloader, val_dataloader
from .reward import CurriculumRewardManager
from .trainer import CurriculumRayPPOTrainer
from .worker import CurriculumFSDPWorker

#: The environment ``verl.trainer.main.main`` gives its Ray workers (EasyR1 @ b44b311).
RAY_ENV_VARS = {
    "TOKENIZERS_PARALLELISM": "true",
    "NCCL_DEBUG": "WARN",
    "VLLM_LOGGING_LEVEL": "WARN",
    "TORCH_NCCL_AVOID_RECORD_STREAMS": "1",
    "PYTORCH_CUDA_ALLOC_CONF": "expandable_segments:False",
    "CUDA_DEVICE_MAX_CONNECTIONS": "1",
    "VLLM_ALLREDUCE_USE_SYMM_MEM": "0",
}


def build_trainer(config: Any, plan: Plan, train_file: str) -> CurriculumRayPPOTrainer:
    """Everything ``verl.trainer.main.Runner.run`` builds, with our worker, loader, reward actor and trainer."""
    tokenizer, processor = load_tokenizer_and_processor(config)
    worker = ray.remote(CurriculumFSDPWorker)
    pool = "global_pool"
    resource_pool_manager = ResourcePoolManager(
        resource_pool_spec={pool: [config.trainer.n_gpus_per_node] * config.trainer.nnodes},
        mapping={Role.ActorRolloutRef: pool, Role.Critic: pool},
    )
    reward_actor = ray.remote(CurriculumRewardManager).options(num_cpus=config.worker.reward.num_cpus)
    reward_fn = reward_actor.remote(config.worker.reward, tokenizer)
    val_reward_fn = reward_actor.remote(config.worker.reward, tokenizer)

    return CurriculumRayPPOTrainer(
        config=config,
        tokenizer=tokenizer,
        processor=processor,
        train_dataloader=train_dataloader(config, tokenizer, processor, plan, train_file),
        val_dataloader=val_dataloader(config, tokenizer, processor),
        # one class for both roles: create_colocated_worker_cls needs one __ray_actor_class__.__base__ per pool
        role_worker_mapping={Role.ActorRolloutRef: worker, Role.Critic: worker},
        resource_pool_manager=resource_pool_manager,
        ray_worker_group_cls=RayWorkerGroup,
        reward_fn=reward_fn,
        val_reward_fn=val_reward_fn,
        plan=plan,
    )


@ray.remote(num_cpus=1)  # as EasyR1's Runner: keep the driver off the head node's GPU slots
class CurriculumRunner:
    def run(self, config: Any, plan: Plan, train_file: str) -> None:
        print(json.dumps(config.to_dict(), indent=2))
        trainer = build_trainer(config, plan, train_file)
        trainer.init_workers()
        trainer.fit()


def train(config: Any, plan: Plan, train_file: str) -> None:
    """Start Ray (unless already running) and train the plan."""
    if not ray.is_initialized():
        ray.init(runtime_env={"env_vars": RAY_ENV_VARS})
    runner = CurriculumRunner.remote()
    ray.get(runner.run.remote(config, plan, train_file))
    if config.trainer.ray_timeline is not None:
        ray.timeline(filename=config.trainer.ray_timeline)
