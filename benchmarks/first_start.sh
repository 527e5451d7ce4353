#!/usr/bin/env bash
# Seconds from `make run` on a fresh clone to a healthy app (GET /health answers 200), with
# empty pip and uv caches of its own (the machine's caches are left alone), on free ports.
#
#   bash benchmarks/first_start.sh [REVISION]      # default HEAD (committed work only)
#
# A revision from before the run-only install (no .installed-run stamp in its Makefile) is
# measured the way its README started it: its install target, then `opsd run`.
set -euo pipefail

revision=${1:-HEAD}
root=$(git rev-parse --show-toplevel)
work=$(mktemp -d)
pid=""
cleanup() {
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        kill -INT -- "-$pid" 2>/dev/null || true
        for _ in $(seq 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
        kill -KILL -- "-$pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
git clone --quiet "$root" "$work/clone"
git -C "$work/clone" checkout --quiet "$revision"
export PIP_CACHE_DIR="$work/pip-cache" UV_CACHE_DIR="$work/uv-cache"
export APP_PORT LOCAL_AWS_PORT
APP_PORT=$(free_port)
LOCAL_AWS_PORT=$(free_port)
cd "$work/clone"
if grep -q 'installed-run' Makefile; then
    command=(make run)
else
    command=(bash -c 'make .venv/.installed && exec .venv/bin/opsd run --app-port "$APP_PORT"')
fi
echo "first start of $(git rev-parse --short HEAD) ($revision): ${command[*]}"
start=$(date +%s.%N)
setsid "${command[@]}" >"$work/run.log" 2>&1 &
pid=$!
elapsed() { python3 -c "import sys; print(f'{float(sys.argv[1]) - $start:5.1f} s')" "$(date +%s.%N)"; }
seen=0
until curl -fsS "http://127.0.0.1:$APP_PORT/health" >/dev/null 2>&1; do
    if ! kill -0 "$pid" 2>/dev/null; then
        tail -20 "$work/run.log"
        echo "make run exited before the app was healthy" >&2
        exit 1
    fi
    # Each phase's line, with the time it appeared.
    count=$(grep -c '^\[make\]' "$work/run.log" || true)
    if [ "$count" -gt "$seen" ]; then
        grep '^\[make\]' "$work/run.log" | tail -n "+$((seen + 1))" | while read -r line; do
            echo "$(elapsed)  $line"
        done
        seen=$count
    fi
    sleep 0.5
done
echo "$(elapsed)  healthy: GET /health answers 200"
uptime
# Not timed: the first run of every task, with what `make run` installed.
for _ in $(seq 240); do
    .venv/bin/opsd status --json 2>/dev/null | python3 -c '
import json, sys
rows = json.load(sys.stdin)["tasks"]
scheduled = [r for r in rows if r["schedule"] != "on demand"]
sys.exit(0 if all(r["status"] not in (None, "running") for r in scheduled) else 1)' && break
    sleep 1
done
.venv/bin/opsd status
