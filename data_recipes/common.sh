# Shared by the data-recipe launchers (sourced, not run).
#
# VLMCC           the command line (default: vlmcc; "python -m vlm_capcurriculum" works from a checkout)
# DRY_RUN=1       print the commands instead of running them (no GPU, no server needed)
# SERVE           how a model server is started: "vllm" (default, `vllm serve`) or "none" (use BASE_URL_* as given)

set -euo pipefail

VLMCC=${VLMCC:-vlmcc}
DRY_RUN=${DRY_RUN:-0}
SERVE=${SERVE:-vllm}

run() {
    if [[ "$DRY_RUN" == 1 ]]; then
        printf '+'; printf ' %q' "$@"; printf '\n'
    else
        "$@"
    fi
}

# start_server MODEL PORT TP [extra vllm args...]: start `vllm serve` in the background, wait until it answers,
# and print its base URL. SERVE=none skips starting and prints http://localhost:PORT/v1.
start_server() {
    local model=$1 port=$2 tp=$3
    shift 3
    local url="http://localhost:${port}/v1"
    if [[ "$SERVE" == none || "$DRY_RUN" == 1 ]]; then
        [[ "$DRY_RUN" == 1 && "$SERVE" != none ]] && printf '+ vllm serve %q --port %q --tensor-parallel-size %q %s &\n' "$model" "$port" "$tp" "$*" >&2
        echo "$url"
        return
    fi
    vllm serve "$model" --port "$port" --tensor-parallel-size "$tp" "$@" >"server-${port}.log" 2>&1 &
    echo $! >"server-${port}.pid"
    for _ in $(seq 1 720); do
        if curl -sf "http://localhost:${port}/health" >/dev/null; then
            echo "$url"
            return
        fi
        sleep 5
    done
    echo "server for $model on port $port did not come up; see server-${port}.log" >&2
    return 1
}

# stop_server PORT: stop a server start_server started.
stop_server() {
    local pidfile="server-$1.pid"
    if [[ -f "$pidfile" ]]; then
        kill "$(cat "$pidfile")" 2>/dev/null || true
        rm -f "$pidfile"
    fi
}
