"""Webhook benchmark (bench/webhooks): what webhooks cost on the subscribe path and how fast the outbox drains.

Two release workers on one Redis, OFF (no WEBHOOK_URLS) and ON (WEBHOOK_URLS = a local receiver). Side by side:
1. subscribe/unsubscribe churn on fresh public channels (every pair is a channel_occupied and a channel_vacated),
   the same load against OFF and against ON: pairs per second, and the ratio ON / OFF;
2. delivery while the receiver is up: how long after the churn ends the last event arrives, events per second
   received, events per POST;
3. the receiver down while the same churn runs, then up: the outbox length it reached and how fast it drains.
The receiver checks every signature (hex HMAC-SHA256 of the body with the secret) and counts events per channel."""
import argparse
import asyncio
import hashlib
import hmac
import json
import multiprocessing
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import requests
import websockets


class Receiver:
    """The receiver runs in a process of its own, so it does not slow the load generator's process."""

    def __init__(self, port, secret):
        self.port, self.secret = port, secret
        self.shared = multiprocessing.Array("d", 4)  # events, posts, bad signatures, last arrival (monotonic)
        self.process = None

    @staticmethod
    def serve(port, secret, shared):
        secret = secret.encode()

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                good = hmac.compare_digest(hmac.new(secret, body, hashlib.sha256).hexdigest(),
                                           self.headers.get("X-Pusher-Signature", ""))
                n = len(json.loads(body)["events"])
                with shared.get_lock():
                    shared[0] += n
                    shared[1] += 1
                    shared[2] += 0 if good else 1
                    shared[3] = time.monotonic()
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        ThreadingHTTPServer.allow_reuse_address = True
        ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()

    def start(self):
        self.process = multiprocessing.Process(target=self.serve, args=(self.port, self.secret, self.shared), daemon=True)
        self.process.start()

    def stop(self):
        self.process.terminate()
        self.process.join()

    def count(self):
        return int(self.shared[0])

    @property
    def posts(self):
        return int(self.shared[1])

    @property
    def bad(self):
        return int(self.shared[2])

    @property
    def last_at(self):
        return self.shared[3]


async def churn(port, key, sockets, pairs_per_socket, prefix):
    """`sockets` connections each subscribe to and unsubscribe from `pairs_per_socket` fresh channels, one at a time."""
    async def one(index):
        async with websockets.connect(f"ws://127.0.0.1:{port}/app/{key}?protocol=7", max_queue=None) as ws:
            await ws.recv()
            for i in range(pairs_per_socket):
                channel = f"{prefix}-{index}-{i}"
                await ws.send(json.dumps({"event": "pusher:subscribe", "data": {"channel": channel}}))
                while json.loads(await ws.recv())["event"] != "pusher_internal:subscription_succeeded":
                    pass
                await ws.send(json.dumps({"event": "pusher:unsubscribe", "data": {"channel": channel}}))
            # The last unsubscribe is handled before a ping's pong comes back.
            await ws.send(json.dumps({"event": "pusher:ping", "data": {}}))
            while json.loads(await ws.recv())["event"] != "pusher:pong":
                pass
    started = time.monotonic()
    await asyncio.gather(*(one(i) for i in range(sockets)))
    return time.monotonic() - started


def outbox_length(metrics_port):
    for line in requests.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).text.splitlines():
        if line.startswith("webhook_outbox_length{"):
            return int(float(line.split()[-1]))
    return None


def wait_for(predicate, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port-off", type=int, required=True)
    p.add_argument("--port-on", type=int, required=True)
    p.add_argument("--metrics-on", type=int, required=True)
    p.add_argument("--receiver-port", type=int, required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--secret", required=True)
    p.add_argument("--sockets", type=int, default=20)
    p.add_argument("--pairs", type=int, default=250, help="subscribe/unsubscribe pairs per socket")
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args()
    rx = Receiver(args.receiver_port, args.secret)
    rx.start()
    pairs = args.sockets * args.pairs
    print(f"churn: {args.sockets} sockets x {args.pairs} subscribe/unsubscribe pairs on fresh channels = {pairs} pairs "
          f"({2 * pairs} occupancy events with webhooks on); {args.rounds} rounds, OFF and ON alternating")
    print(f"{'round':>5} {'OFF pairs/s':>12} {'ON pairs/s':>11} {'ON/OFF':>7} {'last event after churn ms':>26} "
          f"{'received ev/s':>14} {'events/POST':>12}")
    ratios = []
    for r in range(args.rounds):
        off = pairs / asyncio.run(churn(args.port_off, args.key, args.sockets, args.pairs, f"off{r}"))
        before, posts_before = rx.count(), rx.posts
        started = time.monotonic()
        elapsed = asyncio.run(churn(args.port_on, args.key, args.sockets, args.pairs, f"on{r}"))
        ended = started + elapsed
        assert wait_for(lambda: rx.count() - before >= 2 * pairs, 120), (rx.count() - before, 2 * pairs)
        on = pairs / elapsed
        ratios.append(on / off)
        got = rx.count() - before
        print(f"{r + 1:>5} {off:>12.0f} {on:>11.0f} {on / off:>7.2f} {(rx.last_at - ended) * 1000:>26.1f} "
              f"{got / (rx.last_at - started):>14.0f} {got / max(1, rx.posts - posts_before):>12.1f}")
    print(f"ON/OFF median {sorted(ratios)[len(ratios) // 2]:.2f}")

    # The receiver down while the same churn runs: the outbox holds it all; then it drains.
    rx.stop()
    before = rx.count()
    asyncio.run(churn(args.port_on, args.key, args.sockets, args.pairs, "down"))
    assert wait_for(lambda: (outbox_length(args.metrics_on) or 0) >= 2 * pairs, 30), outbox_length(args.metrics_on)
    held = outbox_length(args.metrics_on)
    rx.start()
    up = time.monotonic()
    assert wait_for(lambda: rx.count() - before >= 2 * pairs, 300), (rx.count() - before, 2 * pairs)
    drained = time.monotonic() - up
    print(f"receiver down during the churn: outbox reached {held} events; after it came back all {2 * pairs} arrived in "
          f"{drained:.2f} s ({2 * pairs / drained:.0f} events/s, including the first retry's backoff)")
    print(f"bad signatures: {rx.bad}")
    assert rx.bad == 0


if __name__ == "__main__":
    main()
