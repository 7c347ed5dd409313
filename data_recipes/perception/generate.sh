#!/usr/bin/env bash
# Step 1 of the perception data (paper Sec. 3): one MCQ per DOCCI caption, written by Qwen2.5-72B-Instruct
# (greedy, <= 512 new tokens: reference data_pipeline/generate_qa.py).
#
#   CAPTIONS=/data/docci/docci_descriptions.jsonlines IMAGE_ROOT=/data/docci/images OUT_DIR=out \
#       bash data_recipes/perception/generate.sh
#
# SOURCE=pixmo reads PixMo-Cap instead (images fetched to IMAGE_ROOT as <sha256 of the URL>.<ext>, see
# data_recipes/README.md). SERVE=none BASE_URL=... uses a server you started.
source "$(dirname "${BASH_SOURCE[0]}")/../common.sh"

SOURCE=${SOURCE:-docci}
CAPTIONS=${CAPTIONS:?set CAPTIONS to docci_descriptions.jsonlines (or the PixMo-Cap file)}
IMAGE_ROOT=${IMAGE_ROOT:?set IMAGE_ROOT to the images folder}
OUT_DIR=${OUT_DIR:-out}
GEN_MODEL=${GEN_MODEL:-Qwen/Qwen2.5-72B-Instruct}
TP_GEN=${TP_GEN:-8}
PORT_GEN=${PORT_GEN:-8000}
CONCURRENCY=${CONCURRENCY:-64}

run mkdir -p "$OUT_DIR"
BASE_URL=${BASE_URL:-$(start_server "$GEN_MODEL" "$PORT_GEN" "$TP_GEN" --max-model-len 8192)}
run $VLMCC data generate --captions "$CAPTIONS" --source "$SOURCE" --image-root "$IMAGE_ROOT" \
    --base-url "$BASE_URL" --model "$GEN_MODEL" --concurrency "$CONCURRENCY" \
    --output "$OUT_DIR/${SOURCE}_mcq.jsonl" "$@"
stop_server "$PORT_GEN"
