"""Fixtures for tests against a running `ops/cluster` (nginx on CLUSTER_URL, workers and Redis from .data/cluster)."""
import os
import subprocess

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
STATE = os.path.join(ROOT, ".data", "cluster")


class ClusterInfo:
    def __init__(self):
        self.url = os.environ.get("CLUSTER_URL", "http://127.0.0.1:8080")
        self.workers = int(open(os.path.join(STATE, "workers")).read())
        self.redis_port = int(open(os.path.join(STATE, "redis.port")).read())
        # The workers' REDIS_URL: redis://... or, under `ops/cluster up --redis-cluster`, redis+cluster://...
        self.redis_url = open(os.path.join(STATE, "redis.url")).read().strip()

    def worker_port(self, i):
        return int(open(os.path.join(STATE, f"worker-{i}.port")).read())

    def worker_pid(self, i):
        return int(open(os.path.join(STATE, f"worker-{i}.pid")).read())

    def worker_url(self, i):
        return f"http://127.0.0.1:{self.worker_port(i)}"

    def metrics_url(self, i):
        """Worker i's /metrics: ops/cluster writes its metrics listener's URL to .data/cluster/metrics-<i>; a
        cluster started before that file existed served /metrics on the API port."""
        path = os.path.join(STATE, f"metrics-{i}")
        if os.path.exists(path):
            return open(path).read().strip()
        return self.worker_url(i) + "/metrics"

    def alive(self, i):
        try:
            os.kill(self.worker_pid(i), 0)
            return True
        except OSError:
            return False

    def start_worker(self, i):
        subprocess.run([os.path.join(ROOT, "ops", "cluster"), "start-worker", str(i)], check=True, cwd=ROOT,
                       capture_output=True, timeout=60)

    def redis(self):
        import redis
        return redis.Redis(port=self.redis_port, decode_responses=True)

    def listen(self, channel):
        """A pub/sub listener for one broadcast channel, as the workers publish it: classic SUBSCRIBE on one Redis,
        sharded SSUBSCRIBE on a Redis Cluster. `next(timeout)` returns a message's data or None."""
        return Listener(self.redis_url, channel)


class Listener:
    def __init__(self, redis_url, channel):
        import redis
        from redis.cluster import RedisCluster
        if redis_url.startswith("redis+cluster://"):
            host, port = redis_url[len("redis+cluster://"):].split(",")[0].rsplit(":", 1)
            self.client = RedisCluster(host=host, port=int(port), decode_responses=True)
            self.pubsub = self.client.pubsub()
            self.pubsub.ssubscribe(channel)
            self.sharded = True
        else:
            host, port = redis_url[len("redis://"):].split("/")[0].rsplit(":", 1)
            self.client = redis.Redis(host=host, port=int(port), decode_responses=True)
            self.pubsub = self.client.pubsub()
            self.pubsub.subscribe(channel)
            self.sharded = False
        confirmation = self._get(2)
        assert confirmation and confirmation["type"] in ("subscribe", "ssubscribe"), confirmation

    def _get(self, timeout):
        if self.sharded:
            return self.pubsub.get_sharded_message(timeout=timeout)
        return self.pubsub.get_message(timeout=timeout)

    def next(self, timeout):
        m = self._get(timeout)
        if m and m["type"] in ("message", "smessage"):
            return m["data"]
        return None

    def close(self):
        self.pubsub.close()


@pytest.fixture
def cluster():
    info = ClusterInfo()
    yield info
    for i in range(1, info.workers + 1):  # leave every worker running for the next test
        if not info.alive(i):
            info.start_worker(i)
