"""Worker memory per idle WebSocket (driven by bench/socket-memory): RSS before and after opening N sockets that
did the Pusher handshake and subscribed to one channel each (100 channels in all), measured once the worker settled."""
import argparse
import asyncio
import json
import time

import websockets

from realtime_load import rss_kb


async def open_socket(url, channel):
    ws = await websockets.connect(url, max_queue=None, ping_interval=None, open_timeout=60)
    established = json.loads(await ws.recv())
    assert established["event"] == "pusher:connection_established", established
    await ws.send(json.dumps({"event": "pusher:subscribe", "data": {"channel": channel}}))
    reply = json.loads(await ws.recv())
    assert reply["event"] == "pusher_internal:subscription_succeeded", reply
    return ws


async def main():
    p = argparse.ArgumentParser()
    p.add_argument("--label", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--pid", type=int, required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--sockets", type=int, default=10000)
    a = p.parse_args()
    url = f"ws://127.0.0.1:{a.port}/app/{a.key}?protocol=7&client=bench&version=1"
    # A few sockets first, so that the worker's one-off allocations (Redis subscriber, hub, buffers) are counted
    # before, not per socket.
    warm = [await open_socket(url, f"bench-{i}") for i in range(100)]
    await asyncio.sleep(2)
    before = rss_kb(a.pid)
    sockets = []
    for i in range(0, a.sockets, 250):
        sockets += await asyncio.gather(*[open_socket(url, f"bench-{(i + j) % 100}") for j in range(min(250, a.sockets - i))])
    await asyncio.sleep(5)
    after = rss_kb(a.pid)
    print(f"{a.label:4}: RSS {before / 1024:7.1f} MiB -> {after / 1024:7.1f} MiB with {len(sockets):,} more idle sockets: "
          f"{(after - before) / len(sockets):5.1f} KiB per socket")
    for ws in sockets + warm:
        await ws.close()


if __name__ == "__main__":
    asyncio.run(main())
