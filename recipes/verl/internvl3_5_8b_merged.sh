#!/usr/bin/env bash
# InternVL3.5-8B (OpenGVLab/InternVL3_5-8B-HF, transformers-native InternVLForConditionalGeneration), the paper's merged baseline (all data pooled, same total steps, vision tower trainable, images <= 500000 pixels), on verl (>= 0.9.1).
# The same recipe as every backend (recipes/config.yaml, recipes/curriculum/merged.yaml, recipes/model/internvl3_5_8b.yaml);
# only backend=verl differs. Needs the paper data (recipes/data/paper.yaml: VLMCC_STAGE1_TRAIN, VLMCC_STAGE1_IMAGE_DIR,
# VLMCC_STAGE2_TRAIN, VLMCC_STAGE3_TRAIN, VLMCC_STAGE3_IMAGE_DIR and a local VLMCC_STAGE3_VAL: verl reads local files
# only) and VLMCC_GPUS_PER_NODE (default 8). Ulysses sequence parallelism is refused for InternVL (not wired in verl).
#
#   bash recipes/verl/internvl3_5_8b_merged.sh --dry-run                 # write the parquet, check, print the plan
#   bash recipes/verl/internvl3_5_8b_merged.sh                           # train
set -euo pipefail
exec vlmcc train --config "$(dirname "$0")/../config.yaml" model=internvl3_5_8b curriculum=merged data=paper backend=verl "$@"
