#!/usr/bin/env bash
# Serve the corpus flow's deployments: a Prefect server on 127.0.0.1, the process work pool, the
# deployments of deploy/prefect.yaml and a worker on the pool, in the foreground until Ctrl-C.
#
# Usage: deploy/serve.sh [PORT]      (or MATCHFLOW_PORT; default 4200)
# Environment: MATCHFLOW_WORKER_LIMIT (flow runs at once, default 1: each run starts its own Dask
# cluster), PREFECT_HOME (server database and settings), AWS_* (S3 credentials of the flow runs),
# MATCHFLOW_BIN (the folder of python and prefect, default .venv/bin), MATCHFLOW_SERVER_TIMEOUT (seconds
# the server may take to become healthy, default 120).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN="${MATCHFLOW_BIN:-$ROOT/.venv/bin}"
PORT="${1:-${MATCHFLOW_PORT:-4200}}"
POOL=matchflow-process
cd "$ROOT"

# Quiet and offline (matchflow.prefect_env.QUIET_OFFLINE); values already in the environment win.
while IFS='=' read -r key value; do
    [[ -n "${!key:-}" ]] || export "$key=$value"
done < <("$BIN/python" -c 'from matchflow.prefect_env import QUIET_OFFLINE as q; print("\n".join(f"{k}={v}" for k, v in q.items()))')

export PREFECT_API_URL="http://127.0.0.1:$PORT/api"

log() { printf 'matchflow serve: %s\n' "$*" >&2; }

children=()

descendants() {  # every process below PID
    local pid="$1" child
    for child in $(pgrep -P "$pid" 2>/dev/null || true); do
        echo "$child"
        descendants "$child"
    done
}

any_alive() {
    local pid
    for pid in "$@"; do
        kill -0 "$pid" 2>/dev/null && return 0
    done
    return 1
}

stop_all() {
    trap - EXIT INT TERM
    local pids=() pid i d sig
    for pid in "${children[@]}"; do
        pids+=("$pid")
        while read -r d; do pids+=("$d"); done < <(descendants "$pid")
    done
    if ((${#pids[@]})); then
        log "stopping"
        # a backgrounded Prefect worker ignores SIGINT and shuts down on SIGTERM (a second one kills it):
        # TERM, then TERM again and KILL what is still alive after a grace period each
        for sig in TERM TERM KILL; do
            kill -"$sig" "${pids[@]}" 2>/dev/null || true
            for i in $(seq 1 10); do
                any_alive "${pids[@]}" || return 0
                sleep 0.5
            done
        done
    fi
}
trap 'stop_all; exit 130' INT
trap 'stop_all; exit 143' TERM
trap stop_all EXIT

if ! "$BIN/python" -c 'import socket, sys; s = socket.socket(); s.bind(("127.0.0.1", int(sys.argv[1])))' "$PORT" 2>/dev/null; then
    log "port $PORT on 127.0.0.1 is in use: choose another (deploy/serve.sh PORT or make serve PORT=...)"
    exit 1
fi

log "starting the Prefect server on 127.0.0.1:$PORT"
"$BIN/prefect" server start --host 127.0.0.1 --port "$PORT" &
server=$!
children+=("$server")

deadline=$((SECONDS + ${MATCHFLOW_SERVER_TIMEOUT:-120}))
until "$BIN/python" -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)' \
    "$PREFECT_API_URL/health" 2>/dev/null; do
    kill -0 "$server" 2>/dev/null || { log "the Prefect server exited"; exit 1; }
    ((SECONDS < deadline)) || { log "the Prefect server is not healthy after ${MATCHFLOW_SERVER_TIMEOUT:-120} s"; exit 1; }
    sleep 0.5
done
log "server healthy at $PREFECT_API_URL"

if ! "$BIN/prefect" work-pool inspect "$POOL" >/dev/null 2>&1; then
    "$BIN/prefect" work-pool create "$POOL" --type process
fi
"$BIN/prefect" --no-prompt deploy --all --prefect-file deploy/prefect.yaml

log "starting a worker on $POOL"
"$BIN/prefect" worker start --pool "$POOL" --type process --limit "${MATCHFLOW_WORKER_LIMIT:-1}" &
children+=("$!")
log "ready: deployments process-corpus/adhoc and process-corpus/nightly at $PREFECT_API_URL (Ctrl-C stops)"

# in the foreground until Ctrl-C or until the server or the worker exits
wait -n "${children[@]}"
log "a child exited; stopping the rest"
