"""Fixtures for system tests: real redis-server and presence-server processes on free loopback ports."""
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pytest
import requests


def spread_tag(bucket: int) -> str:
    """The hash tag of one bucket of an index spread over 16 keys (RedisKeys.spreadTags): the first `s<bucket>.<n>`
    whose slot is in the bucket's sixteenth of the slots."""
    from redis.crc import key_slot
    n = 0
    while key_slot(f"s{bucket}.{n}".encode()) // 1024 != bucket:
        n += 1
    return f"s{bucket}.{n}"


def spread_key(prefix: str, name: str) -> str:
    """The bucket key of `name` (bucket = the name's slot modulo 16) in an index spread over 16 keys."""
    from redis.crc import key_slot
    return f"{prefix}:{{{spread_tag(key_slot(name.encode()) % 16)}}}"


def public_rooms(r) -> set:
    """Every public room id, from the 16 buckets of rooms:public."""
    return set().union(*(r.smembers(f"rooms:public:{{{spread_tag(bucket)}}}") for bucket in range(16)))


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


# SYSTEM_REDIS_CLUSTER=1: the API suites run against a 6-node Redis Cluster (ops/redis-cluster) instead of one
# redis-server per test; ./ops/test runs them a second time so.
REDIS_CLUSTER = os.environ.get("SYSTEM_REDIS_CLUSTER") == "1"
ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


class RedisClusterProcesses:
    """A local 6-node Redis Cluster (3 primaries, 3 replicas) started by ops/redis-cluster for the whole test session
    and emptied before each test (FLUSHALL on every primary; replicas follow)."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="presence-test-redis-cluster-")
        self.script = os.path.join(ROOT, "ops", "redis-cluster")

    def start(self):
        import random
        for _ in range(5):
            # Node ports and their bus ports (+1000) below the ephemeral range, so no client socket holds them.
            self.env = dict(os.environ, REDIS_CLUSTER_DIR=os.path.join(self.dir, "nodes"),
                            REDIS_CLUSTER_BASE_PORT=str(random.randrange(21000, 28000, 10)), REDIS_CLUSTER_BUS_OFFSET="1000")
            up = subprocess.run([self.script, "up"], env=self.env, cwd=ROOT, capture_output=True, text=True, timeout=120)
            if up.returncode == 0:
                break
        else:
            raise AssertionError(f"ops/redis-cluster up failed:\n{up.stderr}")
        self.url = subprocess.run([self.script, "url"], env=self.env, cwd=ROOT, check=True, capture_output=True,
                                  text=True).stdout.strip()
        self.ports = [int(seed.rsplit(":", 1)[1]) for seed in self.url.split("//", 1)[1].split(",")]
        self.port = self.ports[0]

    def flush(self):
        import redis as redis_py
        for port in self.ports:
            node = redis_py.Redis(port=port)
            try:
                if node.execute_command("ROLE")[0] in (b"master", "master"):
                    node.flushall()
            finally:
                node.close()

    def client(self):
        from redis.cluster import RedisCluster

        class WholeClusterKeys(RedisCluster):
            """KEYS over every primary, as the tests mean it (redis-py asks one node by default)."""

            def keys(self, pattern="*", **kwargs):
                kwargs.setdefault("target_nodes", RedisCluster.PRIMARIES)
                return super().keys(pattern, **kwargs)

        return WholeClusterKeys(host="127.0.0.1", port=self.port, decode_responses=True)

    def cli(self, port, *args):
        out = subprocess.run(["redis-cli", "-p", str(port), *map(str, args)], capture_output=True, text=True, timeout=30)
        return out.stdout

    def nodes(self):
        """CLUSTER NODES as one node sees it: [(port, id, flags, master id, slot ranges)]."""
        for port in self.ports:
            text = self.cli(port, "cluster", "nodes")
            if text.strip() and "ERR" not in text:
                rows = []
                for line in text.splitlines():
                    f = line.split()
                    rows.append((int(f[1].split("@")[0].rsplit(":", 1)[1]), f[0], f[2], f[3], f[8:]))
                return rows
        raise AssertionError("no node answers CLUSTER NODES")

    def role(self, port):
        out = self.cli(port, "role").split()
        return out[0] if out else None

    def owner_of(self, key):
        """The port of the primary serving `key`'s slot now (as the nodes report it)."""
        slot = int(self.cli(self.ports[0], "cluster", "keyslot", key).strip())
        for port, _, flags, _, ranges in self.nodes():
            if "master" not in flags or "fail" in flags:
                continue
            for r in ranges:
                if r.startswith("["):
                    continue
                lo, _, hi = r.partition("-")
                if int(lo) <= slot <= int(hi or lo):
                    return port
        raise AssertionError(f"no owner for slot {slot}")

    def node_id(self, port):
        return self.cli(port, "cluster", "myid").strip()

    def replica_of(self, primary_port):
        """The port of a healthy replica of the primary on `primary_port`, once its replication link is up (a replica
        that lost its primary too long ago refuses to fail over)."""
        my_id = self.node_id(primary_port)
        for port, _, flags, master, _ in self.nodes():
            if "slave" in flags and master == my_id and "fail" not in flags:
                assert wait_until(lambda: "master_link_status:up" in self.cli(port, "info", "replication"), 30, 0.1), \
                    f"replica {port} has no link to its primary"
                return port
        raise AssertionError(f"no replica of {primary_port}")

    def pid(self, port):
        return int(open(os.path.join(self.dir, "nodes", str(port), "redis.pid")).read())

    def log_tail(self, port, lines=40):
        try:
            return "".join(open(os.path.join(self.dir, "nodes", str(port), "redis.log")).readlines()[-lines:])
        except OSError as e:
            return str(e)

    def start_node(self, port):
        subprocess.run([self.script, "start-node", str(port)], env=self.env, cwd=ROOT, check=True, capture_output=True,
                       timeout=60)

    def wait_ok(self, timeout=60):
        """Until every node says cluster_state:ok and no node is flagged as failing."""
        def ok():
            if any("cluster_state:ok" not in self.cli(port, "cluster", "info") for port in self.ports):
                return False
            return not any("fail" in flags for _, _, flags, _, _ in self.nodes())
        assert wait_until(ok, timeout, 0.2), "the cluster did not come back to cluster_state:ok"

    def kill(self):
        pytest.skip("a fault test of one standalone Redis")

    start_again = kill

    def cleanup(self):
        subprocess.run([self.script, "down"], env=self.env, cwd=ROOT, timeout=60)
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="session")
def redis_cluster_processes():
    cluster = RedisClusterProcesses()
    cluster.start()
    yield cluster
    cluster.cleanup()


class ServerProcess:
    """A presence-server child process. Its /metrics listener gets a free port of its own (METRICS_PORT) unless the
    settings name one; a setting given as None is removed from the environment."""

    def __init__(self, binary: str, env: dict, port: int):
        self.port = port
        self.base = f"http://127.0.0.1:{port}"
        self.log = tempfile.NamedTemporaryFile(prefix="presence-server-", suffix=".log", delete=False)
        full_env = dict(os.environ)
        for key, value in env.items():
            if value is None:
                full_env.pop(key, None)
            else:
                full_env[key] = str(value)
        full_env["PORT"] = str(port)
        full_env.setdefault("HOST", "127.0.0.1")
        if not full_env.get("METRICS_PORT"):
            metrics_port = free_port()
            while metrics_port == port:
                metrics_port = free_port()
            full_env["METRICS_PORT"] = str(metrics_port)
        self.metrics_port = int(full_env["METRICS_PORT"])
        self.metrics_url = f"http://127.0.0.1:{self.metrics_port}/metrics" if self.metrics_port else None
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
        os.environ.get("KEEP_SERVER_LOGS") or os.unlink(self.log.name)  # KEEP_SERVER_LOGS=1 keeps /tmp/presence-server-*.log


@pytest.fixture(scope="session")
def server_binary() -> str:
    binary = os.environ.get("PRESENCE_SERVER_BIN")
    if not binary:
        out = subprocess.run(["swift", "build", "--show-bin-path"], capture_output=True, text=True, check=True)
        binary = os.path.join(out.stdout.strip(), "presence-server")
    assert os.path.exists(binary), f"{binary} missing: run `swift build` first (./ops/test does)"
    return binary


@pytest.fixture
def redis_process(request):
    if REDIS_CLUSTER:
        cluster = request.getfixturevalue("redis_cluster_processes")
        cluster.flush()
        yield cluster
        return
    r = RedisProcess()
    r.start()
    yield r
    r.cleanup()


@pytest.fixture
def start_server(server_binary):
    started = []

    def start(**env):
        s = ServerProcess(server_binary, {k: (None if v is None else str(v)) for k, v in env.items()}, free_port())
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

    def metrics(self) -> str:
        """The Prometheus text of this worker's metrics listener (METRICS_PORT, not the API port)."""
        assert self.proc.metrics_url, "this worker runs without a metrics listener (METRICS_PORT=0)"
        r = requests.get(self.proc.metrics_url, timeout=10)
        assert r.status_code == 200, r.text
        return r.text


class User:
    def __init__(self, name: str, token: str):
        self.name = name
        self.token = token


def register(worker: "Worker", name: str, password: str = "password123") -> User:
    r = worker.call("POST", "/api/auth/register", json={"username": name, "password": password})
    assert r.status_code == 201, r.text
    return User(r.json()["username"], r.json()["token"])


def login(worker: "Worker", name: str, password: str, headers=None):
    """POST /api/auth/login; returns the response (status and headers matter to the limit tests)."""
    return worker.call("POST", "/api/auth/login", json={"username": name, "password": password}, headers=headers)


# The admin every test cluster has: ADMIN_USERS names it, ADMIN_PASSWORD creates it at start-up.
ADMIN_NAME = "boss"
ADMIN_PASSWORD = "boss-password-1"


def admin(worker: "Worker") -> User:
    """Logs in as the configured admin (created at start-up from ADMIN_PASSWORD)."""
    r = login(worker, ADMIN_NAME, ADMIN_PASSWORD)
    assert r.status_code == 200, r.text
    return User(r.json()["username"], r.json()["token"])


def default_settings(redis_url: str) -> dict:
    """What every test worker runs with unless a test says otherwise: cheap bcrypt, one admin from configuration,
    and the per-user and per-address write limits lifted (tests register many users from 127.0.0.1; the security
    tests set the one they test)."""
    return {"BCRYPT_COST": 4, "ADMIN_USERS": ADMIN_NAME, "ADMIN_PASSWORD": ADMIN_PASSWORD, "REDIS_URL": redis_url,
            "REGISTER_RATE_LIMIT": 100000, "ROOM_RATE_LIMIT": 100000, "INVITE_RATE_LIMIT": 100000,
            "PRESENCE_RATE_LIMIT": 100000, "SUPPORT_MESSAGE_RATE_LIMIT": 100000}


def wait_for_admins(r, settings: dict, timeout: float = 10):
    """Start-up creates the ADMIN_USERS accounts from ADMIN_PASSWORD; waits until they are in Redis (a worker may
    answer /health before its start-up tasks are done)."""
    if not settings.get("ADMIN_PASSWORD"):
        return
    names = [n.strip().lower() for n in str(settings.get("ADMIN_USERS") or "").split(",") if n.strip()]
    wait_until(lambda: all(r.exists(f"user:{{{n}}}") for n in names), timeout, 0.1)


class Cluster:
    def __init__(self, redis_proc: RedisProcess, workers):
        self.redis_proc = redis_proc
        self.workers = workers
        self.a, self.b = workers[0], workers[-1]

    def redis(self):
        if isinstance(self.redis_proc, RedisClusterProcesses):
            return self.redis_proc.client()
        import redis as redis_py
        return redis_py.Redis(port=self.redis_proc.port, decode_responses=True)


@pytest.fixture
def make_cluster(redis_process, start_server):
    def make(n: int = 2, **env):
        settings = default_settings(redis_process.url)
        settings.update(env)  # a setting given as None is left unset
        c = Cluster(redis_process, [Worker(start_server(**settings)) for _ in range(n)])
        wait_for_admins(c.redis(), settings)
        return c
    return make


@pytest.fixture
def cluster(make_cluster):
    return make_cluster()


# ---------------------------------------------------------------------------------------------------------------------
# nginx in front of the workers (the browser tests: test_recovery_browser.py, test_ryos_ui.py)


def render_nginx(template: str, listen: str, prefix: str, upstreams, pid=None, **placeholders) -> str:
    """The nginx config template at `template` (one of ops/nginx*.conf.template) with its placeholders filled in:
    __LISTEN__, __PREFIX__, __PID__ (<prefix>/nginx.pid unless given), __USER__ (root when the tests run as root),
    __UPSTREAMS__ (a `server` line per upstream address) and __NAME__ for each NAME=value given."""
    text = open(template).read()
    user = "user root;" if os.geteuid() == 0 else ""
    lines = "\n".join(f"        server {u} max_fails=0;" for u in upstreams)
    for key, value in [("__LISTEN__", listen), ("__PREFIX__", prefix), ("__PID__", pid or os.path.join(prefix, "nginx.pid")),
                       ("__USER__", user), ("__UPSTREAMS__", lines),
                       *((f"__{name}__", value) for name, value in placeholders.items())]:
        text = text.replace(key, value)
    assert not re.search(r"__[A-Z_]+__", text), "a placeholder left unrendered"
    return text


class Nginx:
    """nginx (daemon off) in a temporary prefix directory of its own, on 127.0.0.1:`port` (a free port unless given),
    with the config `render(listen, prefix)` returns; started when this returns (GET `ready_path` answers 200).
    stop() ends it and removes the directory."""

    def __init__(self, render, port=None, ready_path="/health", dir_prefix="presence-test-nginx-"):
        self.dir = tempfile.mkdtemp(prefix=dir_prefix)
        self.port = port or free_port()
        self.origin = f"http://127.0.0.1:{self.port}"
        self.ready_url = self.origin + ready_path
        self.conf = os.path.join(self.dir, "nginx.conf")
        with open(self.conf, "w") as f:
            f.write(render(f"127.0.0.1:{self.port}", self.dir))
        test = subprocess.run(["nginx", "-t", "-p", self.dir, "-c", self.conf], capture_output=True, text=True)
        assert test.returncode == 0, test.stderr
        self.log = open(os.path.join(self.dir, "nginx.out"), "w")
        self.proc = subprocess.Popen(["nginx", "-p", self.dir, "-c", self.conf, "-g", "daemon off;"],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        if not wait_until(self._up, 20, 0.1):
            out = self.output()
            self.stop()
            raise AssertionError(f"nginx did not start:\n{out}")

    def _up(self):
        try:
            return requests.get(self.ready_url, timeout=1).status_code == 200
        except requests.RequestException:
            return False

    def output(self):
        out = ""
        for name in ("nginx.out", "error.log"):
            try:
                out += open(os.path.join(self.dir, name)).read()
            except OSError:
                pass
        return out

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


class Subscription:
    """A Redis pub/sub subscription to the service's broadcast channels (ch:{<client channel>}): classic SUBSCRIBE on one
    Redis, sharded SSUBSCRIBE on a Redis Cluster (where the workers publish with SPUBLISH)."""

    def __init__(self, r, channels):
        from redis.cluster import RedisCluster
        self.client = r  # keep the client alive: collecting it closes the pub/sub connection
        self.sharded = isinstance(r, RedisCluster)
        self.pubsub = r.pubsub()
        names = [f"ch:{{{c}}}" for c in channels]
        if self.sharded:
            self.pubsub.ssubscribe(*names)
        else:
            self.pubsub.subscribe(*names)
        for _ in channels:
            m = self._next(timeout=2)
            assert m and m["type"] in ("subscribe", "ssubscribe"), m

    def _next(self, timeout):
        if self.sharded:
            return self.pubsub.get_sharded_message(timeout=timeout)
        return self.pubsub.get_message(timeout=timeout)

    def events(self, timeout: float = 1.0):
        import json as json_mod
        out = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            m = self._next(timeout=0.05)
            if m and m["type"] in ("message", "smessage"):
                message = json_mod.loads(m["data"])
                # Several events on one channel may come as one message: {"events": [event, ...]}.
                out.extend(message["events"] if "events" in message else [message])
        # On recoverable channels each event also carries its offset and epoch (test_recovery.py checks those): the
        # tests here compare what the event says.
        return [{k: v for k, v in e.items() if k not in ("offset", "epoch")} for e in out]

    def close(self):
        self.pubsub.close()
