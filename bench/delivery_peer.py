"""Delivery against a peer (driven by bench/delivery-peer): our service and nginx's nchan module side by side on one
redis-server, driven by the same compiled load generator (`delivery-load`, bench/DeliveryLoad) at the same publisher
rate, shape by shape; ends with one JSON line holding every figure.

Servers: ours is one release worker (PRESENCE_SERVER_BIN); nchan is nginx with a generated nginx.conf in the run's
work directory (master process on, worker_processes 1, the nchan module loaded from Debian's path, nchan_redis_pass to
an upstream on the shared redis-server). CPU is utime+stime from /proc (for nginx the master and its workers), sampled
when the generator prints "PHASE publish-start" and "PHASE drained"; RSS is VmRSS from /proc.
"""
import argparse
import datetime
import glob
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time

from lib.benchlib import free_port, rss_kib, server_bin, start_ready_worker, stop

CLK_TCK = os.sysconf("SC_CLK_TCK")
KEY, SECRET, APP_ID = "peer-key", "peer-secret", "peer"
NCHAN_MODULE_PATHS = ["/usr/lib/nginx/modules/ngx_nchan_module.so", "/usr/share/nginx/modules/ngx_nchan_module.so"]


def log(text=""):
    print(text, flush=True)


# ---------------------------------------------------------------- /proc

def proc_cpu(pid, kernel_only=False):
    """utime + stime of pid in seconds (only stime with kernel_only; 0 when it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[12]) + (0 if kernel_only else int(fields[11]))) / CLK_TCK
    except (OSError, IndexError, ValueError):
        return 0.0


def proc_children(pid):
    found = []
    for path in glob.glob(f"/proc/{pid}/task/*/children"):
        try:
            found += [int(x) for x in open(path).read().split()]
        except OSError:
            pass
    return found


def hard_nofile():
    """The descriptors this process (and so each server and the generator it starts) may open: bench/delivery-peer
    raised the soft limit to the hard one."""
    import resource
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    return 1 << 20 if soft == resource.RLIM_INFINITY else soft


def wait_port(port, proc, timeout=10.0, what="server"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"delivery-peer: the {what} on port {port} did not start")


# ---------------------------------------------------------------- the two servers

class Ours:
    name = "ours"

    def __init__(self, work, redis_port, settings):
        self.work, self.redis_port, self.settings = work, redis_port, settings
        self.proc = None
        self.index = 0

    def start(self, **extra):
        self.index += 1
        self.port = free_port()
        self.log = open(os.path.join(self.work, f"worker-{self.index}.log"), "w")
        settings = dict(self.settings, **extra)
        self.proc = start_ready_worker(self.port, self.log, timeout=20, what="presence-server worker",
                                       REDIS_URL=f"redis://127.0.0.1:{self.redis_port}", PUSHER_APP_ID=APP_ID,
                                       PUSHER_KEY=KEY, PUSHER_SECRET=SECRET, LOG_LEVEL="error", METRICS_PORT="0",
                                       **settings)

    def stop(self):
        stop(self.proc)
        self.proc = None

    def pids(self):
        return [self.proc.pid]

    def rss_pids(self):
        return [self.proc.pid]

    def generator_args(self):
        return ["--protocol", "pusher", "--url", f"ws://127.0.0.1:{self.port}/app/{KEY}?protocol=7",
                "--publish", "pusher", "--publish-url", f"http://127.0.0.1:{self.port}",
                "--app-id", APP_ID, "--key", KEY, "--secret", SECRET]


class Nchan:
    name = "nchan"

    def __init__(self, work, redis_port, mode):
        self.work, self.redis_port, self.mode = work, redis_port, mode
        self.proc = None
        self.index = 0
        self.module = next((p for p in NCHAN_MODULE_PATHS if os.path.exists(p)), None)
        if not self.module:
            raise SystemExit("delivery-peer: no ngx_nchan_module.so (apt-get install libnginx-mod-nchan)")

    def config(self, directory, connections, ping):
        """nginx.conf; connections: worker_connections (nginx warns when it passes the descriptor limit, and nchan
        takes more connection slots than it has sockets: set it well above them, the descriptors are the limit)."""
        user = "user root;" if os.geteuid() == 0 else ""
        temp = "\n".join(f"    {kind}_temp_path {directory}/{kind};"
                         for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
        ping_line = f"nchan_websocket_ping_interval {ping};" if ping else ""
        return f"""# generated by bench/delivery_peer.py
load_module {self.module};
{user}
daemon off;
master_process on;
worker_processes 1;
worker_rlimit_nofile {hard_nofile()};
pid {directory}/nginx.pid;
error_log {directory}/error.log warn;
events {{
    worker_connections {connections};
    multi_accept on;
}}
http {{
    access_log off;
    # The generator's publisher keeps its few connections open for the whole run (nginx closes one after 1,000
    # requests by default).
    keepalive_requests 10000000;
    keepalive_timeout 600s;
{temp}
    upstream nchan_redis {{
        nchan_redis_server redis://127.0.0.1:{self.redis_port};
    }}
    nchan_redis_storage_mode {self.mode};
    server {{
        listen 127.0.0.1:{self.port} backlog=4096;
        location ~ /sub/(\\w+)$ {{
            nchan_subscriber websocket;
            nchan_channel_id $1;
            nchan_subscriber_first_message newest;
            nchan_redis_pass nchan_redis;
            {ping_line}
        }}
        location /pub {{
            nchan_publisher;
            nchan_channel_id $arg_id;
            nchan_redis_pass nchan_redis;
        }}
    }}
}}
"""

    def start(self, connections=40000, ping=0):
        self.index += 1
        self.port = free_port()
        self.dir = os.path.join(self.work, f"nginx-{self.index}")
        os.makedirs(self.dir, exist_ok=True)
        self.conf = os.path.join(self.dir, "nginx.conf")
        with open(self.conf, "w") as f:
            f.write(self.config(self.dir, connections, ping))
        argv = ["nginx", "-c", self.conf, "-p", self.dir + "/", "-e", os.path.join(self.dir, "error.log")]
        check = subprocess.run([*argv, "-t"], capture_output=True, text=True)
        if check.returncode != 0:
            raise SystemExit(f"delivery-peer: nginx -t refused the generated {self.conf}:\n{check.stderr}")
        self.log = open(os.path.join(self.dir, "stderr.log"), "w")
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT)
        wait_port(self.port, self.proc, what="nginx")
        deadline = time.monotonic() + 10
        while not proc_children(self.proc.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)  # nchan connects to Redis from the worker

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def pids(self):
        return [self.proc.pid, *proc_children(self.proc.pid)]

    def rss_pids(self):
        return proc_children(self.proc.pid)

    def generator_args(self):
        return ["--protocol", "nchan", "--url", f"ws://127.0.0.1:{self.port}/sub/{{channel}}",
                "--publish", "nchan", "--publish-url", f"http://127.0.0.1:{self.port}/pub?id={{channel}}"]


# ---------------------------------------------------------------- one generator run

class Runner:
    def __init__(self, args):
        self.args = args
        self.generator = os.environ["DELIVERY_LOAD_BIN"]
        self.redis_pid = args.redis_pid
        self.count = 0

    def snapshot(self, server, gen_pid):
        pids = server.pids()
        return {"t": time.monotonic(), "server": sum(proc_cpu(p) for p in pids),
                "server_kernel": sum(proc_cpu(p, kernel_only=True) for p in pids), "redis": proc_cpu(self.redis_pid),
                "gen": proc_cpu(gen_pid), "rss": sum(rss_kib(p) or 0 for p in server.rss_pids())}

    def run(self, server, label, channels, per_channel, rate, events, idle=0.0, drain=None,
            connect_concurrency=None):
        """Runs the generator once against server; returns its JSON with the CPU and RSS windows added."""
        self.count += 1
        prefix = f"r{self.count}_"  # fresh channel names every run: nothing of an earlier run is delivered
        argv = [self.generator, *server.generator_args(), "--channel-prefix", prefix,
                "--channel-count", str(channels), "--subscribers-per-channel", str(per_channel),
                "--rate", str(rate), "--events-per-channel", str(events),
                "--drain-timeout", str(drain if drain is not None else self.args.drain_timeout),
                "--publish-connections", str(self.args.publish_connections)]
        if idle:
            argv += ["--idle-seconds", str(idle)]
        # Fresh source addresses every run (127.0.<run>.2, .3, ...: one per 25,000 sockets, under the 28,000 ephemeral
        # ports of the default range), so the TIME_WAIT ports of earlier runs never run a later one out of ports.
        count = max(1, -(-channels * per_channel // 25000))
        sources = [f"127.0.{self.count % 250 + 1}.{2 + i}" for i in range(count)]
        argv += ["--sources", ",".join(sources)]
        if connect_concurrency:
            argv += ["--connect-concurrency", str(connect_concurrency)]
        errors = open(os.path.join(self.args.work, f"generator-{self.count}.err"), "w")
        before = {"t": time.monotonic(), "rss": sum(rss_kib(p) or 0 for p in server.rss_pids())}
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=errors, text=True,
                                bufsize=1)
        limit = 120 + idle + channels * events / max(rate, 1) + (drain or self.args.drain_timeout) \
            + channels * per_channel / 1000
        timer = threading.Timer(limit, proc.kill)
        timer.start()
        phases, result = {"before": before}, None
        try:
            for line in proc.stdout:
                line = line.strip()
                if line.startswith("PHASE"):
                    parts = line.split()
                    phases[parts[1]] = self.snapshot(server, proc.pid)
                    log(f"    {label}: {line}")
                elif line.startswith("{"):
                    try:
                        result = json.loads(line)
                    except ValueError:
                        log(f"    {label}: {line}")
                elif line:
                    log(f"    {label}: {line}")
            code = proc.wait()
        finally:
            timer.cancel()
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        errors.close()
        if result is None:
            tail = open(errors.name).read()[-2000:]
            raise SystemExit(f"delivery-peer: {label}: the generator (exit {code}) printed no result\n{tail}")
        if result.get("errors") or result.get("established", 0) < result.get("sockets", 0):
            with open(errors.name) as f:
                for line in f.read().splitlines()[:5]:
                    log(f"    {label}: {line}")
        figures = self.figures(result, phases, server)
        if not idle:
            figures.pop("server_rss_kib", None)
            figures.pop("rss_kib_per_socket", None)
            figures.pop("rss_kib_per_socket_after_idle", None)
        return figures

    @staticmethod
    def figures(r, phases, server):
        """The generator's JSON plus the windows: server/Redis/generator CPU from publish-start to drained."""
        out = dict(r)
        start, end = phases.get("publish-start"), phases.get("drained")
        received = r.get("received", 0)
        if start and end:
            span = end["t"] - start["t"]
            server_cpu, redis_cpu = end["server"] - start["server"], end["redis"] - start["redis"]
            gen_cpu = end["gen"] - start["gen"]
            # The delivery time: from publish-start to the last frame (the generator's last_delivery_ms); its
            # drained phase comes later when frames are lost (a drain wait).
            last = r.get("last_delivery_ms") or 0
            active = last / 1000.0 if last > 0 else span
            out.update({
                "window_seconds": round(span, 3),
                "deliveries_per_second": round(received / active, 1) if active > 0 else None,
                "server_cpu_seconds": round(server_cpu, 3),
                "redis_cpu_seconds": round(redis_cpu, 3),
                "generator_window_cpu_seconds": round(gen_cpu, 3),
                "server_cpu_s_per_million": round(server_cpu / received * 1e6, 2) if received else None,
                "redis_cpu_s_per_million": round(redis_cpu / received * 1e6, 2) if received else None,
                "deliveries_per_server_cpu_second": round(received / server_cpu) if server_cpu > 0 else None,
                "server_us_per_frame": round(server_cpu / received * 1e6, 3) if received else None,
                # The part of it spent in the kernel (stime): the writes, and on loopback the receiving side's TCP
                # work, which the sending process is charged for.
                "server_kernel_us_per_frame": round((end["server_kernel"] - start["server_kernel"]) / received * 1e6, 3)
                if received else None,
                "generator_cpu_share_of_machine": round(gen_cpu / (span * os.cpu_count()), 3) if span > 0 else None,
                "generator_cpu_share_of_used": round(gen_cpu / (gen_cpu + server_cpu + redis_cpu), 3)
                if gen_cpu + server_cpu + redis_cpu > 0 else None,
            })
        rss = {k: phases[k]["rss"] for k in ("before", "subscribed", "publish-start", "drained") if k in phases}
        out["server_rss_kib"] = rss
        subscribed = r.get("subscribed") or 0
        if "subscribed" in rss and subscribed:
            out["rss_kib_per_socket"] = round((rss["subscribed"] - rss["before"]) / subscribed, 2)
            if "publish-start" in rss:
                out["rss_kib_per_socket_after_idle"] = round((rss["publish-start"] - rss["before"]) / subscribed, 2)
        return out


def brief(r):
    def f(key, fmt="{:,.1f}"):
        value = r.get(key)
        return "-" if value is None else fmt.format(value)
    return (f"received {r.get('received', 0):,}/{r.get('due', 0):,} lost {r.get('lost', 0)} dup {r.get('duplicates', 0)}"
            f" | {f('deliveries_per_second', '{:,.0f}')} deliveries/s | server {f('server_cpu_s_per_million', '{:.2f}')}"
            f" CPU-s/M, Redis {f('redis_cpu_s_per_million', '{:.2f}')} CPU-s/M | p50 {f('p50_ms')} p99 {f('p99_ms')}"
            f" max {f('max_ms')} ms | generator {f('generator_us_per_frame', '{:.2f}')} us/frame"
            + (f" | {r['publish_failures']} publish failures" if r.get("publish_failures") else ""))


def ratio(ours, nchan):
    a, b = ours.get("deliveries_per_server_cpu_second"), nchan.get("deliveries_per_server_cpu_second")
    return round(a / b, 3) if a and b else None


# What each rate step keeps in the JSON.
STEP_FIELDS = ("rate", "clean", "events_published", "publish_failures", "publish_seconds", "due", "received", "lost", "duplicates",
               "errors", "p50_ms", "p99_ms", "max_ms", "last_delivery_ms", "deliveries_per_second",
               "server_cpu_s_per_million", "redis_cpu_s_per_million", "deliveries_per_server_cpu_second",
               "generator_us_per_frame", "generator_cpu_share_of_machine", "generator_cpu_share_of_used")


def clean(r, rate, p99_limit):
    published_rate = r.get("events_published", 0) / r["publish_seconds"] if r.get("publish_seconds") else 0
    return (r.get("lost", 1) == 0 and r.get("duplicates", 1) == 0 and r.get("received") == r.get("due")
            and r.get("publish_failures", 1) == 0
            and (r.get("p99_ms") or 1e9) <= p99_limit and published_rate >= 0.9 * rate)


# ---------------------------------------------------------------- main

def main():
    p = argparse.ArgumentParser(prog="bench/run delivery-peer")
    p.add_argument("--work", required=True)
    p.add_argument("--redis-port", type=int, required=True)
    p.add_argument("--redis-pid", type=int, required=True)
    p.add_argument("--rooms", type=int, default=100, help="shape 1 and 4: channels")
    p.add_argument("--room-size", type=int, default=100, help="shape 1 and 4: subscribers per channel")
    p.add_argument("--rate", type=float, default=300, help="shapes 1 and 2: events/s, the same for both servers")
    p.add_argument("--events", type=int, default=30, help="shape 1: events per channel")
    p.add_argument("--broadcast-size", type=int, default=10000, help="shape 2: subscribers of the one channel")
    p.add_argument("--broadcast-rate", type=float, default=5, help="shape 2: events/s")
    p.add_argument("--broadcast-events", type=int, default=30, help="shape 2: events")
    p.add_argument("--idle-sockets", type=int, default=100000, help="shape 3: idle subscribed sockets")
    p.add_argument("--idle-seconds", type=float, default=25, help="shape 3: held idle with pings running")
    p.add_argument("--rates", default="250,500,750,1000,1500,2000,3000,4000,6000,8000",
                   help="shape 4: rates tried, in order")
    p.add_argument("--step-seconds", type=float, default=5, help="shape 4: seconds of publishing per step")
    p.add_argument("--p99-limit-ms", type=float, default=500, help="shape 4: a step with a higher p99 is not clean")
    p.add_argument("--drain-timeout", type=float, default=15)
    p.add_argument("--publish-connections", type=int, default=16,
                   help="the publisher's keep-alive connections (one request in flight on each)")
    p.add_argument("--only", choices=["ours", "nchan"], help="one server only")
    p.add_argument("--shapes", default="1,2,3,4", help="which shapes, e.g. 1,2")
    p.add_argument("--skip-idle-nchan", action="store_true", help="shape 3 for ours only")
    p.add_argument("--skip-rates-nchan", action="store_true", help="shape 4 for ours only")
    a = p.parse_args()
    shapes = {int(x) for x in a.shapes.split(",") if x}
    mode = os.environ.get("NCHAN_REDIS_MODE", "distributed")
    runner = Runner(a)

    nofile = hard_nofile()
    # Each socket is a descriptor in the server and in the generator: keep 1,000 for everything else.
    idle_cap = max(0, nofile - 1000)
    idle_n = min(a.idle_sockets, idle_cap)
    port_range = open("/proc/sys/net/ipv4/ip_local_port_range").read().split()
    per_address = max(idle_n, a.broadcast_size, a.rooms * a.room_size) + 1000
    ours_settings = {"MAX_CONNECTIONS": str(per_address + 1000), "MAX_CONNECTIONS_PER_ADDRESS": str(per_address)}

    try:
        redis_version = subprocess.run(["redis-server", "--version"], capture_output=True, text=True).stdout.split()[2]
    except (OSError, IndexError):
        redis_version = "?"
    nginx_version = subprocess.run(["nginx", "-v"], capture_output=True, text=True).stderr.strip().split("/")[-1]
    nchan_version = subprocess.run(["dpkg-query", "-W", "-f=${Version}", "libnginx-mod-nchan"], capture_output=True,
                                   text=True).stdout.strip()
    machine = {"cores": os.cpu_count(), "redis": redis_version, "nginx": nginx_version, "nchan_package": nchan_version,
               "rlimit_nofile": nofile, "fs_nr_open": int(open("/proc/sys/fs/nr_open").read()),
               "ip_local_port_range": " ".join(port_range)}
    servers_note = {
        "ours": "presence-server, one release worker process (its event loops are threads of that process)",
        "nchan": f"nginx {nginx_version} + nchan ({nchan_version}), master_process on, worker_processes 1; "
                 f"nchan_redis_pass, nchan_redis_storage_mode {mode}",
        "redis": "one redis-server shared by both, the CPU of each run counted separately",
        "generator": "delivery-load (compiled), on the same machine; CPU windows from PHASE publish-start to drained",
    }
    log(f"delivery-peer: {machine['cores']} cores, Redis {redis_version}, nginx {nginx_version} + nchan "
        f"{nchan_version} (1 worker process), ours: 1 worker process; RLIMIT_NOFILE {nofile}")
    which = [s for s in ("ours", "nchan") if a.only in (None, s)]
    ours = Ours(a.work, a.redis_port, ours_settings)
    nchan = Nchan(a.work, a.redis_port, mode)
    servers = {"ours": ours, "nchan": nchan}
    out = {"bench": "delivery-peer", "machine": machine, "servers": servers_note, "shapes": {}}
    shape_out = out["shapes"]

    def start(name, **kwargs):
        if name == "ours":
            ours.start(**kwargs.get("ours", {}))
        else:
            nchan.start(**kwargs.get("nchan", {}))
        return servers[name]

    try:
        # Shapes 1, 2 and 4 share one server process each.
        if shapes & {1, 2, 4}:
            for name in which:
                start(name)
            if 1 in shapes:
                log(f"shape 1: {a.rooms} rooms x {a.room_size} subscribers, {a.rate:g} events/s, "
                    f"{a.events} events per room")
                entry = shape_out["rooms"] = {"channels": a.rooms, "subscribers_per_channel": a.room_size,
                                              "rate": a.rate, "events_per_channel": a.events}
                for name in which:
                    entry[name] = runner.run(servers[name], f"rooms/{name}", a.rooms, a.room_size, a.rate, a.events)
                    log(f"  {name:5}: {brief(entry[name])}")
                if len(which) == 2:
                    entry["peer_ratio"] = ratio(entry["ours"], entry["nchan"])
                if "ours" in entry:
                    entry["ours_worker_us_per_frame"] = entry["ours"].get("server_us_per_frame")
            if 2 in shapes:
                log(f"shape 2: one channel x {a.broadcast_size} subscribers, {a.broadcast_rate:g} events/s, "
                    f"{a.broadcast_events} events")
                entry = shape_out["broadcast"] = {"channels": 1, "subscribers_per_channel": a.broadcast_size,
                                                  "rate": a.broadcast_rate, "events_per_channel": a.broadcast_events}
                for name in which:
                    entry[name] = runner.run(servers[name], f"broadcast/{name}", 1, a.broadcast_size,
                                             a.broadcast_rate, a.broadcast_events)
                    log(f"  {name:5}: {brief(entry[name])}")
                if len(which) == 2:
                    entry["peer_ratio"] = ratio(entry["ours"], entry["nchan"])
            if 4 in shapes:
                rates = [float(x) for x in a.rates.split(",") if x]
                log(f"shape 4: {a.rooms} rooms x {a.room_size}, rates {', '.join(f'{r:g}' for r in rates)} events/s, "
                    f"~{a.step_seconds:g} s each, clean = 0 lost, p99 <= {a.p99_limit_ms:g} ms, rate held")
                entry = shape_out["max_rate"] = {"channels": a.rooms, "subscribers_per_channel": a.room_size,
                                                 "p99_limit_ms": a.p99_limit_ms, "step_seconds": a.step_seconds}
                for name in which:
                    if name == "nchan" and a.skip_rates_nchan:
                        entry[name] = {"skipped": "--skip-rates-nchan"}
                        continue
                    steps, best = [], None
                    for rate in rates:
                        events = max(1, round(rate * a.step_seconds / a.rooms))
                        r = runner.run(servers[name], f"rate {rate:g}/{name}", a.rooms, a.room_size, rate, events,
                                       drain=min(a.drain_timeout, 10))
                        r["rate"] = rate
                        r["clean"] = clean(r, rate, a.p99_limit_ms)
                        steps.append({k: r.get(k) for k in STEP_FIELDS})
                        log(f"  {name:5} {rate:>7g}/s: {'clean' if r['clean'] else 'NOT clean'}: {brief(r)}")
                        if not r["clean"]:
                            break
                        best = r
                    entry[name] = {
                        "highest_clean_rate": best["rate"] if best else None,
                        "deliveries_per_second": best.get("deliveries_per_second") if best else None,
                        "p99_ms": best.get("p99_ms") if best else None,
                        "generator_cpu_share_of_machine": best.get("generator_cpu_share_of_machine") if best else None,
                        "generator_cpu_share_of_used": best.get("generator_cpu_share_of_used") if best else None,
                        "server_cpu_s_per_million": best.get("server_cpu_s_per_million") if best else None,
                        "steps": steps,
                    }
                if len(which) == 2 and entry.get("nchan", {}).get("steps"):
                    o, n = entry["ours"].get("highest_clean_rate"), entry["nchan"].get("highest_clean_rate")
                    entry["clean_rate_ratio"] = round(o / n, 3) if o and n else None
            for name in which:
                servers[name].stop()

        if 3 in shapes:
            capped = idle_n < a.idle_sockets
            log(f"shape 3: {idle_n:,} idle subscribed sockets on one channel, held {a.idle_seconds:g} s with pings "
                f"(ours ACTIVITY_TIMEOUT=10 PONG_TIMEOUT=5; nchan ping every 10 s), then one broadcast to all"
                + (f" (asked {a.idle_sockets:,}: capped by RLIMIT_NOFILE {nofile}, which this machine does not let "
                   f"even root raise)" if capped else ""))
            entry = shape_out["idle"] = {"asked": a.idle_sockets, "sockets": idle_n, "idle_seconds": a.idle_seconds,
                                         "capped_by_rlimit_nofile": nofile if capped else None}
            for name in which:
                if name == "nchan" and a.skip_idle_nchan:
                    entry[name] = {"skipped": "--skip-idle-nchan"}
                    continue
                server = start(name, ours={"ACTIVITY_TIMEOUT": "10", "PONG_TIMEOUT": "5"},
                               nchan={"connections": 2 * idle_n + 2000, "ping": 10})
                time.sleep(1)
                try:
                    r = runner.run(server, f"idle/{name}", 1, idle_n, 1, 1, idle=a.idle_seconds,
                                   drain=max(a.drain_timeout, 30))
                finally:
                    server.stop()
                entry[name] = r
                log(f"  {name:5}: established {r.get('established', 0):,} subscribed {r.get('subscribed', 0):,} "
                    f"in {r.get('connect_seconds', 0):.1f} s; RSS {r.get('rss_kib_per_socket', 0):.2f} KiB/socket "
                    f"({r.get('rss_kib_per_socket_after_idle', 0):.2f} after the idle hold); broadcast: "
                    f"{r.get('received', 0):,}/{r.get('due', 0):,}, lost {r.get('lost', 0)}, last delivery "
                    f"{r.get('last_delivery_ms', 0):,.1f} ms, closed {r.get('closed', 0)}")
            if len(which) == 2 and "deliveries_per_server_cpu_second" in entry.get("nchan", {}):
                entry["peer_ratio"] = ratio(entry["ours"], entry["nchan"])
    finally:
        for server in servers.values():
            server.stop()

    # The table: ours beside nchan per shape.
    log("")
    log(f"{'shape':<33}{'server':<7}{'deliveries/s':>14}{'CPU-s/M':>10}{'Redis/M':>10}{'p50 ms':>9}{'p99 ms':>9}"
        f"{'max ms':>9}{'lost':>7}{'dup':>5}{'gen us/fr':>10}{'peer ratio':>12}")
    titles = {"rooms": "1: rooms", "broadcast": "2: one channel", "idle": "3: idle, then broadcast"}
    for key, title in titles.items():
        entry = shape_out.get(key)
        if not entry:
            continue
        for name in which:
            r = entry.get(name, {})
            if "received" not in r:
                continue
            g = lambda k, fmt: "-" if r.get(k) is None else fmt.format(r[k])
            pr = entry.get("peer_ratio") if name == "ours" else None
            size = (f"{entry['sockets']:,}" if key == "idle"
                    else f"{entry['channels']}x{entry['subscribers_per_channel']:,}")
            log(f"{title + ' ' + size:<33}"
                f"{name:<7}{g('deliveries_per_second', '{:,.0f}'):>14}{g('server_cpu_s_per_million', '{:.2f}'):>10}"
                f"{g('redis_cpu_s_per_million', '{:.2f}'):>10}{g('p50_ms', '{:.1f}'):>9}{g('p99_ms', '{:.1f}'):>9}"
                f"{g('max_ms', '{:.1f}'):>9}{r.get('lost', 0):>7}{r.get('duplicates', 0):>5}"
                f"{g('generator_us_per_frame', '{:.2f}'):>10}{('-' if pr is None else f'{pr:.2f}'):>12}")
    if "max_rate" in shape_out:
        for name in which:
            r = shape_out["max_rate"].get(name, {})
            if "highest_clean_rate" in r:
                log(f"4: highest clean rate {name}: {r['highest_clean_rate']} events/s "
                    f"({r.get('deliveries_per_second')} deliveries/s), p99 {r.get('p99_ms')} ms, generator "
                    f"{r.get('generator_cpu_share_of_machine')} of the machine's CPU")
    if "rooms" in shape_out and "ours" in shape_out["rooms"]:
        log(f"ours, worker CPU per delivered frame in shape 1 (publishing included): "
            f"{shape_out['rooms']['ours'].get('server_us_per_frame')} us")
    out["date"] = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    log(json.dumps(out, separators=(",", ":")))


if __name__ == "__main__":
    main()
