"""Load driver for bench/realtime: delivery latency through two workers, and memory per idle connection.

Latency: N sockets on worker A, each subscribed to its own public channel; events are triggered through worker B's
Pusher HTTP API (signed like the official libraries) at a fixed rate, each to one socket's channel, carrying the
send time; receivers record the delay. Memory: M idle sockets on worker A; the worker's RSS before and after.
"""
import argparse
import asyncio
import hashlib
import hmac
import json
import random
import threading
import time

import requests
import websockets

from lib.benchlib import rss_kib


def signed_url(base, app_id, key, secret, path, body):
    params = {"auth_key": key, "auth_timestamp": str(int(time.time())), "auth_version": "1.0",
              "body_md5": hashlib.md5(body).hexdigest()}
    query = "&".join(f"{k}={params[k]}" for k in sorted(params))
    sig = hmac.new(secret.encode(), f"POST\n{path}\n{query}".encode(), hashlib.sha256).hexdigest()
    return f"{base}{path}?{query}&auth_signature={sig}"


def trigger_loop(base, app_id, key, secret, channels, rate, seconds, stop, threads=4):
    # Up to 100 requests/s one event each; above that, batch_events with 10 events per request (Python on two
    # shared cores cannot sign and send 1,000 requests/s).
    batch = 1 if rate <= 100 else 10
    path = f"/apps/{app_id}/events" if batch == 1 else f"/apps/{app_id}/batch_events"
    per_thread = rate / batch / threads
    sent = [0] * threads

    def worker(i):
        session = requests.Session()
        interval = 1.0 / per_thread
        start = time.perf_counter()
        n = 0
        while time.perf_counter() - start < seconds and not stop.is_set():
            target = start + n * interval
            delay = target - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            if batch == 1:
                body = json.dumps({"name": "tick", "channel": random.choice(channels),
                                   "data": json.dumps({"t": time.time_ns()})}).encode()
            else:
                body = json.dumps({"batch": [{"name": "tick", "channel": random.choice(channels),
                                              "data": json.dumps({"t": time.time_ns()})} for _ in range(batch)]}).encode()
            session.post(signed_url(base, app_id, key, secret, path, body), data=body,
                         headers={"Content-Type": "application/json"}, timeout=10)
            n += 1
        sent[i] = n * batch

    ts = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return sum(sent)


async def open_socket(url, channel=None):
    ws = await websockets.connect(url, max_queue=None, open_timeout=30, ping_interval=None)
    await ws.recv()  # connection_established
    if channel:
        await ws.send(json.dumps({"event": "pusher:subscribe", "data": {"channel": channel}}))
        await ws.recv()
    return ws


async def latency(args):
    url = f"ws://127.0.0.1:{args.port_a}/app/{args.key}?protocol=7&client=bench&version=1"
    channels = [f"bench-{i}" for i in range(args.sockets)]
    sockets = []
    for i in range(0, args.sockets, 100):
        sockets += await asyncio.gather(*[open_socket(url, c) for c in channels[i:i + 100]])
    results = []

    async def reader(ws):
        async for raw in ws:
            msg = json.loads(raw)
            if msg.get("event") == "tick":
                results.append((time.time_ns() - json.loads(msg["data"])["t"]) / 1e6)

    readers = [asyncio.create_task(reader(ws)) for ws in sockets]
    base = f"http://127.0.0.1:{args.port_b}"
    out = []
    for rate in args.rates:
        results.clear()
        stop = threading.Event()
        sent = await asyncio.to_thread(trigger_loop, base, args.app_id, args.key, args.secret, channels, rate, args.seconds, stop)
        await asyncio.sleep(1.0)
        got = sorted(results)
        if got:
            p50 = got[len(got) // 2]
            p99 = got[min(len(got) - 1, int(len(got) * 0.99))]
            out.append((rate, sent / args.seconds, len(got), sent, p50, p99, max(got)))
    for task in readers:
        task.cancel()
    for ws in sockets:
        await ws.close()
    return out


async def memory(args):
    url = f"ws://127.0.0.1:{args.port_a}/app/{args.key}?protocol=7&client=bench&version=1"
    await asyncio.sleep(1)
    before = (rss_kib(args.pid_a) or 0)
    sockets = []
    for i in range(0, args.idle, 250):
        sockets += await asyncio.gather(*[open_socket(url, "idle") for _ in range(min(250, args.idle - i))])
    await asyncio.sleep(3)
    after = (rss_kib(args.pid_a) or 0)
    for ws in sockets:
        await ws.close()
    return before, after, len(sockets)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port-a", type=int, required=True)
    p.add_argument("--port-b", type=int, required=True)
    p.add_argument("--pid-a", type=int, required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--secret", required=True)
    p.add_argument("--app-id", required=True)
    p.add_argument("--sockets", type=int, default=1000)
    p.add_argument("--rates", type=int, nargs="+", default=[100, 1000])
    p.add_argument("--seconds", type=int, default=10)
    p.add_argument("--idle", type=int, default=10000)
    args = p.parse_args()
    print(f"latency: {args.sockets} sockets on worker A, one channel each; events triggered through worker B's HTTP API")
    print(f"{'target ev/s':>12} {'sent ev/s':>10} {'received':>9} {'sent':>7} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    for rate, achieved, got, sent, p50, p99, mx in asyncio.run(latency(args)):
        print(f"{rate:>12} {achieved:>10.0f} {got:>9} {sent:>7} {p50:>8.2f} {p99:>8.2f} {mx:>8.2f}")
    before, after, n = asyncio.run(memory(args))
    print(f"memory: worker A RSS {before / 1024:.1f} MiB idle -> {after / 1024:.1f} MiB with {n} idle sockets "
          f"= {(after - before) / n:.1f} KiB per connection")


if __name__ == "__main__":
    main()
