#!/usr/bin/env bash
# CPU quick start: the paper's staged curriculum (perception -> text reasoning -> visual reasoning, 15/15/15 epochs,
# every stage transition, stage checkpoints and validation) on a tiny Qwen3-VL and the bundled sample data, in one
# TRL GRPO run on a CPU. Prints the plan first and a per-stage table at the end.
#
#   bash recipes/quickstart_cpu.sh                                        # outputs in outputs/quickstart_cpu
#   OUTPUT_DIR=/tmp/qs bash recipes/quickstart_cpu.sh model=tiny_qwen2_5_vl curriculum=merged
#   bash recipes/quickstart_cpu.sh backend=verl                           # verl's real trainer and workers (Ray)
#   bash recipes/quickstart_cpu.sh backend=verl model=tiny_internvl3      # also tiny_internvl3_5, tiny_qwen2_5_vl
#
# backend=verl runs verl's own trainer, FSDP workers and our plugin on the CPU (backend.device=cpu: gloo ranks, a
# transformers-generate rollout). It is a SMOKE TEST of the verl path, not training: a tiny model, one thread.
#
# Arguments are Hydra-style overrides of recipes/config.yaml. Re-running with the same OUTPUT_DIR resumes from
# the newest checkpoint there (backend.resume=auto); use a new OUTPUT_DIR to start over.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
output_dir="${OUTPUT_DIR:-$repo/outputs/quickstart_cpu}"
case "$output_dir" in /*) ;; *) output_dir="$PWD/$output_dir" ;; esac   # relative to where you ran it
cd "$repo"                         # the sample data paths are relative to the repository root
export OUTPUT_DIR="$output_dir"
export HF_HUB_OFFLINE=1            # tiny models are built locally; nothing is downloaded
# Tiny models run thousands of small ops: one thread each is fastest (more threads contend, badly on a busy machine).
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
for arg in "$@"; do
  if [ "$arg" = "backend=verl" ]; then
    exec "${PYTHON:-python}" -m vlm_capcurriculum train --config recipes/config.yaml \
      model=tiny_qwen3_vl data=samples backend.device=cpu backend.output_dir="$output_dir" \
      "$@"
  fi
done
exec "${PYTHON:-python}" -m vlm_capcurriculum train --config recipes/config.yaml \
  backend=trl model=tiny_qwen3_vl data=samples \
  backend.device=cpu backend.micro_batch_size=null backend.grpo.gradient_checkpointing=false \
  "$@"
