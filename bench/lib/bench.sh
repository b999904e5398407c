# Shared helpers for the benchmarks' bash entry points (bench/<name>). Source it; do not run it. bench/run builds the
# release binaries once and passes them in PRESENCE_SERVER_BIN (and REDIS_BENCH_BIN); no benchmark builds anything.
# Python drivers have the same helpers in bench/lib/benchlib.py.
#
# Sourcing it: cds to the repository root, sources ops/lib.sh (ensure_packages, free_port, stop_pids, ...), makes a
# work directory $BENCH_WORK and installs an EXIT trap that runs the bench_on_exit commands, stops every process
# started with start_redis/start_worker, and removes $BENCH_WORK.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
source ops/lib.sh

BENCH_NAME=$(basename "$0")
BENCH_PIDS=()
BENCH_EXIT=()
declare -A BENCH_PORT_PID=()
BENCH_WORK=$(mktemp -d -t "bench-$BENCH_NAME-XXXXXX")

bench_cleanup() {
    local cmd
    for cmd in "${BENCH_EXIT[@]}"; do eval "$cmd" || true; done
    [ ${#BENCH_PIDS[@]} -eq 0 ] || stop_pids 10 "${BENCH_PIDS[@]}" || true
    rm -rf "$BENCH_WORK"
}
trap bench_cleanup EXIT
trap 'exit 130' INT TERM

# bench_on_exit COMMAND: run COMMAND (eval'd) on exit, before the started processes are stopped.
bench_on_exit() { BENCH_EXIT+=("$1"); }

# bench_fail MESSAGE: prints "bench/<name>: MESSAGE" on stderr and exits 1.
bench_fail() { echo "bench/$BENCH_NAME: $*" >&2; exit 1; }

# server_bin: the release presence-server bench/run built (PRESENCE_SERVER_BIN); fails clearly without it.
server_bin() {
    [ -n "${PRESENCE_SERVER_BIN:-}" ] && [ -x "$PRESENCE_SERVER_BIN" ] \
        || bench_fail "PRESENCE_SERVER_BIN is not an executable (run the benchmark as: bench/run $BENCH_NAME ...)"
    echo "$PRESENCE_SERVER_BIN"
}

# start_redis PORT [NAME]: a throwaway redis-server child on 127.0.0.1:PORT (files in $BENCH_WORK/NAME, no
# persistence), answering PING when this returns; its pid is in REDIS_PID.
start_redis() {
    local port=$1 dir="$BENCH_WORK/${2:-redis}"
    mkdir -p "$dir"
    redis-server --port "$port" --bind 127.0.0.1 --dir "$dir" --daemonize no \
        --save "" --appendonly no --loglevel warning --logfile "$dir/redis.log" </dev/null >/dev/null 2>&1 &
    REDIS_PID=$!
    BENCH_PIDS+=("$REDIS_PID")
    wait_for_redis "$port"
}

# start_worker PORT LOG [VAR=VALUE...] [COMMAND ARGS...]: starts a worker listening on PORT with the settings given
# (like env(1)), output to LOG; COMMAND defaults to $PRESENCE_SERVER_BIN (give another binary, or valgrind ..., to
# run something else). Does not wait: see wait_ready. Its pid is in WORKER_PID.
start_worker() {
    local port=$1 log=$2
    shift 2
    local settings=()
    while [ $# -gt 0 ] && [[ $1 =~ ^[A-Za-z_][A-Za-z0-9_]*= ]]; do settings+=("$1"); shift; done
    [ $# -gt 0 ] || set -- "$(server_bin)"
    env PORT="$port" "${settings[@]}" "$@" </dev/null >"$log" 2>&1 &
    WORKER_PID=$!
    BENCH_PIDS+=("$WORKER_PID")
    BENCH_PORT_PID[$port]=$WORKER_PID
}

# wait_ready PORT [SECONDS] [LOG]: waits until GET /ready on 127.0.0.1:PORT answers 200 (default 10 s); fails with
# the worker's log (LOG) when it does not, or when the worker started on PORT exited first.
wait_ready() {
    local port=$1 limit=${2:-10} log=${3:-} deadline pid=${BENCH_PORT_PID[$1]:-}
    deadline=$((SECONDS + limit))
    until curl -fs -o /dev/null "http://127.0.0.1:$port/ready"; do
        if [ $SECONDS -ge $deadline ] || { [ -n "$pid" ] && ! process_alive "$pid"; }; then
            [ -n "$log" ] && [ -f "$log" ] && tail -n 30 "$log" >&2
            bench_fail "the worker on port $port did not become ready within ${limit} s"
        fi
        sleep 0.1
    done
}

# start_ready_worker PORT LOG [VAR=VALUE...] [COMMAND ARGS...]: start_worker, then wait_ready (10 s).
start_ready_worker() {
    start_worker "$@"
    wait_ready "$1" 10 "$2"
}

# stop_worker PID: stops one worker started here (SIGTERM, then SIGKILL after 10 s).
stop_worker() { stop_pids 10 "$1" || true; }

# scripts_dir [BIN_DIR]: the Lua scripts' directory, in the sources (whichever target holds them) or, with BIN_DIR, in
# that build's resource bundle (presence_<Target>.resources/Scripts beside the binary).
scripts_dir() {
    local join
    for join in ${1:+"$1"/presence_*.resources/Scripts/presence_join.lua} Sources/*/Scripts/presence_join.lua; do
        [ -f "$join" ] && { dirname "$join"; return 0; }
        [ -n "${1:-}" ] && break
    done
    bench_fail "no Scripts/presence_join.lua in ${1:-Sources}"
}
