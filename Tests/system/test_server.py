"""The presence-server process: configuration, health, readiness across a Redis restart, shutdown."""
import signal
import subprocess
import time

import requests

from conftest import wait_until


def test_help_lists_every_setting(server_binary):
    out = subprocess.run([server_binary, "--help"], capture_output=True, text=True, timeout=10)
    assert out.returncode == 0
    for name in ["HOST", "PORT", "REDIS_URL", "LOG_LEVEL", "--port", "--redis-url", "--log-level"]:
        assert name in out.stdout


def test_bad_setting_stops_startup_with_one_line(server_binary):
    for env, flag_args, setting in [
        ({"PORT": "eighty"}, [], "PORT"),
        ({}, ["--port", "70000"], "PORT"),
        ({"REDIS_URL": "http://nope"}, [], "REDIS_URL"),
        ({"LOG_LEVEL": "loud"}, [], "LOG_LEVEL"),
        ({}, ["--no-such-flag"], "--no-such-flag"),
    ]:
        out = subprocess.run([server_binary, *flag_args], capture_output=True, text=True, timeout=10,
                             env={"PATH": "/usr/bin:/bin", **env})
        assert out.returncode != 0
        lines = [l for l in out.stderr.splitlines() if l.strip()]
        assert len(lines) == 1, out.stderr
        assert setting in lines[0]
        assert "Fatal error" not in out.stderr and "Stack" not in out.stderr


def test_health_ready_and_json_errors(redis_process, start_server):
    server = start_server(REDIS_URL=redis_process.url)
    health = server.get("/health")
    assert health.status_code == 200
    assert health.json() == {"status": "ok"}
    assert server.get("/ready").status_code == 200
    missing = server.get("/no/such/route")
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("application/json")
    assert missing.json() == {"error": "Not found"}
    # A known path with a method it lacks: 405 with Allow; a parameterised path too.
    wrong_method = requests.delete(server.base + "/health", timeout=5)
    assert wrong_method.status_code == 405 and wrong_method.headers["Allow"] == "GET"
    assert wrong_method.json() == {"error": "Method not allowed"}
    r = requests.put(server.base + "/api/rooms/general", timeout=5)
    assert r.status_code == 405 and r.headers["Allow"] == "DELETE, GET"
    r = requests.patch(server.base + "/support/t1/messages", timeout=5)
    assert r.status_code == 405 and r.headers["Allow"] == "GET, POST"
    assert requests.head(server.base + "/health", timeout=5).status_code == 405
    # An unknown path stays 404, whatever the method.
    assert requests.delete(server.base + "/no/such/route", timeout=5).status_code == 404


def test_ready_follows_redis_down_and_back_without_restart(redis_process, start_server):
    server = start_server(REDIS_URL=redis_process.url)
    assert server.get("/ready").status_code == 200

    redis_process.kill()
    t0 = time.monotonic()
    assert wait_until(lambda: server.get("/ready").status_code == 503, 3.0, 0.1)
    assert time.monotonic() - t0 <= 3.0
    body = server.get("/ready").json()
    assert body == {"error": "Redis unavailable"}
    assert server.get("/health").status_code == 200  # the process itself is fine

    redis_process.start()
    t1 = time.monotonic()
    assert wait_until(lambda: server.get("/ready").status_code == 200, 3.0, 0.1)
    assert time.monotonic() - t1 <= 3.0
    assert server.proc.poll() is None


def test_sigterm_shuts_down_gracefully(redis_process, start_server):
    server = start_server(REDIS_URL=redis_process.url)
    assert server.get("/ready").status_code == 200
    clients_before = int(_redis_info(redis_process.port, "connected_clients"))
    assert clients_before >= 1
    code = server.stop(signal.SIGTERM, timeout=10)
    assert code == 0, server.output()
    try:
        requests.get(server.base + "/health", timeout=1)
        raise AssertionError("server still accepts connections after SIGTERM")
    except requests.ConnectionError:
        pass
    # Its Redis connections are closed.
    assert wait_until(lambda: int(_redis_info(redis_process.port, "connected_clients")) == 1, 3)


def test_sigint_also_shuts_down(redis_process, start_server):
    server = start_server(REDIS_URL=redis_process.url)
    assert server.stop(signal.SIGINT, timeout=10) == 0


def _redis_info(port: int, field: str) -> str:
    out = subprocess.run(["redis-cli", "-p", str(port), "info", "clients"], capture_output=True, text=True, check=True)
    for line in out.stdout.splitlines():
        if line.startswith(field + ":"):
            return line.split(":", 1)[1].strip()
    raise KeyError(field)


def test_workers_started_by_hand_with_only_port_set(server_binary, redis_process):
    """Two workers on one host with only PORT set both start (each /metrics listener follows its PORT); a third on a
    port that is taken stops at once, with one line naming the address and the setting."""
    import socket

    def free_pair():
        for _ in range(200):
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                port = s.getsockname()[1]
            if port + 1385 > 65535:
                continue
            busy = False
            for p in (port + 1, port + 1384, port + 1385):
                with socket.socket() as t:
                    try:
                        t.bind(("127.0.0.1", p))
                    except OSError:
                        busy = True
            if not busy:
                return port
        raise RuntimeError("no free port pair")

    port = free_pair()
    base = {"PATH": "/usr/bin:/bin", "REDIS_URL": redis_process.url, "BCRYPT_COST": "4"}
    procs = []
    try:
        for p in (port, port + 1):
            procs.append(subprocess.Popen([server_binary], env={**base, "PORT": str(p)},
                                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True))
        for p in (port, port + 1):
            assert wait_until(lambda: _answers(f"http://127.0.0.1:{p}/health"), 30), p
            assert wait_until(lambda: _answers(f"http://127.0.0.1:{p + 1384}/metrics"), 30), p + 1384
        # PORT taken by the first worker.
        out = subprocess.run([server_binary], env={**base, "PORT": str(port), "METRICS_PORT": "0"},
                             capture_output=True, text=True, timeout=20)
        assert out.returncode != 0
        line = out.stderr.strip().splitlines()[-1]
        assert line.startswith(f"presence-server: PORT: cannot listen on 127.0.0.1:{port}: Address already in use"), out.stderr
        # METRICS_PORT taken by the first worker's metrics listener.
        out = subprocess.run([server_binary], env={**base, "PORT": str(port + 2), "METRICS_PORT": str(port + 1384)},
                             capture_output=True, text=True, timeout=20)
        assert out.returncode != 0
        line = out.stderr.strip().splitlines()[-1]
        assert f"METRICS_PORT: cannot listen on 127.0.0.1:{port + 1384}" in line and "or 0 for none" in line, out.stderr
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.RequestException:
        return False
