"""bench's delivery-load generator (bench/DeliveryLoad) counts what a server really delivered: a frame the server
drops shows as lost, a frame it sends twice as a duplicate, a clean run as neither.

A tiny Pusher-speaking WebSocket server runs in the test (the `websockets` package): it answers the handshake and the
subscribe, pings once, and then itself sends M events per subscriber ({"seq":N,"t":ns} as Pusher's string data), so
the generator runs with `--publish none`. The binary is `$(swift build --show-bin-path)/delivery-load`, built by
`swift build`; the tests skip, saying so, when it is missing."""
import asyncio
import json
import os
import subprocess
import threading
import time

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
EVENTS = 2000
SOCKETS = 4
CHANNELS = 2


@pytest.fixture(scope="module")
def generator() -> str:
    binary = os.environ.get("DELIVERY_LOAD_BIN")
    if not binary:
        out = subprocess.run(["swift", "build", "--show-bin-path"], cwd=ROOT, capture_output=True, text=True)
        binary = os.path.join(out.stdout.strip(), "delivery-load")
    if not os.access(binary, os.X_OK):
        pytest.skip(f"{binary} is missing: build it with `swift build` (or `swift build --product delivery-load`)")
    return binary


class PusherEventServer:
    """A Pusher protocol 7 server in a thread: connection_established, subscribe → subscription_succeeded, one
    pusher:ping (the pongs are counted), then EVENTS events to the subscriber, skipping each seq in `drop` and sending
    `duplicate` twice on the first socket only."""

    def __init__(self, drop=lambda seq: False, duplicate=None):
        self.drop = drop
        self.duplicate = duplicate
        self.pongs = 0
        self.subscribed = []
        self.duplicated = False
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        self.thread.start()
        assert self.ready.wait(10), "the test server did not start"
        return self

    def __exit__(self, *exc):
        self.loop.call_soon_threadsafe(self.stop.set_result, None)
        self.thread.join(10)

    def _run(self):
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self._serve())

    async def _serve(self):
        from websockets.asyncio.server import serve
        self.stop = self.loop.create_future()
        async with serve(self._socket, "127.0.0.1", 0, max_queue=None) as server:
            self.port = server.sockets[0].getsockname()[1]
            self.ready.set()
            await self.stop

    async def _socket(self, ws):
        await ws.send(json.dumps({"event": "pusher:connection_established",
                                  "data": json.dumps({"socket_id": "1.1", "activity_timeout": 120})}))
        subscribe = json.loads(await ws.recv())
        assert subscribe["event"] == "pusher:subscribe"
        channel = subscribe["data"]["channel"]
        self.subscribed.append(channel)
        await ws.send(json.dumps({"event": "pusher_internal:subscription_succeeded", "channel": channel, "data": "{}"}))
        await ws.send(json.dumps({"event": "pusher:ping", "data": {}}))
        duplicate_here = self.duplicate is not None and not self.duplicated
        self.duplicated = self.duplicated or duplicate_here
        for seq in range(EVENTS):
            if self.drop(seq):
                continue
            frame = json.dumps({"event": "bench", "channel": channel,
                                "data": json.dumps({"seq": seq, "t": time.time_ns()}, separators=(",", ":"))},
                               separators=(",", ":"))
            await ws.send(frame)
            if duplicate_here and seq == self.duplicate:
                await ws.send(frame)
        async for message in ws:
            if json.loads(message).get("event") == "pusher:pong":
                self.pongs += 1


def run_generator(binary, port, drain_timeout):
    result = subprocess.run(
        [binary, "--url", f"ws://127.0.0.1:{port}/app/test-key?protocol=7", "--protocol", "pusher",
         "--publish", "none", "--channel-count", str(CHANNELS), "--subscribers-per-channel", str(SOCKETS // CHANNELS),
         "--events-per-channel", str(EVENTS), "--drain-timeout", str(drain_timeout), "--connect-timeout", "5",
         "--subscribe-timeout", "5"],
        capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    phases = [line.split()[1] for line in lines if line.startswith("PHASE ")]
    assert phases == ["connected", "subscribed", "publish-start", "publish-end", "drained"], result.stdout
    assert f"PHASE connected {SOCKETS}" in lines and f"PHASE subscribed {SOCKETS}" in lines, result.stdout
    report = json.loads(lines[-1])
    assert report["sockets"] == SOCKETS and report["established"] == SOCKETS and report["subscribed"] == SOCKETS
    assert report["due"] == SOCKETS * EVENTS
    return report


def test_a_dropped_frame_shows_as_lost(generator):
    with PusherEventServer(drop=lambda seq: seq % 1000 == 999) as server:
        report = run_generator(generator, server.port, drain_timeout=1)
        time.sleep(0.1)
    assert report["lost"] == 2 * SOCKETS, report
    assert report["received"] == report["due"] - report["lost"], report
    assert report["duplicates"] == 0 and report["unexpected"] == 0, report
    assert sorted(server.subscribed) == sorted(f"bench-room-{i % CHANNELS}" for i in range(SOCKETS))


def test_a_frame_sent_twice_shows_as_a_duplicate(generator):
    with PusherEventServer(duplicate=7) as server:
        report = run_generator(generator, server.port, drain_timeout=5)
    assert report["duplicates"] == 1, report
    assert report["lost"] == 0, report
    assert report["received"] == report["due"] + 1, report


def test_a_clean_run_loses_nothing_and_answers_pings(generator):
    with PusherEventServer() as server:
        report = run_generator(generator, server.port, drain_timeout=5)
        deadline = time.monotonic() + 2
        while server.pongs < SOCKETS and time.monotonic() < deadline:
            time.sleep(0.02)
    assert report["lost"] == 0 and report["duplicates"] == 0 and report["errors"] == 0, report
    assert report["received"] == report["due"], report
    assert 0 <= report["p50_ms"] <= report["p99_ms"] <= report["max_ms"] < 10_000, report
    assert server.pongs == SOCKETS, "pusher:ping was not answered with pusher:pong on every socket"
