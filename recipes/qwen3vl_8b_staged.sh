#!/usr/bin/env bash
# Qwen3-VL-8B: the paper's staged recipe (ONE EasyR1 run): visual perception (15 epochs, vision tower trainable),
# then textual reasoning (15 epochs, tower frozen), then visual reasoning (15 epochs, tower trainable). Each stage
# starts with a fresh optimizer and the current policy as KL reference and ends with a Hugging Face model
# directory (<checkpoints>/stages/NN-<stage>/) and a validation.
#
# Ablations are curriculum choices, e.g. `bash recipes/qwen3vl_8b_staged.sh curriculum=order_213` (also order_321,
# stage3_only, stage1_stage3, stage2_stage3, capability_x_difficulty, difficulty, stitched_replay).
# The paper's exact protocol, one EasyR1 run per stage with the shards merged in between: backend.execution=chained
#
# Hyperparameters (recipes/config.yaml, recipes/backend/easyr1.yaml; reference UCSC-VLAA/VLM-CapCurriculum @ ccde3ff):
# lr 1e-6, low-var-KL loss with coefficient 1e-2, group size 5, responses up to 2048 tokens, 512 prompts per step,
# actor batch 128, format reward weight 0.1, the <think>...</think> \boxed{} prompt (vlm_capcurriculum/prompts/).
#
# Usage: bash recipes/qwen3vl_8b_staged.sh [overrides...] [--dry-run]
#   data:  VLMCC_STAGE1_TRAIN, VLMCC_STAGE1_IMAGE_DIR, VLMCC_STAGE2_TRAIN, VLMCC_STAGE3_TRAIN, VLMCC_STAGE3_IMAGE_DIR
#   model: VLMCC_BACKBONE_QWEN3_VL_8B (default Qwen/Qwen3-VL-8B-Instruct); GPUs: VLMCC_GPUS_PER_NODE (default 8)
set -euo pipefail
# shellcheck source=recipes/_launch.sh
source "$(dirname "${BASH_SOURCE[0]}")/_launch.sh"
vlmcc_launch qwen3_vl_8b staged "$@"
