#!/usr/bin/env bash
# The paper's reasoning stages from their public sources: ORZ-Math-13k (Stage 2) and CLEVR-Math, GeoQA170K,
# Math-PUMA, ArxivQA (+ DocVQA) (Stage 3), each converted to our records (no model needed). Set the inputs you have;
# the others are skipped. Images embedded in parquet files are written under OUT_DIR/images/<source>.
#
#   ORZ=/data/orz_math_13k_collection_hard.json CLEVR_MATH=/data/clevr-math/train.parquet OUT_DIR=out \
#       bash data_recipes/reasoning/convert.sh
source "$(dirname "${BASH_SOURCE[0]}")/../common.sh"

OUT_DIR=${OUT_DIR:-out}
run mkdir -p "$OUT_DIR"

convert() {  # convert SOURCE INPUT IMAGE_ROOT
    local source=$1 input=$2 root=$3
    [[ -z "$input" ]] && return 0
    local args=(data convert "$source" --input "$input" --output "$OUT_DIR/${source}.jsonl")
    [[ -n "$root" ]] && args+=(--image-root "$root")
    run $VLMCC "${args[@]}"
}

convert orz "${ORZ:-}" ""
convert clevr_math "${CLEVR_MATH:-}" "${CLEVR_MATH_IMAGES:-}"
convert geoqa170k "${GEOQA:-}" "${GEOQA_IMAGES:-}"
convert math_puma "${MATH_PUMA:-}" "${MATH_PUMA_IMAGES:-}"
convert arxivqa "${ARXIVQA:-}" "${ARXIVQA_IMAGES:-}"
convert docvqa "${DOCVQA:-}" "${DOCVQA_IMAGES:-}"
