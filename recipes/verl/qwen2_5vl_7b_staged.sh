#!/usr/bin/env bash
# Qwen2.5-VL-7B, the paper's staged recipe (perception -> text reasoning -> visual reasoning, 15/15/15 epochs), on verl (>= 0.9.1).
# The same recipe as every backend (recipes/config.yaml: batch 512, group size 5, response length 2048, lr 1e-6,
# KL 1e-2; recipes/curriculum/staged.yaml); only backend=verl differs. Needs the paper data (recipes/data/paper.yaml:
# VLMCC_STAGE1_TRAIN, VLMCC_STAGE1_IMAGE_DIR, VLMCC_STAGE2_TRAIN, VLMCC_STAGE3_TRAIN, VLMCC_STAGE3_IMAGE_DIR and a
# local VLMCC_STAGE3_VAL: verl reads local files only) and VLMCC_GPUS_PER_NODE (default 8).
#
#   bash recipes/verl/qwen2_5vl_7b_staged.sh --dry-run                 # write the parquet, check, print the plan
#   bash recipes/verl/qwen2_5vl_7b_staged.sh                           # train
#   bash recipes/verl/qwen2_5vl_7b_staged.sh --dry-run backend.overrides.trainer.logger=[console,wandb]
set -euo pipefail
exec vlmcc train --config "$(dirname "$0")/../config.yaml" model=qwen2_5_vl_7b curriculum=staged data=paper backend=verl "$@"
