#!/usr/bin/env bash
# What only a GPU node with vLLM can confirm for InternVL3/3.5 on verl (issue 15; the CPU tests cover the rest):
#   1. vLLM handles InternVL's placeholders as the processor does: the agent loop sends prompt ids whose
#      <IMG_CONTEXT> runs are already expanded, plus the images; a mismatch fails the request;
#   2. rollout and actor log-probs agree on image prompts as well as on text-only ones (integrations/verl/rollout_check.py compares the
#      image stages with the text-only stage of the same run: a different tiling or a missing image shows there);
#   3. NCCL: >= 2 FSDP ranks train through the stage switches, and the merged run mixes image and text-only samples in
#      every batch (the dummy vision forward keeps the ranks' collectives aligned).
# The sample data (data=samples), one epoch per stage (12 steps staged, 12 merged), the real 8B checkpoint:
#
#   VLMCC_GPUS_PER_NODE=2 bash recipes/gpu_checks/verl_internvl.sh                       # InternVL3-8B
#   VLMCC_GPUS_PER_NODE=2 bash recipes/gpu_checks/verl_internvl.sh model=internvl3_5_8b  # InternVL3.5-8B
#
# Needs verl >= 0.9.1 with vLLM, the checkpoint (hub or VLMCC_BACKBONE_INTERNVL3*_8B) and OUTPUT_DIR's disk (default
# outputs/gpu_checks/verl_internvl). Exit status 0 when both runs finish and rollout_check passes.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
output_dir="${OUTPUT_DIR:-$repo/outputs/gpu_checks/verl_internvl}"
case "$output_dir" in /*) ;; *) output_dir="$PWD/$output_dir" ;; esac
cd "$repo"                         # the sample data paths are relative to the repository root
dry_run=false
for arg in "$@"; do [ "$arg" = "--dry-run" ] && dry_run=true; done
for mode in staged merged; do
  VERL_FILE_LOGGER_PATH="$output_dir/$mode/metrics.jsonl" "${PYTHON:-python}" -m vlm_capcurriculum train \
    --config recipes/config.yaml model=internvl3_8b data=samples backend=verl curriculum="$mode" \
    stage_epochs.perception=1 stage_epochs.text_reasoning=1 stage_epochs.visual_reasoning=1 \
    "backend.overrides.trainer.logger=[console,file]" backend.output_dir="$output_dir/$mode" "$@"
done
$dry_run && exit 0
exec "${PYTHON:-python}" -m vlm_capcurriculum.integrations.verl.rollout_check \
  "$output_dir/staged/metrics.jsonl" "$output_dir/merged/metrics.jsonl"
