#!/usr/bin/env bash
# Qwen2.5-VL-7B: the paper's merged baseline (one EasyR1 run): the three stages' data pooled and shuffled, trained
# for the staged recipe's total number of steps, vision tower frozen throughout (reference merged_baseline.sh:
# freeze_vision_tower=true; here EasyR1's own freeze, since no stage trains the tower).
#
# Hyperparameters (recipes/config.yaml, recipes/backend/easyr1.yaml; reference UCSC-VLAA/VLM-CapCurriculum @ ccde3ff):
# lr 1e-6, low-var-KL loss with coefficient 1e-2, group size 5, responses up to 2048 tokens, 512 prompts per step,
# actor batch 128, format reward weight 0.1, the <think>...</think> \boxed{} prompt (vlm_capcurriculum/prompts/).
#
# Usage: bash recipes/qwen2_5vl_7b_merged.sh [overrides...] [--dry-run]
#   data:  VLMCC_STAGE1_TRAIN, VLMCC_STAGE1_IMAGE_DIR, VLMCC_STAGE2_TRAIN, VLMCC_STAGE3_TRAIN, VLMCC_STAGE3_IMAGE_DIR
#   model: VLMCC_BACKBONE_QWEN2_5_VL_7B (default Qwen/Qwen2.5-VL-7B-Instruct); GPUs: VLMCC_GPUS_PER_NODE (default 8)
set -euo pipefail
# shellcheck source=recipes/_launch.sh
source "$(dirname "${BASH_SOURCE[0]}")/_launch.sh"
vlmcc_launch qwen2_5_vl_7b merged "$@"
