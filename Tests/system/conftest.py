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

    def __init__(self, persistent: bool = False):
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix=f"presence-test-redis-{self.port}-")
        self.proc = None
        # persistent: every write fsynced to an AOF, so even a SIGKILL loses nothing.
        self.persistence = ["--appendonly", "yes", "--appendfsync", "always"] if persistent else ["--appendonly", "no"]

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    def start(self):
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--dir", self.dir,
             "--save", "", *self.persistence, "--daemonize", "no", "--loglevel", "warning"],
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


class Worker:
    """HTTP helper around one presence-server process."""

    def __init__(self, proc: ServerProcess):
        self.proc = proc
        self.base = proc.base

    def call(self, method: str, path: str, user=None, json=None, headers=None, **kwargs):
        h = dict(headers or {})
        if user is not None:
            h["Authorization"] = f"Bearer {user.token}"
            h["X-Username"] = user.name
        return requests.request(method, self.base + path, json=json, headers=h, timeout=10, **kwargs)


class User:
    def __init__(self, name: str, token: str):
        self.name = name
        self.token = token


def register(worker: "Worker", name: str, password: str = "password123") -> User:
    r = worker.call("POST", "/api/auth/register", json={"username": name, "password": password})
    assert r.status_code == 201, r.text
    return User(r.json()["username"], r.json()["token"])


class Cluster:
    def __init__(self, redis_proc: RedisProcess, workers):
        self.redis_proc = redis_proc
        self.workers = workers
        self.a, self.b = workers[0], workers[-1]

    def redis(self):
        import redis as redis_py
        return redis_py.Redis(port=self.redis_proc.port, decode_responses=True)


@pytest.fixture
def make_cluster(redis_process, start_server):
    def make(n: int = 2, **env):
        settings = {"BCRYPT_COST": 4, "ADMIN_USERS": "ryo", "REDIS_URL": redis_process.url}
        settings.update(env)
        return Cluster(redis_process, [Worker(start_server(**settings)) for _ in range(n)])
    return make


@pytest.fixture
def cluster(make_cluster):
    return make_cluster()


class Subscription:
    """A Redis pub/sub subscription to the service's broadcast channels (ch:<client channel>)."""

    def __init__(self, r, channels):
        self.client = r  # keep the client alive: collecting it closes the pub/sub connection
        self.pubsub = r.pubsub()
        self.pubsub.subscribe(*[f"ch:{c}" for c in channels])
        for _ in channels:
            m = self.pubsub.get_message(timeout=2)
            assert m and m["type"] == "subscribe"

    def events(self, timeout: float = 1.0):
        import json as json_mod
        out = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            m = self.pubsub.get_message(timeout=0.05)
            if m and m["type"] == "message":
                out.append(json_mod.loads(m["data"]))
        return out

    def close(self):
        self.pubsub.close()
