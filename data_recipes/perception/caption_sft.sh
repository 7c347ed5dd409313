#!/usr/bin/env bash
# The caption-SFT dataset of the SFT-vs-RL perception ablation (paper Table 6): DOCCI image -> "describe the image
# in detail" -> caption, for LLaMA-Factory (as the reference run) or TRL (FORMAT=trl).
#
#   CAPTIONS=/data/docci/docci_descriptions.jsonlines IMAGE_ROOT=/data/docci/images OUT_DIR=out \
#       bash data_recipes/perception/caption_sft.sh
source "$(dirname "${BASH_SOURCE[0]}")/../common.sh"

SOURCE=${SOURCE:-docci}
CAPTIONS=${CAPTIONS:?set CAPTIONS to docci_descriptions.jsonlines}
IMAGE_ROOT=${IMAGE_ROOT:?set IMAGE_ROOT to the images folder}
OUT_DIR=${OUT_DIR:-out}
FORMAT=${FORMAT:-llamafactory}

run mkdir -p "$OUT_DIR"
run $VLMCC data caption-sft --captions "$CAPTIONS" --source "$SOURCE" --image-root "$IMAGE_ROOT" \
    --absolute-images --format "$FORMAT" --output "$OUT_DIR/${SOURCE}_caption_sft.jsonl" "$@"
