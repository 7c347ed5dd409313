# Shared by the headline-run scripts (recipes/*_staged.sh, *_merged.sh); not meant to be run directly.
#
#   vlmcc_launch MODEL CURRICULUM [overrides...] [--dry-run]
#
# Composes recipes/config.yaml with model=MODEL, curriculum=CURRICULUM, data=paper and backend=easyr1 (the paper
# trained with EasyR1), any of which an argument `curriculum=...`, `data=...`, `backend=...` replaces: so
# `bash recipes/qwen3vl_8b_staged.sh curriculum=order_213` runs the stage-order ablation. The EasyR1 run is named
# ${VLMCC_RUN_NAME:-MODEL_CURRICULUM} (checkpoints under ${VLMCC_OUTPUT_DIR:-checkpoints}/vlm-capcurriculum/<name>).
# Data (data=paper) comes from VLMCC_STAGE1_TRAIN, VLMCC_STAGE1_IMAGE_DIR, VLMCC_STAGE2_TRAIN, VLMCC_STAGE3_TRAIN,
# VLMCC_STAGE3_IMAGE_DIR (and optionally VLMCC_STAGE3_VAL); an unset one is reported by name.
# Works from any directory; relative data paths are read relative to the current directory.

vlmcc_launch() {
    local model=$1 curriculum=$2
    shift 2
    local data=paper backend=easyr1 args=() arg
    for arg in "$@"; do
        case $arg in
            curriculum=*) curriculum=${arg#*=} ;;
            data=*) data=${arg#*=} ;;
            backend=*) backend=${arg#*=} ;;
            *) args+=("$arg") ;;
        esac
    done
    local recipes
    recipes=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
    local run_name=${VLMCC_RUN_NAME:-${model}_${curriculum}}
    if [[ $backend == easyr1 ]]; then
        args=("backend.easyr1.trainer.experiment_name=$run_name" "${args[@]}")
    fi
    exec "${PYTHON:-python}" -m vlm_capcurriculum train --config "$recipes/config.yaml" \
        "model=$model" "curriculum=$curriculum" "data=$data" "backend=$backend" "${args[@]}"
}
