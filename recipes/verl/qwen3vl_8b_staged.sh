#!/usr/bin/env bash
# Qwen3-VL-8B, the paper's staged recipe (perception -> text reasoning -> visual reasoning, 15/15/15 epochs), on verl (>= 0.9.1).
# The same recipe as every backend (recipes/config.yaml: batch 512, group size 5, response length 2048, lr 1e-6,
# KL 1e-2; recipes/curriculum/staged.yaml); only backend=verl differs. Needs the paper data (recipes/data/paper.yaml:
# VLMCC_STAGE1_TRAIN, VLMCC_STAGE1_IMAGE_DIR, VLMCC_STAGE2_TRAIN, VLMCC_STAGE3_TRAIN, VLMCC_STAGE3_IMAGE_DIR and a
# local VLMCC_STAGE3_VAL: verl reads local files only) and VLMCC_GPUS_PER_NODE (default 8).
#
#   bash recipes/verl/qwen3vl_8b_staged.sh --dry-run                 # write the parquet, check, print the plan
#   bash recipes/verl/qwen3vl_8b_staged.sh                           # train
#   bash recipes/verl/qwen3vl_8b_staged.sh --dry-run backend.overrides.trainer.logger=[console,wandb]
set -euo pipefail
exec vlmcc train --config "$(dirname "$0")/../config.yaml" model=qwen3_vl_8b curriculum=staged data=paper backend=verl "$@"
