"""Rolling restart through nginx with subscribed sockets of which some never read (driven by bench/restart).

Opens `--sockets` WebSockets through nginx (ops/cluster): the readers behave like Pusher clients (read everything,
answer pings, reconnect after a 4200 close and subscribe again); the stalled ones connect, subscribe to a presence
channel as their own user and to a busy public channel, then never read again, so their buffers fill. A publisher
keeps the busy channel busy. Then each worker in turn gets SIGTERM; the time from the signal to the process's exit is
measured against SHUTDOWN_TIMEOUT + 1 s, the worker is started again, and the stalled sockets are topped back up
before the next one. Prints one line per worker and a summary; exits 1 if any stop took longer than the bound or
exited with a failure.
"""
import argparse
import asyncio
import base64
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time

import redis
import requests
import websockets


def parse_args():
    p = argparse.ArgumentParser()
    p.add_argument("--url", required=True, help="nginx, e.g. http://127.0.0.1:18080")
    p.add_argument("--key", required=True)
    p.add_argument("--state", required=True, help="ops/cluster state directory (.data/cluster)")
    p.add_argument("--workers", type=int, default=3)
    p.add_argument("--sockets", type=int, default=1000)
    p.add_argument("--stalled", type=int, default=100)
    p.add_argument("--shutdown-timeout", type=float, default=10)
    return p.parse_args()


class Stalled:
    """A raw WebSocket that subscribes and then never reads: a tiny receive buffer, so it stops taking data soon."""

    def __init__(self, host, port, key, name, token, url):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.sock.connect((host, port))
        self.sock.settimeout(10)
        nonce = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((f"GET /app/{key}?protocol=7 HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n"
                           f"Connection: Upgrade\r\nSec-WebSocket-Key: {nonce}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
        data = b""
        while b"\r\n\r\n" not in data:
            data += self.sock.recv(1)
        assert data.startswith(b"HTTP/1.1 101"), data[:100]
        hello = json.loads(self._frame())
        socket_id = json.loads(hello["data"])["socket_id"]
        channel = "presence-room-general"
        auth = requests.post(url + "/pusher/auth", data={"socket_id": socket_id, "channel_name": channel},
                             headers={"Authorization": f"Bearer {token}", "X-Username": name}, timeout=10).json()
        self._send(json.dumps({"event": "pusher:subscribe", "data": {"channel": channel, "auth": auth["auth"],
                                                                     "channel_data": auth["channel_data"]}}))
        self._send(json.dumps({"event": "pusher:subscribe", "data": {"channel": "bench-busy"}}))
        # From here on: never read again.

    def _frame(self):
        head = self.sock.recv(2)
        length = head[1] & 0x7F
        if length == 126:
            length = int.from_bytes(self.sock.recv(2), "big")
        elif length == 127:
            length = int.from_bytes(self.sock.recv(8), "big")
        data = b""
        while len(data) < length:
            data += self.sock.recv(length - len(data))
        return data

    def _send(self, text):
        payload = text.encode()
        mask = os.urandom(4)
        header = bytes([0x81])
        if len(payload) < 126:
            header += bytes([0x80 | len(payload)])
        else:
            header += bytes([0x80 | 126]) + len(payload).to_bytes(2, "big")
        self.sock.sendall(header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))

    def close(self):
        self.sock.close()


async def reader(url, key, index, stop, stats):
    ws_url = url.replace("http://", "ws://") + f"/app/{key}?protocol=7"
    while not stop.is_set():
        try:
            async with websockets.connect(ws_url, max_queue=None, open_timeout=30, ping_interval=None) as ws:
                await ws.recv()
                await ws.send(json.dumps({"event": "pusher:subscribe", "data": {"channel": f"bench-{index % 50}"}}))
                stats["connected"] += 1
                async for raw in ws:
                    message = json.loads(raw)
                    if message["event"] == "pusher:ping":
                        await ws.send(json.dumps({"event": "pusher:pong", "data": {}}))
        except websockets.ConnectionClosed as closed:
            code = closed.rcvd.code if closed.rcvd else None
            stats["closes"][code] = stats["closes"].get(code, 0) + 1
        except (OSError, asyncio.TimeoutError, websockets.InvalidStatus, websockets.InvalidHandshake):
            stats["errors"] += 1
        if not stop.is_set():
            await asyncio.sleep(random.uniform(0.05, 0.5))  # reconnect with a little jitter, as pusher-js does


async def main():
    args = parse_args()
    host, port = args.url.replace("http://", "").split(":")
    port = int(port)
    stop = asyncio.Event()
    stats = {"connected": 0, "closes": {}, "errors": 0}
    users = []
    for i in range(args.stalled):
        name = f"stalled{i}"
        r = requests.post(args.url + "/api/auth/register", json={"username": name, "password": "password123"}, timeout=10)
        if r.status_code == 409:
            r = requests.post(args.url + "/api/auth/login", json={"username": name, "password": "password123"}, timeout=10)
        users.append((name, r.json()["token"]))
    readers = [asyncio.create_task(reader(args.url, args.key, i, stop, stats))
               for i in range(args.sockets - args.stalled)]

    async def publish():
        loop = asyncio.get_running_loop()
        redis_port = int(open(os.path.join(args.state, "redis.port")).read())
        r = redis.Redis(port=redis_port)
        message = json.dumps({"event": "tick", "channel": "bench-busy", "data": "x" * 4000})
        while not stop.is_set():
            await loop.run_in_executor(None, lambda: r.publish("ch:{bench-busy}", message))
            await asyncio.sleep(0.01)

    publisher = asyncio.create_task(publish())
    stalled = []

    while stats["connected"] < args.sockets - args.stalled:
        await asyncio.sleep(0.2)
    results = []
    for worker in range(1, args.workers + 1):
        for s in stalled:
            s.close()
        stalled = await asyncio.get_running_loop().run_in_executor(None, lambda: top_up_fresh(args, host, port, users))
        await asyncio.sleep(3)  # let the stalled sockets' buffers fill
        pid = int(open(os.path.join(args.state, f"worker-{worker}.pid")).read())
        t0 = time.monotonic()
        os.kill(pid, signal.SIGTERM)
        while True:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            await asyncio.sleep(0.01)
        elapsed = time.monotonic() - t0
        log = open(os.path.join(args.state, "logs", f"worker-{worker}.log"), errors="replace").read()
        stopped = [line for line in log.splitlines() if "Stopped" in line]
        results.append((worker, elapsed, bool(stopped)))
        print(f"worker {worker}: stopped in {elapsed:.2f} s (bound {args.shutdown_timeout + 1:.0f} s), "
              f"clean stop logged: {bool(stopped)}", flush=True)
        await asyncio.get_running_loop().run_in_executor(
            None, lambda: subprocess.run(["ops/cluster", "start-worker", str(worker)], check=True, capture_output=True))
        await asyncio.sleep(2)
    stop.set()
    publisher.cancel()
    for task in readers:
        task.cancel()
    for s in stalled:
        s.close()
    worst = max(r[1] for r in results)
    print(f"rolling restart: {len(results)} workers, {args.sockets} sockets ({args.stalled} never read), "
          f"slowest stop {worst:.2f} s, bound {args.shutdown_timeout + 1:.0f} s; reader reconnects "
          f"{stats['connected'] - (args.sockets - args.stalled)}, closes by code {stats['closes']}, "
          f"connect errors {stats['errors']}")
    ok = all(r[1] <= args.shutdown_timeout + 1 and r[2] for r in results)
    sys.exit(0 if ok else 1)


def top_up_fresh(args, host, port, users):
    return [Stalled(host, port, args.key, name, token, args.url) for name, token in users[:args.stalled]]


if __name__ == "__main__":
    asyncio.run(main())
