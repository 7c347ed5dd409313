#!/usr/bin/env bash
# InternVL3-8B (transformers-native checkpoint): the paper's staged recipe (ONE EasyR1 run): visual perception
# (16 epochs, vision tower trainable), then textual reasoning (15 epochs, tower frozen), then visual reasoning
# (15 epochs, tower trainable), each stage with a fresh optimizer, the current policy as KL reference, a Hugging Face
# model directory and a validation at its end.
# Stage 2 is damped against entropy explosion (reference internvl3_8b/stage2_text_reasoning.sh, recipes/model/
# internvl3_8b.yaml): lr 3e-7 with a 0.05 warm-up of the stage's own steps, KL 5e-2, clip ratios 0.15, grad norm 0.5.
# Prompts up to 4096 tokens and optimizer offload (reference stage 1/3 scripts; recipes/model/internvl3_8b.yaml).
#
# On EasyR1 @ b44b311 (the default backend) our worker applies the InternVL fixes at run time (docs/integrations/
# easyr1.md); the same recipe runs on verl (`backend=verl`, or recipes/verl/internvl3_8b_staged.sh) or TRL on one GPU (`backend=trl`).
#
# Usage: bash recipes/internvl3_8b_staged.sh [overrides...] [--dry-run]       e.g. --dry-run backend=verl
#   data:  VLMCC_STAGE1_TRAIN, VLMCC_STAGE1_IMAGE_DIR, VLMCC_STAGE2_TRAIN, VLMCC_STAGE3_TRAIN, VLMCC_STAGE3_IMAGE_DIR
#   model: VLMCC_BACKBONE_INTERNVL3_8B (default OpenGVLab/InternVL3-8B-hf); GPUs: VLMCC_GPUS_PER_NODE (default 8)
set -euo pipefail
# shellcheck source=recipes/_launch.sh
source "$(dirname "${BASH_SOURCE[0]}")/_launch.sh"
vlmcc_launch internvl3_8b staged "$@"
