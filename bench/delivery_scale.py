"""Delivery at scale (driven by bench/delivery-scale): sockets spread over two workers and over rooms of equal
size, events triggered through the Pusher HTTP API at a fixed rate (each to one random room), latency from trigger to
socket and the count of deliveries against what was due.

Receivers run in several processes (one Python process cannot read the 100,000 deliveries a second that 1,000
events/s into rooms of 100 make); each opens its share of the sockets, alternating between the workers, and keeps
every latency. The trigger stamps each event with its send time (ns); receivers parse only that.
"""
import argparse
import asyncio
import json
import multiprocessing
import os
import statistics
import threading
import time

import websockets

from realtime_load import trigger_loop


def receiver(index, urls, sockets, rooms, first_room, ready, go, stop, out):
    async def run():
        conns = []
        for i in range(sockets):
            url = urls[i % len(urls)]
            ws = await websockets.connect(url, max_queue=None, open_timeout=60, ping_interval=None, compression=None)
            await ws.recv()
            room = (first_room + i) % rooms
            await ws.send(json.dumps({"event": "pusher:subscribe", "data": {"channel": f"bench-room-{room}"}}))
            await ws.recv()
            conns.append(ws)
        ready.set()
        latencies = []

        async def read(ws):
            try:
                async for message in ws:
                    now = time.time_ns()
                    i = message.find('\\"t\\":')
                    if i < 0:
                        continue
                    j = i + 6
                    while j < len(message) and message[j] == " ":
                        j += 1
                    k = j
                    while k < len(message) and message[k].isdigit():
                        k += 1
                    latencies.append((now - int(message[j:k])) / 1e6)
            except Exception:
                pass

        tasks = [asyncio.create_task(read(ws)) for ws in conns]
        while not stop.is_set():
            await asyncio.sleep(0.2)
        await asyncio.sleep(2.0)  # the last deliveries in flight
        for t in tasks:
            t.cancel()
        out.put((index, latencies))
        for ws in conns:
            await ws.close()

    asyncio.run(run())


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--ports", type=int, nargs="+", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--secret", required=True)
    p.add_argument("--app-id", required=True)
    p.add_argument("--sockets", type=int, default=10_000)
    p.add_argument("--rooms", type=int, default=100)
    p.add_argument("--rate", type=int, default=1000)
    p.add_argument("--seconds", type=int, default=10)
    p.add_argument("--processes", type=int, default=4)
    a = p.parse_args()
    urls = [f"ws://127.0.0.1:{port}/app/{a.key}?protocol=7&client=bench&version=1" for port in a.ports]
    per = a.sockets // a.processes
    ready = [multiprocessing.Event() for _ in range(a.processes)]
    go, stop = multiprocessing.Event(), multiprocessing.Event()
    out = multiprocessing.Queue()
    procs = [multiprocessing.Process(target=receiver, args=(i, urls, per, a.rooms, i * per, ready[i], go, stop, out))
             for i in range(a.processes)]
    started = time.monotonic()
    for proc in procs:
        proc.start()
    for e in ready:
        e.wait(600)
    print(f"{per * a.processes} sockets open on {len(urls)} workers in {time.monotonic() - started:.1f} s, "
          f"{a.rooms} rooms of {per * a.processes // a.rooms}")
    time.sleep(2)
    tstop = threading.Event()
    base = f"http://127.0.0.1:{a.ports[-1]}"
    channels = [f"bench-room-{r}" for r in range(a.rooms)]
    sent = trigger_loop(base, a.app_id, a.key, a.secret, channels, a.rate, a.seconds, tstop)
    stop.set()
    latencies = []
    for _ in procs:
        _, part = out.get(timeout=120)
        latencies += part
    for proc in procs:
        proc.join(30)
    due = sent * (per * a.processes // a.rooms)
    latencies.sort()
    pick = lambda q: latencies[min(len(latencies) - 1, int(len(latencies) * q))] if latencies else float("nan")
    print(f"events sent {sent} ({sent / a.seconds:.0f}/s); deliveries due {due}, received {len(latencies)} "
          f"({'no loss' if len(latencies) == due else f'{due - len(latencies)} missing'})")
    print(f"trigger -> socket latency: p50 {pick(0.5):.1f} ms, p99 {pick(0.99):.1f} ms, max {latencies[-1] if latencies else float('nan'):.1f} ms")


if __name__ == "__main__":
    main()
