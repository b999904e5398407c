"""Fixtures for system tests: real redis-server and presence-server processes on free loopback ports."""
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pytest
import requests


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate, timeout: float, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    return predicate()


class RedisProcess:
    """A redis-server child that a test may kill and start again on the same port."""

    def __init__(self):
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix=f"presence-test-redis-{self.port}-")
        self.proc = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    def start(self):
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--dir", self.dir,
             "--save", "", "--appendonly", "no", "--daemonize", "no", "--loglevel", "warning"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        assert wait_until(self._answers, 10), "redis-server did not start"

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def cleanup(self):
        self.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


class ServerProcess:
    """A presence-server child process."""

    def __init__(self, binary: str, env: dict, port: int):
        self.port = port
        self.base = f"http://127.0.0.1:{port}"
        self.log = tempfile.NamedTemporaryFile(prefix="presence-server-", suffix=".log", delete=False)
        full_env = dict(os.environ)
        full_env.update(env)
        full_env["PORT"] = str(port)
        full_env.setdefault("HOST", "127.0.0.1")
        self.proc = subprocess.Popen([binary], env=full_env, stdout=self.log, stderr=subprocess.STDOUT)
        assert wait_until(self._up, 30), f"presence-server did not start:\n{self.output()}"

    def _up(self) -> bool:
        try:
            return requests.get(self.base + "/health", timeout=0.5).status_code == 200
        except requests.RequestException:
            return False

    def output(self) -> str:
        with open(self.log.name, "r", errors="replace") as f:
            return f.read()

    def get(self, path: str, **kwargs):
        return requests.get(self.base + path, timeout=kwargs.pop("timeout", 5), **kwargs)

    def stop(self, sig=signal.SIGTERM, timeout: float = 15) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def cleanup(self):
        self.stop(signal.SIGKILL)
        os.unlink(self.log.name)


@pytest.fixture(scope="session")
def server_binary() -> str:
    binary = os.environ.get("PRESENCE_SERVER_BIN")
    if not binary:
        out = subprocess.run(["swift", "build", "--show-bin-path"], capture_output=True, text=True, check=True)
        binary = os.path.join(out.stdout.strip(), "presence-server")
    assert os.path.exists(binary), f"{binary} missing: run `swift build` first (./ops/test does)"
    return binary


@pytest.fixture
def redis_process():
    r = RedisProcess()
    r.start()
    yield r
    r.cleanup()


@pytest.fixture
def start_server(server_binary):
    started = []

    def start(**env):
        s = ServerProcess(server_binary, {k: str(v) for k, v in env.items()}, free_port())
        started.append(s)
        return s

    yield start
    for s in started:
        s.cleanup()
