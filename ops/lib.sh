# Shared helpers for ops scripts. Source it; do not run it.

# ensure_packages PKG...: installs missing Debian packages with apt-get when root; otherwise prints the exact
# command to run and fails.
ensure_packages() {
    local missing=()
    for package in "$@"; do
        dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ "$(id -u)" -eq 0 ]; then
        echo "ops: installing ${missing[*]}" >&2
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq >/dev/null
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    else
        echo "ops: missing packages: ${missing[*]}" >&2
        echo "ops: run: sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
        return 1
    fi
}

# ensure_swift: fails with a clear line when the Swift toolchain is not on PATH.
ensure_swift() {
    if ! command -v swift >/dev/null 2>&1; then
        if [ -x /opt/swift/usr/bin/swift ]; then
            export PATH="/opt/swift/usr/bin:$PATH"
        else
            echo "ops: swift not found on PATH; install Swift 6 (https://swift.org/install)" >&2
            return 1
        fi
    fi
}

# free_port: prints a TCP port nothing listens on right now.
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# wait_for_redis PORT [SECONDS]: waits until redis answers PING on 127.0.0.1:PORT.
wait_for_redis() {
    local port=$1 limit=${2:-10} i=0
    until redis-cli -h 127.0.0.1 -p "$port" ping >/dev/null 2>&1; do
        i=$((i + 1))
        if [ $i -gt $((limit * 20)) ]; then
            echo "ops: redis-server on port $port did not start" >&2
            return 1
        fi
        sleep 0.05
    done
}

# start_redis PORT DIR: starts a redis-server child on 127.0.0.1:PORT with its files under DIR and prints its pid.
start_redis() {
    local port=$1 dir=$2
    mkdir -p "$dir"
    redis-server --port "$port" --bind 127.0.0.1 --dir "$dir" --daemonize no \
        --save "" --appendonly no --loglevel warning --logfile "$dir/redis.log" </dev/null >/dev/null 2>&1 &
    echo $!
}

# process_alive PID: the process exists and has not exited. A killed worker whose parent was the short-lived script
# that started it is re-parented, and where PID 1 does not reap (some containers) it stays a zombie that `kill -0`
# still finds.
process_alive() {
    kill -0 "$1" 2>/dev/null || return 1
    local state
    state=$(sed -E 's/^.*\) ([A-Za-z]).*$/\1/' "/proc/$1/stat" 2>/dev/null) || return 0
    [ "$state" != Z ] && [ "$state" != X ]
}

# stop_pids SECONDS PID...: SIGTERM to every PID at once, up to SECONDS for them to exit, then SIGKILL to what is left
# and up to 5 s more until it is gone. Returns 1, naming them on stderr, when any is still alive after that: the
# caller knows exactly what it started, so nothing else on the machine is looked at.
stop_pids() {
    local seconds=$1; shift
    local pid left=()
    for pid in "$@"; do kill -TERM "$pid" 2>/dev/null || true; done
    local deadline=$((SECONDS + seconds))
    while :; do
        left=()
        for pid in "$@"; do process_alive "$pid" && left+=("$pid"); done
        [ ${#left[@]} -eq 0 ] && return 0
        [ $SECONDS -ge $deadline ] && break
        sleep 0.1
    done
    for pid in "${left[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
    deadline=$((SECONDS + 5))
    while :; do
        local still=()
        for pid in "${left[@]}"; do process_alive "$pid" && still+=("$pid"); done
        [ ${#still[@]} -eq 0 ] && return 0
        if [ $SECONDS -ge $deadline ]; then
            echo "ops: still running after SIGKILL: ${still[*]}" >&2
            for pid in "${still[@]}"; do ps -o pid=,stat=,args= -p "$pid" >&2 || true; done
            return 1
        fi
        sleep 0.1
    done
}
