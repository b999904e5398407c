"""One release worker on one Redis vs. the same worker on a 6-node Redis Cluster (driven by bench/redis-cluster):
presence switch, a room's user list and GET /health, each through wrk in the same run, plus the Redis calls per switch
(INFO commandstats deltas summed over the primaries; they count the calls scripts make inside Redis as well as the
commands the worker sends)."""
import argparse
import os
import tempfile

import redis
from redis.cluster import RedisCluster

from lib.benchlib import free_port, start_ready_worker
from presence_bench import lua_script, seed_users, wrk


def start_worker(binary, port, redis_url, log):
    """One worker on redis_url with the per-user presence and search limits lifted, ready when this returns."""
    return start_ready_worker(port, log, binary=binary, what=f"on {redis_url}", REDIS_URL=redis_url, LOG_LEVEL="error",
                              METRICS_PORT="0", PRESENCE_RATE_LIMIT="1000000", SEARCH_RATE_LIMIT="1000000")


def commands_total(nodes):
    total = 0
    for node in nodes:
        stats = node.info("commandstats")
        total += sum(v["calls"] for v in stats.values())
    return total


def measure(name, binary, port, redis_url, client, nodes, seconds, tmp):
    with open(os.path.join(tmp, f"{name}.log"), "w") as log:
        proc = start_worker(binary, port, redis_url, log)
        try:
            base = f"http://127.0.0.1:{port}"
            users = seed_users(client, 1000, "cb", with_tokens=True)
            switch = lua_script(os.path.join(tmp, f"{name}-switch.lua"),
                                'local a, b = "general", "random"; if n % 2 == 0 then a, b = b, a end; '
                                'wrk.body = string.format(\'{"previousRoomId":"%s","nextRoomId":"%s","username":"%s"}\', a, b, u[1])',
                                users)
            wrk(base + "/api/presence/switch", switch, seconds=2)  # warm-up
            before = commands_total(nodes)
            switch_rps, switch_lat, bad = wrk(base + "/api/presence/switch", switch, seconds=seconds)
            per_switch = (commands_total(nodes) - before) / max(1, switch_rps * seconds)
            assert bad == 0, f"{bad} switches failed on {name}"
            users_rps, users_lat, bad = wrk(base + "/api/rooms/general/users", seconds=seconds)
            assert bad == 0, f"{bad} user lists failed on {name}"
            health_rps, _, _ = wrk(base + "/health", seconds=seconds)
            return dict(switch=switch_rps, switch_p99=switch_lat["99"], users=users_rps, users_p99=users_lat["99"],
                        health=health_rps, per_switch=per_switch)
        finally:
            proc.terminate()
            proc.wait(15)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--binary", default=os.environ.get("PRESENCE_SERVER_BIN"), help="default: PRESENCE_SERVER_BIN")
    p.add_argument("--redis-port", type=int, required=True)
    p.add_argument("--cluster-url", required=True)
    p.add_argument("--seconds", type=int, default=8)
    a = p.parse_args()
    tmp = tempfile.mkdtemp(prefix="cluster-bench-")
    print(f"machine: {os.cpu_count()} cores; {a.seconds} s per wrk run (2 threads, 50 connections); one worker")
    single = redis.Redis(port=a.redis_port, decode_responses=True)
    seeds = [s.rsplit(":", 1) for s in a.cluster_url.split("//", 1)[1].split(",")]
    cluster = RedisCluster(host=seeds[0][0], port=int(seeds[0][1]), decode_responses=True)
    primaries = [redis.Redis(host=n.host, port=n.port) for n in cluster.get_primaries()]
    results = {
        "one Redis": measure("single", a.binary, free_port(), f"redis://127.0.0.1:{a.redis_port}", single, [single], a.seconds, tmp),
        "Redis Cluster (3 primaries)": measure("cluster", a.binary, free_port(), a.cluster_url, cluster, primaries, a.seconds, tmp),
    }
    print(f"\n{'':30} {'switch/s':>9} {'p99 ms':>7} {'users/s':>8} {'p99 ms':>7} {'health/s':>9} {'switch/health':>13} {'calls/switch':>12}")
    for name, r in results.items():
        print(f"{name:30} {r['switch']:9.0f} {r['switch_p99']:7.2f} {r['users']:8.0f} {r['users_p99']:7.2f} "
              f"{r['health']:9.0f} {r['switch'] / r['health']:13.2f} {r['per_switch']:12.1f}")
    one, many = results["one Redis"], results["Redis Cluster (3 primaries)"]
    print(f"\ncluster / one Redis: switch {many['switch'] / one['switch']:.2f}, user list {many['users'] / one['users']:.2f}, "
          f"health {many['health'] / one['health']:.2f}")


if __name__ == "__main__":
    main()
