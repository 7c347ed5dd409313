#!/usr/bin/env bash
# Difficulty for the curricula (paper Sec. 4.5): pass rate of K=16 samples of Qwen3-VL-8B-Instruct at temperature 0.7,
# top-p 0.9, 1024 new tokens (reference data_pipeline/passK/run_stage{1,2,3}.sh), top-k 20 (`vlmcc data passk`'s
# default: the reference's GenerationConfig default), for each stage file, then each file's pass-rate histogram.
# Extra arguments go to every `vlmcc data passk`: `--prompt-style reference` asks as the reference did (format
# instruction as system prompt); see data_recipes/README.md.
#
#   STAGE_FILES="out/docci_perception.jsonl out/text_reasoning.jsonl out/visual_reasoning.jsonl" \
#   IMAGE_ROOTS="/data/docci/images . /data/visual" OUT_DIR=out bash data_recipes/difficulty/passk.sh
source "$(dirname "${BASH_SOURCE[0]}")/../common.sh"

STAGE_FILES=${STAGE_FILES:?set STAGE_FILES to the stage record files, space separated}
IMAGE_ROOTS=${IMAGE_ROOTS:-}
OUT_DIR=${OUT_DIR:-out}
POLICY=${POLICY:-Qwen/Qwen3-VL-8B-Instruct}
TP=${TP:-8}
PORT=${PORT:-8003}
K=${K:-16}
CONCURRENCY=${CONCURRENCY:-32}

read -r -a files <<<"$STAGE_FILES"
read -r -a roots <<<"$IMAGE_ROOTS"
BASE_URL=${BASE_URL:-$(start_server "$POLICY" "$PORT" "$TP" --limit-mm-per-prompt '{"image": 4}')}
for i in "${!files[@]}"; do
    file=${files[$i]}
    root=${roots[$i]:-$(dirname "$file")}
    name=$(basename "$file" .jsonl)
    run $VLMCC data passk --input "$file" --image-root "$root" --base-url "$BASE_URL" --model "$POLICY" \
        -k "$K" --concurrency "$CONCURRENCY" --seed 0 --output "$OUT_DIR/${name}_passk.jsonl" "$@"
    run $VLMCC data passk-report --input "$OUT_DIR/${name}_passk.jsonl" -k "$K" \
        --without-solved "$OUT_DIR/${name}_passk_unsolved.jsonl"
done
stop_server "$PORT"
