"""Connection recovery (#31) with a raw Pusher protocol client on real workers: a client that reconnects, to the same
worker or another, gets exactly the events it missed on a recoverable channel, in order, with consecutive offsets,
then live events, with no gap or duplicate at the boundary; a position out of the window or of another epoch gets
`recovered: false`; concurrent publishers on two workers give gapless increasing offsets; Redis losing its data gives
a new epoch. Runs on one Redis and, in ./ops/test's cluster pass, on the 6-node Redis Cluster."""
import json
import threading
import time

import pusher
import websocket

from conftest import REDIS_CLUSTER, register, wait_until

APP, KEY, SECRET = "4242", "presence-key", "presence-secret"  # the pusher library wants a numeric app id


class Raw:
    """One Pusher protocol 7 WebSocket, every frame it gets parsed and kept in order."""

    def __init__(self, worker):
        port = worker.base.rsplit(":", 1)[1]
        self.ws = websocket.create_connection(f"ws://127.0.0.1:{port}/app/{KEY}?protocol=7&client=test&version=1",
                                              timeout=10)
        hello = json.loads(self.ws.recv())
        assert hello["event"] == "pusher:connection_established", hello
        self.socket_id = json.loads(hello["data"])["socket_id"]
        self.frames = []

    def next(self, timeout=10.0):
        self.ws.settimeout(timeout)
        frame = json.loads(self.ws.recv())
        self.frames.append(frame)
        return frame

    def subscribe(self, channel, recover=None, timeout=10.0, auth=None):
        """Subscribes; returns the answer's data (parsed). Frames before the answer are kept in `frames`."""
        data = {"channel": channel}
        if auth is not None:
            data["auth"] = auth
        if recover is not None:
            data["recover"] = recover
        self.ws.send(json.dumps({"event": "pusher:subscribe", "data": data}))
        deadline = time.monotonic() + timeout
        while True:
            frame = self.next(max(0.1, deadline - time.monotonic()))
            if frame.get("channel") == channel and frame["event"] in (
                    "pusher_internal:subscription_succeeded", "pusher:subscription_error"):
                assert frame["event"] == "pusher_internal:subscription_succeeded", frame
                return json.loads(frame["data"])

    def events(self, channel, count, timeout=20.0):
        """The next `count` event frames on `channel` (not pusher: ones)."""
        out = []
        deadline = time.monotonic() + timeout
        while len(out) < count:
            left = deadline - time.monotonic()
            assert left > 0, f"only {len(out)} of {count} events on {channel}: {out[-3:]}"
            frame = self.next(left)
            if frame.get("channel") == channel and not frame["event"].startswith("pusher"):
                out.append(frame)
        return out

    def quiet(self, seconds=0.5):
        """Frames that arrive within `seconds` (none expected, usually)."""
        got = []
        try:
            while True:
                got.append(self.next(seconds))
        except websocket.WebSocketTimeoutException:
            return got

    def close(self):
        self.ws.close()


def post(worker, user, room, text):
    r = worker.call("POST", f"/api/rooms/{room}/messages", user=user, json={"content": text})
    assert r.status_code in (200, 201), r.text
    return r.json()


def texts(frames):
    return [json.loads(f["data"])["message"]["content"] for f in frames if f["event"] == "room-message"]


def assert_consecutive(frames, start):
    offsets = [f["offset"] for f in frames]
    assert offsets == list(range(start, start + len(frames))), offsets


def test_a_client_that_reconnects_to_another_worker_gets_exactly_the_events_it_missed_then_live_ones(make_cluster):
    c = make_cluster(2, MESSAGE_RATE_LIMIT=1000, PUSHER_APP_ID=APP)
    a, b = c.a, c.b
    alice = register(a, "alice")
    steady = Raw(b)  # never disconnects: what the reconnecting client must end up with
    start = steady.subscribe("room-general")["recovery"]
    # No event on the channel yet: no history, nothing written to Redis by the subscribe.
    assert start == {"recovered": False, "epoch": "none", "offset": 0}

    client = Raw(a)
    answer = client.subscribe("room-general")
    assert answer["recovery"]["epoch"] == start["epoch"]
    for i in range(3):
        post(a, alice, "general", f"before {i}")
    before = client.events("room-general", 3)
    assert texts(before) == ["before 0", "before 1", "before 2"]
    assert_consecutive(before, answer["recovery"]["offset"] + 1)
    last = before[-1]
    assert {f["epoch"] for f in before} == {last["epoch"]} and last["epoch"] != "none"
    client.close()

    for i in range(20):
        post(b, alice, "general", f"missed {i}")
    again = Raw(b)
    answer = again.subscribe("room-general", recover={"epoch": last["epoch"], "offset": last["offset"]})
    assert answer["recovery"] == {"recovered": True, "epoch": last["epoch"], "offset": last["offset"] + 20}
    missed = again.events("room-general", 20)
    assert texts(missed) == [f"missed {i}" for i in range(20)]
    assert_consecutive(missed, last["offset"] + 1)
    # Then live events, published through the other worker, with no gap or duplicate across the boundary.
    for i in range(5):
        post(a, alice, "general", f"after {i}")
    live = again.events("room-general", 5)
    assert texts(live) == [f"after {i}" for i in range(5)]
    assert_consecutive(missed + live, last["offset"] + 1)
    assert again.quiet(0.5) == []

    # The client that never disconnected saw the same events under the same offsets.
    seen = steady.events("room-general", 28)
    by_offset = {f["offset"]: f for f in seen}
    assert len(by_offset) == 28
    for frame in before + missed + live:
        assert by_offset[frame["offset"]] == frame
    for raw in (steady, again):
        raw.close()


def test_a_position_out_of_the_window_or_of_another_epoch_is_not_recovered(make_cluster):
    c = make_cluster(1, RECOVERY_WINDOW=2, RECOVERY_MAX_EVENTS=5, MESSAGE_RATE_LIMIT=1000, PUSHER_APP_ID=APP)
    a = c.a
    alice = register(a, "alice")
    client = Raw(a)
    position = client.subscribe("room-general")["recovery"]
    for i in range(7):
        post(a, alice, "general", f"m{i}")
    frames = client.events("room-general", 7)
    latest = frames[-1]["offset"]
    assert latest == position["offset"] + 7
    epoch = frames[-1]["epoch"]

    def recover(offset, epoch=epoch):
        raw = Raw(a)
        try:
            return raw.subscribe("room-general", recover={"epoch": epoch, "offset": offset}), raw.quiet(0.3)
        finally:
            raw.close()

    # 7 events since: the log keeps 5 (a position from before the first event, too).
    assert recover(0, epoch="none")[0]["recovery"] == {"recovered": False, "epoch": epoch, "offset": latest}
    answer, extra = recover(position["offset"])
    assert answer["recovery"] == {"recovered": False, "epoch": epoch, "offset": latest}
    assert extra == []
    # 2 events since: both still kept.
    answer, extra = recover(latest - 2)
    assert answer["recovery"]["recovered"] is True
    assert [f["offset"] for f in extra] == [latest - 1, latest]
    # Nothing since: recovered, nothing to send.
    assert recover(latest)[0]["recovery"]["recovered"] is True
    # Another epoch, an offset past the latest, a malformed position: not recovered, the answer still says where it is.
    assert recover(latest, epoch="not-this-epoch")[0]["recovery"] == {"recovered": False, "epoch": epoch, "offset": latest}
    assert recover(latest + 1)[0]["recovery"]["recovered"] is False
    raw = Raw(a)
    assert raw.subscribe("room-general", recover={"epoch": 7, "offset": "x"})["recovery"]["recovered"] is False
    raw.close()
    # Older than the window (2 s): gone.
    assert wait_until(lambda: recover(latest - 1)[0]["recovery"]["recovered"] is False, 15, 0.5)
    # A channel that is not recoverable answers as before: no recovery, no offsets.
    plain = Raw(a)
    assert plain.subscribe("firehose") == {}
    server = pusher.Pusher(app_id=APP, key=KEY, secret=SECRET, host="127.0.0.1", port=int(a.base.rsplit(":", 1)[1]),
                           ssl=False)
    server.trigger("firehose", "news", {"n": 1})
    frame = plain.events("firehose", 1)[0]
    assert "offset" not in frame and "epoch" not in frame
    client.close()
    plain.close()


def test_concurrent_publishers_on_two_workers_give_strictly_increasing_gapless_offsets(make_cluster):
    c = make_cluster(2, RECOVERY_CHANNELS="race-*", PUSHER_APP_ID=APP)
    subscriber = Raw(c.a)
    start = subscriber.subscribe("race-1")["recovery"]["offset"]
    per_worker = 100
    errors = []

    def publish(worker, tag):
        server = pusher.Pusher(app_id=APP, key=KEY, secret=SECRET, host="127.0.0.1",
                               port=int(worker.base.rsplit(":", 1)[1]), ssl=False)
        try:
            for i in range(per_worker):
                server.trigger("race-1", "tick", {"from": tag, "i": i})
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=publish, args=(w, t)) for w, t in ((c.a, "a"), (c.b, "b"))]
    for t in threads:
        t.start()
    frames = subscriber.events("race-1", 2 * per_worker, timeout=60)
    for t in threads:
        t.join()
    assert errors == []
    assert_consecutive(frames, start + 1)
    for tag in ("a", "b"):
        assert [json.loads(f["data"])["i"] for f in frames if json.loads(f["data"])["from"] == tag] == list(range(per_worker))
    assert subscriber.quiet(0.5) == []
    subscriber.close()


def test_losing_the_redis_data_starts_a_new_epoch_and_a_stale_position_is_not_recovered(make_cluster, redis_process):
    c = make_cluster(1)
    a = c.a
    alice = register(a, "alice")
    client = Raw(a)
    client.subscribe("room-general")
    post(a, alice, "general", "before")
    last = client.events("room-general", 1)[0]
    client.close()
    if REDIS_CLUSTER:
        redis_process.flush()  # every primary emptied: the cluster's data is gone
    else:
        redis_process.kill()
        redis_process.start()  # no persistence: it starts empty

    def answer():
        try:
            raw = Raw(a)
        except Exception:  # noqa: BLE001 - the worker may be reconnecting
            return None
        try:
            data = raw.subscribe("room-general", recover={"epoch": last["epoch"], "offset": last["offset"]}, timeout=5)
            return data.get("recovery")
        except Exception:  # noqa: BLE001
            return None
        finally:
            raw.close()

    recovery = wait_until(answer, 30, 0.5)
    assert recovery, "no recovery answer after Redis came back"
    assert recovery["recovered"] is False
    assert recovery["epoch"] != last["epoch"]


def trigger(worker, channel, event, data):
    server = pusher.Pusher(app_id=APP, key=KEY, secret=SECRET, host="127.0.0.1", port=int(worker.base.rsplit(":", 1)[1]),
                           ssl=False)
    server.trigger(channel, event, data)


def test_a_channel_without_history_creates_no_key_and_its_first_events_are_recovered(make_cluster):
    c = make_cluster(1, RECOVERY_CHANNELS="fresh-*", PUSHER_APP_ID=APP)
    a = c.a
    raw = Raw(a)
    assert raw.subscribe("fresh-1")["recovery"] == {"recovered": False, "epoch": "none", "offset": 0}
    raw.close()
    # A subscribe (anyone may subscribe to a public channel) writes nothing to Redis.
    assert [k for k in c.redis().keys("rec:*") if "fresh-1" in k] == []
    for n in range(3):
        trigger(a, "fresh-1", "e", {"n": n})
    again = Raw(a)
    answer = again.subscribe("fresh-1", recover={"epoch": "none", "offset": 0})["recovery"]
    assert answer["recovered"] is True and answer["epoch"] != "none" and answer["offset"] == 3
    frames = again.events("fresh-1", 3)
    assert [json.loads(f["data"])["n"] for f in frames] == [0, 1, 2]
    assert_consecutive(frames, 1)
    again.close()


def test_a_worker_that_sees_offsets_skip_fills_the_gap_from_the_log_before_the_event_that_showed_it(make_cluster):
    c = make_cluster(1, RECOVERY_CHANNELS="gap-*", PUSHER_APP_ID=APP)
    a = c.a
    sub = Raw(a)
    sub.subscribe("gap-1")
    trigger(a, "gap-1", "e", {"n": 1})
    first = sub.events("gap-1", 1)[0]
    # An event in the log whose publish never reached this worker (as when its pub/sub connection is re-established).
    r = c.redis()
    lost = first["offset"] + 1
    item = json.dumps({"event": "e", "channel": "gap-1", "data": json.dumps({"n": 2}), "offset": lost,
                       "epoch": first["epoch"]})
    r.hset("rec:{gap-1}", "offset", lost)
    r.xadd("rec:{gap-1}:log", {"m": item, "t": int(time.time() * 1000)}, id=f"{lost}-0")
    trigger(a, "gap-1", "e", {"n": 3})
    frames = sub.events("gap-1", 2)
    assert [json.loads(f["data"])["n"] for f in frames] == [2, 3]
    assert_consecutive(frames, lost)
    assert sub.quiet(0.5) == []
    sub.close()


def inject_lost(r, channel, epoch, offset, n):
    """An event in the channel's log whose publish never reached the worker (as when its pub/sub connection drops)."""
    item = json.dumps({"event": "e", "channel": channel, "data": json.dumps({"n": n}), "offset": offset, "epoch": epoch})
    r.hset(f"rec:{{{channel}}}", mapping={"epoch": epoch, "offset": offset})
    r.xadd(f"rec:{{{channel}}}:log", {"m": item, "t": int(time.time() * 1000)}, id=f"{offset}-0")


def test_a_gap_before_the_first_event_a_worker_sees_is_filled_from_where_its_first_subscriber_started(make_cluster):
    c = make_cluster(1, RECOVERY_CHANNELS="gap-*", PUSHER_APP_ID=APP)
    a, r = c.a, c.redis()
    # History from before any socket here: this worker's feed never carried it.
    trigger(a, "gap-2", "e", {"n": 1})
    sub = Raw(a)
    answer = sub.subscribe("gap-2")
    epoch = r.hget("rec:{gap-2}", "epoch")
    assert answer["recovery"] == {"recovered": False, "epoch": epoch, "offset": 1}, answer
    # The next event is lost on the way to this worker; the one after shows the skip from the subscription's position.
    inject_lost(r, "gap-2", epoch, 2, 2)
    trigger(a, "gap-2", "e", {"n": 3})
    frames = sub.events("gap-2", 2)
    assert [json.loads(f["data"])["n"] for f in frames] == [2, 3]
    assert_consecutive(frames, 2)

    # A channel with no history at all (epoch none): its first events, lost on the way, are filled too.
    other = Raw(a)
    assert other.subscribe("gap-3")["recovery"] == {"recovered": False, "epoch": "none", "offset": 0}
    inject_lost(r, "gap-3", "0123456789abcdef", 1, 1)
    trigger(a, "gap-3", "e", {"n": 2})
    frames = other.events("gap-3", 2)
    assert [json.loads(f["data"])["n"] for f in frames] == [1, 2]
    assert {f["epoch"] for f in frames} == {"0123456789abcdef"}
    assert sub.quiet(0.5) == [] and other.quiet(0.2) == []
    sub.close()
    other.close()


def test_a_gap_fill_gives_a_socket_that_subscribed_after_the_gap_began_only_what_came_after_its_position(make_cluster):
    c = make_cluster(1, RECOVERY_CHANNELS="gap-*", PUSHER_APP_ID=APP)
    a, r = c.a, c.redis()
    early = Raw(a)
    early.subscribe("gap-4")
    trigger(a, "gap-4", "e", {"n": 1})
    epoch = early.events("gap-4", 1)[0]["epoch"]
    # 2 and 3 never reach this worker's feed; a socket subscribes after them (its position: 3).
    inject_lost(r, "gap-4", epoch, 2, 2)
    inject_lost(r, "gap-4", epoch, 3, 3)
    late = Raw(a)
    assert late.subscribe("gap-4")["recovery"] == {"recovered": False, "epoch": epoch, "offset": 3}
    trigger(a, "gap-4", "e", {"n": 4})
    assert [json.loads(f["data"])["n"] for f in early.events("gap-4", 3)] == [2, 3, 4]
    assert [json.loads(f["data"])["n"] for f in late.events("gap-4", 1)] == [4]
    assert early.quiet(0.5) == [] and late.quiet(0.2) == []
    early.close()
    late.close()


def signed(sock, channel):
    import hashlib
    import hmac
    digest = hmac.new(SECRET.encode(), f"{sock.socket_id}:{channel}".encode(), hashlib.sha256).hexdigest()
    return f"{KEY}:{digest}"


def test_a_sockets_own_client_event_right_after_it_subscribed_is_not_sent_back_nor_taken_for_a_gap(make_cluster):
    c = make_cluster(1, RECOVERY_CHANNELS="private-gap-*", PUSHER_APP_ID=APP)
    a = c.a
    channel = "private-gap-5"
    typer, other = Raw(a), Raw(a)
    for sock in (other, typer):
        assert "recovery" in sock.subscribe(channel, auth=signed(sock, channel))
    # Right after its subscribe (its gate at the floor of its position), the typer sends a client event: it takes the
    # next offset and is not sent back to it.
    typer.ws.send(json.dumps({"event": "client-typing", "channel": channel, "data": {"n": 1}}))
    mine = other.events(channel, 1)[0]
    assert mine["event"] == "client-typing" and "offset" in mine
    trigger(a, channel, "e", {"n": 2})
    frames = typer.events(channel, 1)
    assert frames[0]["event"] == "e" and frames[0]["offset"] == mine["offset"] + 1
    assert typer.quiet(0.5) == []
    # No gap was taken for it (a fill would have read the log for nothing).
    import re
    gaps = re.search(r"^recovery_feed_gaps_total(?:{[^}]*})? ([0-9.]+)$", a.metrics(), re.M)
    assert gaps is None or float(gaps.group(1)) == 0, gaps.group(0)
    typer.close()
    other.close()
