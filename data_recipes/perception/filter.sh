#!/usr/bin/env bash
# Step 2 of the perception data (paper Sec. 3): keep a question iff Qwen2.5-VL-7B-Instruct AND Qwen2.5-VL-32B-Instruct
# both answer it wrongly from the image and rightly from the caption (greedy; reference filter_perception.py).
# One server per model (the 7B and the 32B side by side), or SERVE=none with BASE_URL_A / BASE_URL_B.
#
#   IMAGE_ROOT=/data/docci/images OUT_DIR=out bash data_recipes/perception/filter.sh
source "$(dirname "${BASH_SOURCE[0]}")/../common.sh"

SOURCE=${SOURCE:-docci}
IMAGE_ROOT=${IMAGE_ROOT:?set IMAGE_ROOT to the images folder}
OUT_DIR=${OUT_DIR:-out}
MCQ=${MCQ:-$OUT_DIR/${SOURCE}_mcq.jsonl}
FILTER_MODEL_A=${FILTER_MODEL_A:-Qwen/Qwen2.5-VL-7B-Instruct}
FILTER_MODEL_B=${FILTER_MODEL_B:-Qwen/Qwen2.5-VL-32B-Instruct}
TP_A=${TP_A:-2}
TP_B=${TP_B:-4}
PORT_A=${PORT_A:-8001}
PORT_B=${PORT_B:-8002}
CONCURRENCY=${CONCURRENCY:-64}

BASE_URL_A=${BASE_URL_A:-$(start_server "$FILTER_MODEL_A" "$PORT_A" "$TP_A" --limit-mm-per-prompt '{"image": 1}')}
BASE_URL_B=${BASE_URL_B:-$(start_server "$FILTER_MODEL_B" "$PORT_B" "$TP_B" --limit-mm-per-prompt '{"image": 1}')}
run $VLMCC data filter --input "$MCQ" --image-root "$IMAGE_ROOT" \
    --model "$FILTER_MODEL_A" --base-url "$BASE_URL_A" \
    --model "$FILTER_MODEL_B" --base-url "$BASE_URL_B" \
    --concurrency "$CONCURRENCY" --output "$OUT_DIR/${SOURCE}_perception.jsonl" "$@"
stop_server "$PORT_A"
stop_server "$PORT_B"
