"""Instructions per delivered frame inside one worker running under callgrind (driven by bench/delivery-instructions).

S sockets (Pusher protocol, public channels) subscribe to R rooms, S/R each. Then, with collection on and the counters
zeroed, E events are triggered through the signed Pusher HTTP API (batch_events, 10 a request, round-robin over the
rooms), the driver waits until every socket has its frames, and the counters are dumped: Ir ÷ frames delivered. The
same E events to channels no socket holds (the trigger side alone: HTTP, signature, PUBLISH) give the floor, so the
figure is printed both whole and less the floor (the fan-out's own cost per frame).
"""
import argparse
import asyncio
import json
import os
import subprocess
import time

import requests
import websockets

from realtime_load import signed_url
from switch_instructions import dumped_instructions, profile

BATCH = 10


def worker_cpu_seconds(pid):
    """The worker's user and system CPU so far (/proc/<pid>/stat), in seconds."""
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


def trigger(base, app_id, key, secret, channels, events, burst=1):
    """`events` events, BATCH to a request, one after another on one keep-alive connection; `burst` in a row to one
    channel (burst 1: each event of a request to another channel)."""
    session = requests.Session()
    path = f"/apps/{app_id}/batch_events"
    for start in range(0, events, BATCH):
        batch = [{"name": "room-message", "channel": channels[((start + k) // burst) % len(channels)],
                  "data": json.dumps({"roomId": channels[((start + k) // burst) % len(channels)], "message": {
                      "id": f"m{start + k}", "username": "bench", "content": "hello from the delivery benchmark",
                      "timestamp": 1700000000000 + start + k}})}
                 for k in range(min(BATCH, events - start))]
        body = json.dumps({"batch": batch}).encode()
        r = session.post(signed_url(base, app_id, key, secret, path, body), data=body,
                         headers={"Content-Type": "application/json"}, timeout=120)
        r.raise_for_status()


async def run(a):
    url = f"ws://127.0.0.1:{a.port}/app/{a.key}?protocol=7&client=bench&version=1"
    base = f"http://127.0.0.1:{a.port}"
    rooms = [f"bench-room-{r}" for r in range(a.rooms)]
    received = [0]

    async def open_one(i):
        ws = await websockets.connect(url, max_queue=None, open_timeout=300, ping_interval=None, compression=None,
                                      close_timeout=1)
        await ws.recv()  # pusher:connection_established
        await ws.send(json.dumps({"event": "pusher:subscribe", "data": {"channel": rooms[i % a.rooms]}}))
        while json.loads(await ws.recv()).get("event") != "pusher_internal:subscription_succeeded":
            pass
        return ws

    socks = []
    for i in range(0, a.sockets, 50):
        socks += await asyncio.gather(*[open_one(j) for j in range(i, min(a.sockets, i + 50))])

    async def read(ws):
        try:
            async for message in ws:
                if '"room-message"' in message:
                    received[0] += 1
        except Exception:
            pass

    readers = [asyncio.create_task(read(ws)) for ws in socks]
    per_room = a.sockets // a.rooms

    async def phase(channels, events, expected):
        if a.cpu:
            cpu = worker_cpu_seconds(a.pid)
        else:
            subprocess.run(["callgrind_control", "-i", "on", str(a.pid)], capture_output=True, check=True)
            subprocess.run(["callgrind_control", "-z", str(a.pid)], capture_output=True, check=True)
        start = received[0]
        await asyncio.to_thread(trigger, base, a.app_id, a.key, a.secret, channels, events, a.burst)
        deadline = time.monotonic() + 600
        while received[0] - start < expected and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        got = received[0] - start
        if a.cpu:
            # Microseconds of worker CPU (user + system), in place of instructions.
            user, sys_ = worker_cpu_seconds(a.pid)
            return (user - cpu[0] + sys_ - cpu[1]) * 1e6, (sys_ - cpu[1]) * 1e6, got
        total, dump = await asyncio.to_thread(dumped_instructions, a.pid, a.out_dir)
        subprocess.run(["callgrind_control", "-i", "off", str(a.pid)], capture_output=True, check=True)
        return total, dump, got

    # Warm-up (not counted): every room's path taken a few times.
    await phase(rooms, a.rooms * 3, a.rooms * 3 * per_room)
    empty = [f"bench-nobody-{r}" for r in range(a.rooms)]
    floor, _, _ = await phase(empty, a.events, 0)
    expected = a.events * per_room
    total, dump, frames = await phase(rooms, a.events, expected)
    for t in readers:
        t.cancel()
    if frames != expected:
        raise SystemExit(f"delivered {frames} frames, expected {expected}")
    if a.cpu:
        print(f"worker CPU (user + system, /proc) per delivered frame, not under valgrind ({a.sockets} sockets in "
              f"{a.rooms} rooms of {per_room}, {a.events} events, {frames} frames; the clients share the machine)")
        print(f"  µs per frame, whole phase     {total / frames:8.2f}")
        print(f"  µs per frame, less the floor  {(total - floor) / frames:8.2f}   (floor: {floor / a.events:,.0f} µs per event)")
        print(f"  of which system (the writes)  {dump / frames:8.2f}")
        print(json.dumps({"sockets": a.sockets, "rooms": a.rooms, "events": a.events, "frames": frames,
                          "cpu_us_per_frame": round(total / frames, 2),
                          "cpu_us_per_frame_less_floor": round((total - floor) / frames, 2),
                          "system_us_per_frame": round(dump / frames, 2)}))
        for ws in socks:
            ws.transport.abort()
        return
    print(f"instructions per delivered frame inside the worker (callgrind; {a.sockets} sockets in {a.rooms} rooms of "
          f"{per_room}, {a.events} events through batch_events, {a.burst} in a row to a room, {frames} frames)")
    print(f"  per frame, whole phase     {total / frames:10,.0f}")
    print(f"  per frame, less the floor  {(total - floor) / frames:10,.0f}   (floor: the same events to channels no "
          f"socket holds, {floor / a.events:,.0f} per event)")
    if os.environ.get("PROFILE_KEEP"):
        import shutil
        os.makedirs(os.environ["PROFILE_KEEP"], exist_ok=True)
        shutil.copy(dump, os.path.join(os.environ["PROFILE_KEEP"], "delivery.callgrind"))
    if a.profile:
        print(f"top {a.profile} functions by their own instructions per delivered frame:")
        profile(dump, frames, a.profile)
    print(json.dumps({"sockets": a.sockets, "rooms": a.rooms, "events": a.events, "frames": frames,
                      "instructions_per_frame": round(total / frames),
                      "instructions_per_frame_less_floor": round((total - floor) / frames)}))
    for ws in socks:
        ws.transport.abort()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--pid", type=int, required=True)
    p.add_argument("--app-id", default="bench")
    p.add_argument("--key", default="bench-key")
    p.add_argument("--secret", default="bench-secret")
    p.add_argument("--sockets", type=int, default=10000)
    p.add_argument("--rooms", type=int, default=100)
    p.add_argument("--events", type=int, default=500)
    p.add_argument("--out-dir", default=".", help="where callgrind writes its dumps")
    p.add_argument("--profile", type=int, default=15, help="the top N functions (exclusive) per frame")
    p.add_argument("--burst", type=int, default=1, help="events in a row to one room (at most 10: one request)")
    p.add_argument("--cpu", action="store_true", help="the worker runs natively: its CPU time per frame, not instructions")
    a = p.parse_args()
    if a.sockets % a.rooms:
        raise SystemExit("sockets must be a multiple of rooms")
    asyncio.run(run(a))


if __name__ == "__main__":
    main()
