"""Shared helpers for the benchmarks' Python drivers (bench/*.py): the counterpart of bench/lib/bench.sh.

bench/run builds the release binaries once and passes them in PRESENCE_SERVER_BIN (and REDIS_BENCH_BIN); a driver
that starts workers itself takes the binary from there (or from its --binary), never builds one.
A driver in bench/ imports it as `from lib.benchlib import ...` (bench/ is on sys.path as the script's directory).
"""
import collections
import os
import socket
import subprocess
import time
import urllib.error
import urllib.request

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
CLK_TCK = os.sysconf("SC_CLK_TCK")


def log(text=""):
    """A line of the driver's report, flushed at once (bench/run shows it as it comes)."""
    print(text, flush=True)


def server_bin():
    """The release presence-server bench/run built (PRESENCE_SERVER_BIN)."""
    path = os.environ.get("PRESENCE_SERVER_BIN", "")
    if not (path and os.access(path, os.X_OK)):
        raise SystemExit("PRESENCE_SERVER_BIN is not an executable (run the benchmark through bench/run)")
    return path


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(check, proc=None, timeout=10.0, interval=0.05):
    """Calls check() every interval seconds until it returns true (then True), timeout passes or proc (when given)
    exits (then False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            return False
        if check():
            return True
        time.sleep(interval)
    return False


def port_open(port):
    """Whether something accepts a TCP connection on 127.0.0.1:port."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def start_redis(port, directory, *extra, wrapper=(), output=None, timeout=10.0, what="redis-server"):
    """A throwaway redis-server child on 127.0.0.1:port (no persistence), answering PING when this returns.
    wrapper: the command that runs it (valgrind ...); output: a file for what it prints (else discarded); what: its
    name in the error when it does not start within timeout."""
    os.makedirs(directory, exist_ok=True)
    out = open(output, "w") if output else subprocess.DEVNULL
    proc = subprocess.Popen([*wrapper, "redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", directory,
                             "--daemonize", "no", "--save", "", "--appendonly", "no", "--loglevel", "warning",
                             "--logfile", os.path.join(directory, "redis.log"), *extra],
                            stdin=subprocess.DEVNULL, stdout=out,
                            stderr=subprocess.STDOUT if output else subprocess.DEVNULL)
    if output:
        out.close()  # the child has its own copy
    if wait_for(lambda: subprocess.run(["redis-cli", "-p", str(port), "ping"], capture_output=True).returncode == 0,
                proc, timeout):
        return proc
    proc.kill()
    raise SystemExit(f"{what} on port {port} did not start")


def start_worker(port, log, binary=None, command=None, **settings):
    """Starts a worker listening on port with the given settings (environment on top of this process's), output to
    log (an open file); binary defaults to PRESENCE_SERVER_BIN, command (a list) replaces it altogether (valgrind).
    Does not wait: see wait_ready."""
    env = dict(os.environ, PORT=str(port), **{k: str(v) for k, v in settings.items()})
    argv = command or [binary or server_bin()]
    return subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)


def wait_ready(port, proc=None, timeout=10.0, what=None):
    """Waits until GET /ready on 127.0.0.1:port answers 200; raises SystemExit when it does not within timeout or
    when proc exits first (the process is killed then)."""
    def ready():
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=1) as response:
                return response.status == 200
        except (urllib.error.URLError, OSError):
            return False

    if wait_for(ready, proc, timeout, interval=0.1):
        return proc
    if proc is not None and proc.poll() is None:
        proc.kill()
        proc.wait()
    raise SystemExit(f"the worker {what or f'on port {port}'} did not become ready")


def start_ready_worker(port, log, binary=None, command=None, timeout=10.0, what=None, **settings):
    """start_worker, then wait_ready."""
    proc = start_worker(port, log, binary=binary, command=command, **settings)
    return wait_ready(port, proc, timeout=timeout, what=what)


def stop(*procs, timeout=10.0):
    """SIGTERM, then SIGKILL after timeout, for each process started here."""
    for proc in procs:
        if proc is not None and proc.poll() is None:
            proc.terminate()
    for proc in procs:
        if proc is None:
            continue
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def scripts_dir(bin_dir=None):
    """The Lua scripts' directory: in the sources (whichever target holds them) or, with bin_dir, in that build's
    resource bundle (presence_<Target>.resources/Scripts beside the binary)."""
    import glob
    pattern = (os.path.join(bin_dir, "presence_*.resources", "Scripts", "presence_join.lua") if bin_dir
               else os.path.join(ROOT, "Sources", "*", "Scripts", "presence_join.lua"))
    found = sorted(glob.glob(pattern))
    if not found:
        raise SystemExit(f"no Scripts/presence_join.lua in {bin_dir or 'Sources/'}")
    return os.path.dirname(found[0])


def composed_script(path, folder=None):
    """The text of the script at `path` as the server loads it: each `--#include <name>` line replaced by
    <folder>/lib/<name>.lua (folder: the script's own by default; ops/lua_scripts.py composes)."""
    import sys
    sys.path.insert(0, os.path.join(ROOT, "ops"))
    import lua_scripts
    with open(path, encoding="utf-8") as f:
        source = f.read()
    return lua_scripts.compose(source, folder or os.path.dirname(path))


def script_names(directory):
    """SHA-1 (as the server loads each script in `directory`, includes composed) -> script name."""
    import sys
    sys.path.insert(0, os.path.join(ROOT, "ops"))
    import lua_scripts
    return {sha: name[:-4] for name, sha in lua_scripts.composed_shas(directory).items()}


def ratio(on, off, digits=3):
    """on / off, rounded; None when either is missing or off is 0."""
    return round(on / off, digits) if on is not None and off else None


def slowlog_census(entries, names, background, label=None):
    """What requests made Redis run, from a slowlog taken at threshold 0 (entries oldest first; a script's nested
    commands, client ?:0, are logged just before it). Per top-level label (a script by its name, from `names`, else
    the command's name upper-cased; label(name, parts) may refine it) [calls, nested commands]; per command name (as
    INFO commandstats names it) [top-level calls, nested calls]; and one example of each label's call (its parts).
    Labels in `background` are left out, with what they ran."""
    labels = collections.defaultdict(lambda: [0, 0])
    commands = collections.defaultdict(lambda: [0, 0])
    examples = {}
    pending = collections.Counter()
    for e in entries:
        parts = e["command"].split(b" ")
        name = parts[0].decode(errors="replace").lower()
        if (e.get("client_address") or b"").startswith(b"?"):
            pending[name] += 1
            continue
        top = name.upper()
        if name == "evalsha" and len(parts) > 1:
            top = names.get(parts[1].decode(errors="replace").lower(), "EVALSHA ?")
        if label:
            top = label(top, parts)
        if top not in background:
            examples.setdefault(top, parts)
            labels[top][0] += 1
            labels[top][1] += sum(pending.values())
            commands[name][0] += 1
            for nested, count in pending.items():
                commands[nested][1] += count
        pending.clear()
    return labels, commands, examples


def proc_cpu(pid, kernel_only=False):
    """utime + stime of pid in seconds (only stime with kernel_only; 0 when it is gone), from /proc/<pid>/stat."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[12]) + (0 if kernel_only else int(fields[11]))) / CLK_TCK
    except (OSError, IndexError, ValueError):
        return 0.0


def rss_kib(pid):
    """A process's resident set (VmRSS) in KiB, or None when it cannot be read (the process is gone)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None
