#!/usr/bin/env bash
# The paper's headline run: Qwen3-VL-8B-Instruct, staged curriculum, on the released stage data (data=paper reads
# the VLMCC_STAGE*_ variables, see recipes/README.md). Extra arguments are Hydra-style overrides, e.g.
#
#   bash recipes/qwen3vl_8b_staged.sh backend=trl backend.micro_batch_size=4     # one GPU, TRL (see README)
#   bash recipes/qwen3vl_8b_staged.sh --dry-run                                  # print the plan, load nothing
set -euo pipefail
exec "${PYTHON:-python}" -m vlm_capcurriculum train --config "$(dirname "$0")/config.yaml" \
  model=qwen3_vl_8b curriculum=staged data=paper "$@"
