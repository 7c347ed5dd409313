#!/usr/bin/env bash
# The opt-in EasyR1 test lane: `tests/integrations/easyr1/run_lane.sh EASYR1_SRC [pytest args...]`.
#
# EasyR1 is not on PyPI and installs as the package `verl` (clashing with volcengine verl, which CI installs), so
# its tests run in their own virtual environment, outside the repository:
#   ${VLMCC_EASYR1_LANE_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/vlmcc-easyr1-lane/venv}
# It gets: the local CPU wheel torch==2.13.0 first (never a CUDA build); EasyR1's requirements.txt minus
#   vllm         (GPU only; it also pins its own CUDA torch)
#   flash-attn   (builds against CUDA; EasyR1 imports it only inside try/except)
#   liger-kernel (needs triton/GPU; EasyR1 @ b44b311 never imports it)
# plus fixes for EasyR1 @ b44b311: omegaconf<2.4 (2.4 rejects its `logger: Tuple[str] = ("console", "wandb")`,
# so even `verl.trainer.main` fails), einops (imported by verl/workers/actor/dp_actor.py) and msgspec (imported by
# verl/utils/vllm_utils.py), both missing from its requirements because vLLM brings them; then EasyR1 itself from
# EASYR1_SRC, this package (`pip install -e`, no extras) and pytest.
# EasyR1's requirements do not pin torch, so torch 2.13 does not conflict with them (on GPU machines vLLM's
# own torch pin decides).
set -euo pipefail

if [[ $# -lt 1 || ! -d $1 ]]; then
    echo "usage: $0 EASYR1_SRC [pytest args...]   (EASYR1_SRC: a checkout of hiyouga/EasyR1)" >&2
    exit 2
fi
EASYR1_SRC=$(cd "$1" && pwd)
shift
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
VENV=${VLMCC_EASYR1_LANE_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/vlmcc-easyr1-lane/venv}

for required in requirements.txt setup.py verl/trainer/ray_trainer.py verl/trainer/data_loader.py; do
    if [[ ! -f $EASYR1_SRC/$required ]]; then
        echo "error: $EASYR1_SRC is not an EasyR1 checkout ($required is missing)" >&2
        exit 2
    fi
done
case "$(realpath -m "$VENV")/" in
    "$REPO"/*) echo "error: the lane's virtual environment must live outside the repository ($VENV)" >&2; exit 2 ;;
esac

start=$SECONDS
if [[ ! -x $VENV/bin/python ]]; then
    python3 -m venv "$VENV"
fi
# shellcheck disable=SC1091
source "$VENV/bin/activate"
pip() { python -m pip --quiet --disable-pip-version-check "$@"; }

pip install --upgrade pip
pip install torch==2.13.0
requirements=$(mktemp)
trap 'rm -f "$requirements"' EXIT
grep -v -E '^[[:space:]]*(vllm|flash[-_]attn|liger[-_]kernel)([[:space:]<>=!~;[]|$)' "$EASYR1_SRC/requirements.txt" >"$requirements"
pip install -r "$requirements" "omegaconf>=2.3,<2.4" einops msgspec pytest
pip install --no-deps --force-reinstall "$EASYR1_SRC"
pip install -e "$REPO"

python - <<'PY'
import importlib.util

import torch
import verl

assert torch.__version__.startswith("2.13.0") and "+cpu" in torch.__version__, torch.__version__
assert importlib.util.find_spec("vllm") is None, "vLLM must not be installed in the lane"
print(f"lane: torch {torch.__version__}, EasyR1 (verl) {verl.__version__} at {verl.__file__}")
PY
echo "lane: environment ready in $((SECONDS - start)) s ($VENV)"

cd "$REPO"
export EASYR1_SRC
tests_start=$SECONDS
status=0
python -m pytest tests/integrations/easyr1 -p no:cacheprovider "$@" || status=$?
echo "lane: tests took $((SECONDS - tests_start)) s, total $((SECONDS - start)) s"
exit $status
