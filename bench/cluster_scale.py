"""Does a Redis Cluster spread the service's load? (driven by bench/cluster-scale)

1. Classic PUBLISH vs. SPUBLISH on the 6-node cluster (3 primaries, 3 replicas): the same 20,000 events on 100
   channels, each channel with one subscriber; per node: cluster-bus publish messages received and Redis CPU time.
2. One release worker on a cluster of 3 primaries (no replicas), 40 public rooms and 1,000 users: the presence switch
   through wrk, and the share of all Redis commands each primary served (INFO commandstats deltas).
3. Redis commands and Redis CPU time per request, for each hot route, from the same deltas: the capacity model.
4. The same worker on 1 primary vs. 3 primaries: switch throughput and message delivery (posts through wrk, frames
   counted on 40 WebSockets, one per room).

Everything runs on one machine; the figures printed say what they can show on it."""
import argparse
import asyncio
import json
import os
import subprocess
import tempfile
import threading
import time

import redis
import requests
from redis.cluster import RedisCluster

from cluster_bench import start_worker
from presence_bench import lua_script, seed_users, wrk

ROOMS = [f"r{i:02d}" for i in range(40)]


def spread_key(prefix, name):
    """The bucket key the service uses for `name` in an index spread over 16 keys (RedisKeys.spreadBucket)."""
    from redis.crc import key_slot
    bucket = key_slot(name.encode()) % 16
    n = 0
    while key_slot(f"s{bucket}.{n}".encode()) // 1024 != bucket:
        n += 1
    return f"{prefix}:{{s{bucket}.{n}}}"


def cli(port, *args):
    return subprocess.run(["redis-cli", "-p", str(port), *map(str, args)], capture_output=True, text=True).stdout


def start_nodes(count, base, tmp, pin_cores):
    """`count` cluster-enabled redis-servers without replicas, the slots split evenly, joined."""
    ports, procs = [base + i for i in range(count)], []
    for i, port in enumerate(ports):
        d = os.path.join(tmp, f"n{port}")
        os.makedirs(d)
        cmd = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", d, "--save", "",
               "--appendonly", "no", "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
               "--cluster-port", str(port + 1000), "--daemonize", "no", "--loglevel", "warning"]
        if pin_cores:
            cmd = ["taskset", "-c", str(pin_cores[i % len(pin_cores)])] + cmd
        procs.append(subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    for port in ports:
        for _ in range(100):
            if cli(port, "ping").strip() == "PONG":
                break
            time.sleep(0.05)
    step = 16384 // count
    for i, port in enumerate(ports):
        cli(port, "cluster", "addslotsrange", i * step, 16383 if i == count - 1 else (i + 1) * step - 1)
    for _ in range(300):
        if all("cluster_state:ok" in cli(p, "cluster", "info") and
               len(cli(p, "cluster", "nodes").strip().splitlines()) == count for p in ports):
            break
        for port in ports[1:]:  # again until every node knows every other
            if len(cli(port, "cluster", "nodes").strip().splitlines()) < count:
                cli(port, "cluster", "meet", "127.0.0.1", ports[0], ports[0] + 1000)
        time.sleep(0.2)
    else:
        raise SystemExit(f"the benchmark cluster did not come up: {cli(ports[0], 'cluster', 'info')[:200]}")
    return ports, procs


def node_counters(port):
    r = redis.Redis(port=port, decode_responses=True)
    stats = r.info("commandstats")
    cpu = r.info("cpu")
    info = dict(line.split(":", 1) for line in cli(port, "cluster", "info").split() if ":" in line)
    return {
        "calls": sum(v["calls"] for v in stats.values()),
        "usec": sum(v["usec"] for v in stats.values()),
        "cpu": float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"]),
        "bus_publish": int(info.get("cluster_stats_messages_publish_received", 0)),
        "bus_publishshard": int(info.get("cluster_stats_messages_publishshard_received", 0)),
    }


def delta(before, after):
    return {p: {k: after[p][k] - before[p][k] for k in after[p]} for p in after}


def snapshot(ports):
    return {p: node_counters(p) for p in ports}


def seed_rooms(client):
    now = int(time.time() * 1000)
    for room in ROOMS:
        client.hset(f"room:{{{room}}}:meta", mapping={"id": room, "name": room, "type": "public", "createdAt": now,
                                                     "createdBy": "bench"})
        client.sadd(spread_key("rooms:public", room), room)


# 1. PUBLISH vs SPUBLISH --------------------------------------------------------------------------------------------

def publish_vs_spublish(url):
    ports = [int(s.rsplit(":", 1)[1]) for s in url.split("//", 1)[1].split(",")]
    client = RedisCluster(host="127.0.0.1", port=ports[0], decode_responses=True)
    channels = [f"ch:{{bench-{i}}}" for i in range(100)]
    payload = "x" * 200
    results = {}
    for mode in ("PUBLISH", "SPUBLISH"):
        # One subscriber per channel: classic on a node of the cluster, sharded on the channel's primary.
        subscribers = []
        if mode == "PUBLISH":
            sub = redis.Redis(port=ports[0]).pubsub()
            sub.subscribe(*channels)
            subscribers.append(sub)
        else:
            sub = client.pubsub()
            for ch in channels:
                sub.ssubscribe(ch)
            subscribers.append(sub)
        time.sleep(0.5)
        before = snapshot(ports)
        nodes = {}
        for ch in channels:
            owner = client.get_node_from_key(ch)
            nodes.setdefault(owner.port, []).append(ch)
        for port, chs in nodes.items():
            r = redis.Redis(port=port if mode == "SPUBLISH" else ports[1])
            pipe = r.pipeline(transaction=False)
            for i in range(20000 * len(chs) // len(channels)):
                pipe.execute_command(mode, chs[i % len(chs)], payload)
                if i % 2000 == 1999:
                    pipe.execute()
            pipe.execute()
        time.sleep(1.0)
        results[mode] = delta(before, snapshot(ports))
        for s in subscribers:
            s.close()
    print("\n1. The same 20,000 events on 100 channels, one subscriber each, on the 6-node cluster")
    print("   (3 primaries, 3 replicas); per node: cluster-bus publish messages received, Redis CPU ms")
    print(f"   {'node':>6} {'role':>7} | {'PUBLISH bus msgs':>16} {'CPU ms':>7} | {'SPUBLISH bus msgs':>17} {'CPU ms':>7}")
    for port in ports:
        role = cli(port, "role").split()[0]
        p, s = results["PUBLISH"][port], results["SPUBLISH"][port]
        print(f"   {port:>6} {role:>7} | {p['bus_publish'] + p['bus_publishshard']:>16} {p['cpu'] * 1000:>7.0f} | "
              f"{s['bus_publish'] + s['bus_publishshard']:>17} {s['cpu'] * 1000:>7.0f}")
    total = {m: sum(v["cpu"] for v in results[m].values()) * 1000 for m in results}
    print(f"   all nodes: PUBLISH {total['PUBLISH']:.0f} ms CPU, SPUBLISH {total['SPUBLISH']:.0f} ms CPU "
          f"(ratio {total['SPUBLISH'] / max(1, total['PUBLISH']):.2f})")


# 2-4. The worker on 1 and 3 primaries -----------------------------------------------------------------------------

class Readers:
    """40 WebSockets on one worker, one per room channel, counting frames."""

    def __init__(self, port):
        self.port, self.count, self.stop = port, 0, threading.Event()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=lambda: asyncio.run(self.run()), daemon=True)
        self.thread.start()
        assert self.ready.wait(20), "the delivery readers did not connect"

    async def run(self):
        import websockets
        socks = []
        for room in ROOMS:
            ws = await websockets.connect(f"ws://127.0.0.1:{self.port}/app/bench-key?protocol=7", max_queue=None)
            await ws.recv()
            await ws.send(json.dumps({"event": "pusher:subscribe", "data": {"channel": f"room-{room}"}}))
            await ws.recv()
            socks.append(ws)
        self.ready.set()

        async def read(ws):
            while not self.stop.is_set():
                try:
                    await asyncio.wait_for(ws.recv(), 0.5)
                    self.count += 1
                except asyncio.TimeoutError:
                    continue
                except Exception:
                    return
        await asyncio.gather(*(read(ws) for ws in socks))


def per_request(name, ports, base, script, seconds, path):
    before = snapshot(ports)
    rps, lat, bad = wrk(base + path, script, seconds=seconds)
    d = delta(before, snapshot(ports))
    n = max(1, rps * seconds)
    calls = sum(v["calls"] for v in d.values()) / n
    cpu_us = sum(v["cpu"] for v in d.values()) * 1e6 / n
    return dict(name=name, rps=rps, p99=lat["99"], bad=bad, calls=calls, cpu_us=cpu_us, delta=d)


def worker_on(count, binary, seconds, tmp, base_port, worker_port, pin):
    ports, procs = start_nodes(count, base_port, tmp, pin)
    url = "redis+cluster://" + ",".join(f"127.0.0.1:{p}" for p in ports)
    client = RedisCluster(host="127.0.0.1", port=ports[0], decode_responses=True)
    seed_rooms(client)
    users = seed_users(client, 1000, "cs", with_tokens=True)
    os.environ.update(PUSHER_KEY="bench-key", PUSHER_SECRET="bench-secret", PUSHER_APP_ID="1",
                      MESSAGE_RATE_LIMIT="100000", HISTORY_LIMIT="100")
    log = open(os.path.join(tmp, f"worker-{count}.log"), "w")
    proc = start_worker(binary, worker_port, url, log)
    base = f"http://127.0.0.1:{worker_port}"
    rooms_lua = "{" + ",".join(f'"{r}"' for r in ROOMS) + "}"
    out = {}
    try:
        switch = lua_script(os.path.join(tmp, f"switch-{count}.lua"),
                            f'local rooms = {rooms_lua}; local a, b = rooms[math.random(#rooms)], rooms[math.random(#rooms)]; '
                            'wrk.body = string.format(\'{"previousRoomId":"%s","nextRoomId":"%s","username":"%s"}\', a, b, u[1])',
                            users)
        heartbeat = lua_script(os.path.join(tmp, f"heartbeat-{count}.lua"),
                               f'local rooms = {rooms_lua}; wrk.body = string.format(\'{{"roomId":"%s"}}\', rooms[math.random(#rooms)])',
                               users)
        post = lua_script(os.path.join(tmp, f"post-{count}.lua"),
                          f'local rooms = {rooms_lua}; wrk.path = "/api/rooms/" .. rooms[math.random(#rooms)] .. "/messages"; '
                          'wrk.body = \'{"content":"hello from the benchmark"}\'', users)
        wrk(base + "/api/presence/switch", switch, seconds=2)  # warm-up; every user is in some rooms now
        out["switch"] = per_request("presence switch", ports, base, switch, seconds, "/api/presence/switch")
        out["heartbeat"] = per_request("heartbeat (one room)", ports, base, heartbeat, seconds, "/api/presence/heartbeat")
        out["users"] = per_request("room user list", ports, base, None, seconds, "/api/rooms/r00/users")
        out["search"] = per_request("user search", ports, base, None, seconds, "/api/users?search=cs00001")
        readers = Readers(worker_port)
        time.sleep(0.5)
        before_frames = readers.count
        out["post"] = per_request("message post", ports, base, post, seconds, "/api/rooms/r00/messages")
        time.sleep(1.0)
        out["delivered"] = (readers.count - before_frames) / seconds
        readers.stop.set()
        out["health"] = per_request("GET /health", ports, base, None, seconds, "/health")
    finally:
        proc.terminate()
        proc.wait(15)
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(15)
    out["ports"] = ports
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default=os.environ.get("PRESENCE_SERVER_BIN"), help="default: PRESENCE_SERVER_BIN")
    ap.add_argument("--cluster-url", required=True)
    ap.add_argument("--seconds", type=int, default=8)
    args = ap.parse_args()
    cores = os.cpu_count() or 1
    print(f"Machine: {cores} cores. Redis nodes, the worker and wrk share them"
          + ("" if cores >= 6 else "; redis-servers are not pinned (no core to spare for each)") + ".")

    publish_vs_spublish(args.cluster_url)

    tmp = tempfile.mkdtemp(prefix="cluster-scale-")
    pin = list(range(2, cores)) if cores >= 6 else None
    import random
    base = random.randrange(29000, 29800, 20)  # nodes base..base+2, cluster bus +1000, worker base+10
    one = worker_on(1, args.binary, args.seconds, tmp, base, base + 10, pin)
    three = worker_on(3, args.binary, args.seconds, tmp, base + 100, base + 110, pin)

    d = three["switch"]["delta"]
    total = sum(v["calls"] for v in d.values())
    print("\n2. Presence switch over 40 rooms and 1,000 users, one worker on 3 primaries: share of Redis commands")
    for port in three["ports"]:
        print(f"   primary {port}: {d[port]['calls']:>8} commands, {100 * d[port]['calls'] / max(1, total):5.1f} %")
    print(f"   largest share: {100 * max(v['calls'] for v in d.values()) / max(1, total):.1f} % (target <= 45 %)")

    print("\n3. Per request (3 primaries): Redis commands (as INFO commandstats counts them: the calls scripts make")
    print("   count too) and Redis CPU time, all primaries together")
    print(f"   {'route':<22} {'req/s':>8} {'p99 ms':>7} {'commands':>9} {'Redis CPU us':>13}")
    for key in ("switch", "heartbeat", "post", "users", "search", "health"):
        m = three[key]
        print(f"   {m['name']:<22} {m['rps']:>8.0f} {m['p99']:>7.1f} {m['calls']:>9.1f} {m['cpu_us']:>13.1f}")
    print("   capacity of one primary, from its Redis CPU time per request (one core, I/O included):")
    for key in ("switch", "heartbeat", "post"):
        m = three[key]
        if m["cpu_us"] > 0:
            print(f"   {m['name']:<22} ~{1e6 / m['cpu_us']:>8.0f} req/s per primary core; N primaries: N x that, "
                  f"as long as the keys spread")

    print("\n4. One worker on 1 primary vs. on 3 primaries")
    print(f"   {'measure':<34} {'1 primary':>10} {'3 primaries':>12} {'ratio':>6}")
    for label, a, b in [("switch req/s", one["switch"]["rps"], three["switch"]["rps"]),
                        ("message post req/s", one["post"]["rps"], three["post"]["rps"]),
                        ("deliveries/s (40 sockets)", one["delivered"], three["delivered"]),
                        ("GET /health req/s (ceiling)", one["health"]["rps"], three["health"]["rps"])]:
        print(f"   {label:<34} {a:>10.0f} {b:>12.0f} {b / max(1, a):>6.2f}")
    print("   switch / GET /health: 1 primary "
          f"{one['switch']['rps'] / one['health']['rps']:.2f}, 3 primaries {three['switch']['rps'] / three['health']['rps']:.2f}")
    for key in ("switch", "post"):
        for o in (one, three):
            assert o[key]["bad"] == 0, f"{o[key]['bad']} failed requests ({key})"


if __name__ == "__main__":
    main()
