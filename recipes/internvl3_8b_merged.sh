#!/usr/bin/env bash
# InternVL3-8B (transformers-native checkpoint): the paper's merged baseline (one EasyR1 run): the three stages' data
# pooled and shuffled, trained for the staged recipe's total number of steps with the vision tower trainable
# (reference internvl3_8b/merged_baseline.sh: freeze_vision_tower=false) and images capped at 500000 pixels
# (data.max_pixels=500000 there; recipes/model/internvl3_8b.yaml merged_max_pixels).
#
# On EasyR1 @ b44b311 (the default backend) our worker applies the InternVL fixes at run time (docs/integrations/
# easyr1.md); the same recipe runs on verl (`backend=verl`, or recipes/verl/internvl3_8b_merged.sh) or TRL on one GPU (`backend=trl`).
#
# Usage: bash recipes/internvl3_8b_merged.sh [overrides...] [--dry-run]       e.g. --dry-run backend=verl
#   data:  VLMCC_STAGE1_TRAIN, VLMCC_STAGE1_IMAGE_DIR, VLMCC_STAGE2_TRAIN, VLMCC_STAGE3_TRAIN, VLMCC_STAGE3_IMAGE_DIR
#   model: VLMCC_BACKBONE_INTERNVL3_8B (default OpenGVLab/InternVL3-8B-hf); GPUs: VLMCC_GPUS_PER_NODE (default 8)
set -euo pipefail
# shellcheck source=recipes/_launch.sh
source "$(dirname "${BASH_SOURCE[0]}")/_launch.sh"
vlmcc_launch internvl3_8b merged "$@"
