"""Runs our EasyR1 entry point on a CPU (a subprocess of test_easyr1_e2e_cpu.py; never import it in the test process).

``python cpu_harness.py config=FILE.yaml [key=value ...]`` is ``python -m vlm_capcurriculum.integrations.easyr1``
with a local Ray that (1) declares ``trainer.n_gpus_per_node`` logical GPUs, because EasyR1's resource pool
always asks for GPUs, and (2) runs :func:`cpu_worker.setup_process` in every Ray worker process (the vLLM
placeholder, the CPU patches, our runner building :class:`cpu_worker.CPUCurriculumFSDPWorker`). Everything else
is the product: our ``main.main``, EasyR1's ``fit`` and workers, our trainer, engine, loaders and reward actors.

``python cpu_harness.py --chain config=FILE.yaml curriculum.execution=chained``: the chained execution through the
same entry point, each stage's EasyR1 run started as ``python cpu_harness.py config=<stage config>`` (the one
process-local change: ``chained.stage_command``) instead of ``python -m vlm_capcurriculum.integrations.easyr1``.

``VLMCC_LANE_KILL_AT_STEP=K`` kills the trainer's process (SIGKILL, no clean-up) when step ``K`` begins, as a
preempted job dies; the run's checkpoints and files stay as they were.
"""

from __future__ import annotations

import os
import sys

import cpu_worker  # installs the vLLM placeholder first
import easyr1_lane
import ray

from vlm_capcurriculum.integrations.easyr1 import main
from vlm_capcurriculum.integrations.easyr1.runner import RAY_ENV_VARS

KILL_AT_STEP = "VLMCC_LANE_KILL_AT_STEP"


def start_ray() -> None:
    repo = os.path.dirname(os.path.dirname(os.path.dirname(cpu_worker.lane_dir())))
    path = os.pathsep.join([cpu_worker.lane_dir(), repo, os.environ.get("PYTHONPATH", "")])
    env = {**RAY_ENV_VARS, "PYTHONPATH": path, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    if os.environ.get(KILL_AT_STEP):
        env[KILL_AT_STEP] = os.environ[KILL_AT_STEP]
    ray.init(
        num_cpus=8,  # logical: the runner, two reward actors, the worker group (the machine has 2 cores)
        num_gpus=int(os.environ.get("VLMCC_LANE_GPUS", "1")),
        include_dashboard=False,
        runtime_env={"env_vars": env, "worker_process_setup_hook": "cpu_worker.setup_process"},
    )


def stage_command(config_file: str | os.PathLike[str]) -> list[str]:
    return [sys.executable, os.path.abspath(__file__), f"config={config_file}"]


def main_cpu(argv: list[str]) -> int:
    easyr1_lane.register_processor()  # the lane's image-only Qwen2.5-VL processor (no torchvision)
    if "--chain" in argv:  # the parent of a chain starts no Ray: every stage is its own process
        from vlm_capcurriculum.integrations.easyr1 import chained

        chained.stage_command = stage_command
        return main.main([arg for arg in argv if arg != "--chain"])
    start_ray()
    try:
        return main.main(argv)
    finally:
        ray.shutdown()


if __name__ == "__main__":
    sys.exit(main_cpu(sys.argv[1:]))
