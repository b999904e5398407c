"""The `message_unseen` webhook (#32) through two worker processes: a message posted in a private chat room or a
support ticket reaches, after UNSEEN_GRACE_MS, each member other than the author who is neither present in the room
nor holding a socket subscribed to its channel (`private-room-<id>` / `presence-room-<id>`, signed for them through
/pusher/auth), as one webhook event per member and batch of messages:

- an offline member gets exactly one event per message, not before the grace (measured on the receiver's clock against
  the message's timestamp), with the documented fields; the author gets none; two messages posted close together make
  one event (count 2, the first message's id and time, the last one's id and time);
- a member who subscribes to the room's channel, or switches into the room, within the grace gets none, even when
  they leave again before the grace ends; one subscribed or present when the message is posted gets none;
  `message_unseen_suppressed_total` counts the suppressed ones, `message_unseen_sent_total` the sent ones;
- a member subscribed at the first message who closes the socket before the second gets one event for the second
  only;
- the worker that took the post SIGKILLed right after it, or just as six rooms' notices fall due (its watcher may hold
  some): the other worker sends each event, exactly once;
- a support ticket: the assigned agent gets one for the customer's message, the customer one for the agent's message
  once the customer has left (with `ticketId`), nobody for a message while present; a public room gives none; a
  receiver filtered to `channel_occupied` gets none, one filtered `|message_unseen` gets exactly those.

Runs on one Redis and, in ./ops/test's cluster pass, on a Redis Cluster."""
import json
import re
import signal
import threading
import time

import pytest

import test_webhooks
from conftest import register, wait_until
from test_support_api import setup_people
from test_webhooks import PUSHER_ENV, Receiver, connect  # noqa: F401 (connect: the shared fixture of open sockets)

GRACE_MS = 1500
GRACE = GRACE_MS / 1000
EVENT = "message_unseen"

assert EVENT in test_webhooks.EVENT_NAMES  # the shared receiver refuses event names it does not know


class TimedReceiver(Receiver):
    """A Receiver that also notes when (its own clock, time.time()) each message_unseen event arrived."""

    def __init__(self, *args, **kwargs):
        self.arrivals = []  # (time.time() at arrival, event)
        self.arrivals_lock = threading.Lock()
        super().__init__(*args, **kwargs)

    def handle(self, handler, raw):
        arrived = time.time()
        try:
            events = json.loads(raw.decode("utf-8")).get("events") or []
        except (ValueError, UnicodeDecodeError, AttributeError):
            events = []
        with self.arrivals_lock:
            self.arrivals.extend((arrived, e) for e in events if isinstance(e, dict) and e.get("name") == EVENT)
        super().handle(handler, raw)

    def arrival_of(self, event):
        with self.arrivals_lock:
            return next((t for t, e in self.arrivals if e == event), None)


@pytest.fixture
def receivers():
    made = []

    def make():
        rx = TimedReceiver()
        made.append(rx)
        return rx

    yield make
    for rx in made:
        rx.stop()




# --- Helpers -----------------------------------------------------------------------------------------------------

def start(make_cluster, urls, **env):
    settings = dict(PUSHER_ENV, WEBHOOK_URLS=urls, UNSEEN_GRACE_MS=GRACE_MS, MESSAGE_RATE_LIMIT=100000)
    settings.update(env)
    return make_cluster(2, **settings)


def private_room(worker, owner, members, name="unseen"):
    r = worker.call("POST", "/api/rooms", user=owner, json={"name": name, "type": "private", "members": members})
    assert r.status_code == 201, r.text
    return r.json()["room"]["id"]


def post(worker, user, room, content):
    r = worker.call("POST", f"/api/rooms/{room}/messages", user=user, json={"content": content})
    assert r.status_code == 201, r.text
    m = r.json()["message"]
    assert abs(m["timestamp"] - time.time() * 1000) < 10_000, m
    return m


def post_support(worker, user, ticket, content):
    r = worker.call("POST", f"/support/{ticket}/messages", user=user, json={"content": content})
    assert r.status_code == 201, r.text
    return r.json()["message"]


def switch(worker, user, prev, nxt):
    r = worker.call("POST", "/api/presence/switch", user=user,
                    json={"previousRoomId": prev, "nextRoomId": nxt, "username": user.name})
    assert r.status_code == 200, r.text


def subscribe(auth_worker, user, sock, channel):
    """Subscribes `sock` to a governed channel with a signature from the service's /pusher/auth as `user`."""
    r = auth_worker.call("POST", "/pusher/auth", user=user, data={"socket_id": sock.id, "channel_name": channel})
    assert r.status_code == 200, (channel, user.name, r.status_code, r.text)
    signed = r.json()
    data = {"channel": channel, "auth": signed["auth"]}
    if signed.get("channel_data") is not None:
        data["channel_data"] = signed["channel_data"]
    sock.send({"event": "pusher:subscribe", "data": data})
    sock.subscribed(channel)


def data_of(message):
    data = message.get("data")
    return json.loads(data) if isinstance(data, str) else data


def expected(room, member, first, last=None, count=1, ticket=None):
    """The message_unseen event `member` should get for the batch `first`..`last` (messages as the POST returned them)."""
    last = last or first
    e = {"name": EVENT, "channel": f"private-room-{room}", "room": room, "user_id": member,
         "message_id": first["id"], "message_time": first["timestamp"], "from": first["username"], "count": count,
         "last_message_id": last["id"], "last_message_time": last["timestamp"]}
    if ticket is not None:
        e["ticketId"] = ticket
    return e


def unseen(rx, **match):
    return [e for e in rx.all() if e["name"] == EVENT and all(e.get(k) == v for k, v in match.items())]


def wait_events(rx, count, timeout=20, **match):
    assert wait_until(lambda: len(unseen(rx, **match)) >= count, timeout, 0.05), \
        f"wanted {count} message_unseen events matching {match} within {timeout} s; got {unseen(rx)}"
    return unseen(rx, **match)


def sleep_until(deadline):
    """Sleeps until time.time() reaches `deadline` (s)."""
    delay = deadline - time.time()
    if delay > 0:
        time.sleep(delay)


def after(message, seconds):
    """The time (s, time.time() scale) `seconds` after a message's timestamp."""
    return message["timestamp"] / 1000 + seconds


def assert_not_early(rx, event, first):
    """The event arrived no sooner than (most of) the grace after its first message was posted."""
    arrived = rx.arrival_of(event)
    assert arrived is not None, (event, rx.arrivals)
    waited_ms = arrived * 1000 - first["timestamp"]
    assert waited_ms >= GRACE_MS * 0.9, f"message_unseen arrived {waited_ms:.0f} ms after the message (grace {GRACE_MS})"


def counter(workers, name):
    """The sum over the workers of every series of the counter `name`."""
    total = 0.0
    for w in workers:
        for m in re.finditer(rf"^{name}(?:{{[^}}]*}})? ([0-9.e+-]+)$", w.metrics(), re.M):
            total += float(m.group(1))
    return total


# --- Tests -------------------------------------------------------------------------------------------------------

def test_an_offline_member_gets_one_event_per_message_after_the_grace(make_cluster, receivers):
    rx = receivers()
    c = start(make_cluster, rx.url)
    a, b = c.a, c.b
    alice, bob, carol = (register(a, n) for n in ("alice", "bobby", "carol"))
    room = private_room(a, alice, ["bobby", "carol"])
    assert counter(c.workers, "message_unseen_sent_total") == 0

    # One message, nobody there: bobby and carol each get one event after the grace; alice (the author) none.
    m1 = post(a, alice, room, "hello")
    for member in ("bobby", "carol"):
        got = wait_events(rx, 1, user_id=member)
        assert got == [expected(room, member, m1)], got
        assert_not_early(rx, got[0], m1)
    sleep_until(after(m1, GRACE + 3))
    for member in ("bobby", "carol"):
        assert unseen(rx, user_id=member) == [expected(room, member, m1)], unseen(rx)
    assert unseen(rx, user_id="alice") == []

    # Two messages close together (through both workers): one event per member, count 2, first and last named.
    m2 = post(b, alice, room, "are you there?")
    m3 = post(a, alice, room, "hello??")
    assert m3["timestamp"] - m2["timestamp"] < GRACE_MS * 0.5, "the two posts were too far apart to batch"
    for member in ("bobby", "carol"):
        got = wait_events(rx, 2, user_id=member)
        assert got[1] == expected(room, member, m2, m3, count=2), got
        assert_not_early(rx, got[1], m2)
    sleep_until(after(m3, GRACE + 3))
    for member in ("bobby", "carol"):
        assert unseen(rx, user_id=member) == [expected(room, member, m1), expected(room, member, m2, m3, count=2)], \
            unseen(rx)
    assert unseen(rx, user_id="alice") == []

    # bobby answers: alice and carol get it, bobby (now the author) does not.
    m4 = post(b, bob, room, "sorry, was away")
    for member in ("alice", "carol"):
        got = wait_events(rx, 1, user_id=member, message_id=m4["id"])
        assert got == [expected(room, member, m4)], got
    sleep_until(after(m4, GRACE + 3))
    assert sorted(unseen(rx, message_id=m4["id"]), key=lambda e: e["user_id"]) == \
        [expected(room, member, m4) for member in ("alice", "carol")], unseen(rx, message_id=m4["id"])
    assert len(unseen(rx)) == 6, unseen(rx)

    # The counters: one per event sent, summed over the workers.
    assert wait_until(lambda: counter(c.workers, "message_unseen_sent_total") == 6, 10, 0.2), \
        counter(c.workers, "message_unseen_sent_total")
    rx.assert_clean()


def test_a_member_who_looks_within_the_grace_gets_none(make_cluster, receivers, connect):
    grace_ms = 5000  # room for four members' actions within it on a busy machine
    rx = receivers()
    c = start(make_cluster, rx.url, UNSEEN_GRACE_MS=grace_ms)
    a, b = c.a, c.b
    alice, bob, carol, dave, erin = (register(a, n) for n in ("alice", "bobby", "carol", "daveo", "erinn"))
    room = private_room(a, alice, ["bobby", "carol", "daveo", "erinn"])
    priv, pres = f"private-room-{room}", f"presence-room-{room}"
    bob_ws, erin_ws = connect(b), connect(a)  # connected, not subscribed yet
    sent0 = counter(c.workers, "message_unseen_sent_total")
    suppressed0 = counter(c.workers, "message_unseen_suppressed_total")

    m1 = post(a, alice, room, "anyone?")
    # Within the grace: bobby subscribes (socket on b, signed through a) and stays; erin subscribes to the presence
    # channel (socket on a, signed through b) and closes the socket again; carol switches into the room and out.
    subscribe(a, bob, bob_ws, priv)
    subscribe(b, erin, erin_ws, pres)
    switch(b, carol, None, room)
    switch(a, carol, room, None)
    erin_ws.close()
    done = time.time()
    assert done * 1000 - m1["timestamp"] < grace_ms - 300, \
        f"the members' actions took {done * 1000 - m1['timestamp']:.0f} ms, too close to the grace to tell anything"

    # dave, who did nothing, gets his event: the watcher ran. The others get none, also well past the grace.
    got = wait_events(rx, 1, user_id="daveo")
    assert got == [expected(room, "daveo", m1)], got
    sleep_until(after(m1, grace_ms / 1000 + 3))
    assert unseen(rx) == [expected(room, "daveo", m1)], unseen(rx)
    assert wait_until(lambda: counter(c.workers, "message_unseen_suppressed_total") - suppressed0 >= 3, 10, 0.2), \
        counter(c.workers, "message_unseen_suppressed_total")
    assert counter(c.workers, "message_unseen_sent_total") - sent0 == 1

    # Present or subscribed when the message is posted: bobby's socket is still subscribed, carol stays in the room;
    # dave and erin (her socket closed) are offline and get theirs.
    switch(b, carol, None, room)
    m2 = post(b, alice, room, "second")
    for member in ("daveo", "erinn"):
        got = wait_events(rx, 1, user_id=member, message_id=m2["id"])
        assert got == [expected(room, member, m2)], got
    sleep_until(after(m2, grace_ms / 1000 + 3))
    assert unseen(rx, message_id=m2["id"]) in ([expected(room, m, m2) for m in ("daveo", "erinn")],
                                               [expected(room, m, m2) for m in ("erinn", "daveo")]), unseen(rx)
    assert len(unseen(rx)) == 3, unseen(rx)
    assert counter(c.workers, "message_unseen_sent_total") - sent0 == 3
    switch(a, carol, room, None)
    rx.assert_clean()


def test_a_member_who_closes_the_socket_gets_the_next_message_only(make_cluster, receivers, connect):
    rx = receivers()
    c = start(make_cluster, rx.url)
    a, b = c.a, c.b
    alice, bob = register(a, "alice"), register(a, "bobby")
    room = private_room(a, alice, ["bobby"])
    priv = f"private-room-{room}"
    bob_ws = connect(b)
    subscribe(a, bob, bob_ws, priv)

    # Subscribed at the first message: it reaches his socket, and no webhook.
    m1 = post(a, alice, room, "first")
    bob_ws.expect(lambda m: m.get("event") == "room-message" and m.get("channel") == priv
                  and data_of(m)["message"]["id"] == m1["id"], timeout=10)
    sleep_until(after(m1, GRACE + 1.5))
    assert unseen(rx) == [], unseen(rx)

    # He closes the socket (a close frame): his subscription is gone once the channel is vacated.
    bob_ws.close("frame")
    rx.wait_for({"name": "channel_vacated", "channel": priv}, timeout=15)
    m2 = post(b, alice, room, "second")
    got = wait_events(rx, 1, user_id="bobby")
    assert got == [expected(room, "bobby", m2)], got
    assert_not_early(rx, got[0], m2)
    sleep_until(after(m2, GRACE + 3))
    assert unseen(rx) == [expected(room, "bobby", m2)], unseen(rx)
    rx.assert_clean()


def test_the_other_worker_sends_it_when_the_posting_worker_is_killed(make_cluster, receivers):
    rx = receivers()
    # A short webhook delivery lease, so that the outbox shards a dead worker held pass on quickly.
    c = start(make_cluster, rx.url, WEBHOOK_LEASE_MS=3000, WEBHOOK_TIMEOUT_MS=1000)
    a, b = c.a, c.b
    alice, bob = register(a, "alice"), register(b, "bobby")
    room = private_room(b, alice, ["bobby"])

    m1 = post(a, alice, room, "going down")
    a.proc.stop(signal.SIGKILL)
    assert a.proc.proc.poll() is not None
    got = wait_events(rx, 1, timeout=30, user_id="bobby")
    assert got == [expected(room, "bobby", m1)], got
    assert_not_early(rx, got[0], m1)
    # Well past any lease or retry that could send it again.
    time.sleep(max(0.0, after(m1, GRACE + 10) - time.time()))
    assert unseen(rx) == [expected(room, "bobby", m1)], unseen(rx)
    assert unseen(rx, user_id="alice") == []
    assert wait_until(lambda: counter([b], "message_unseen_sent_total") == 1, 10, 0.2), \
        counter([b], "message_unseen_sent_total")

    # The survivor alone carries on as before.
    m2 = post(b, alice, room, "still here")
    got = wait_events(rx, 2, user_id="bobby")
    assert got[1] == expected(room, "bobby", m2), got
    sleep_until(after(m2, GRACE + 3))
    assert len(unseen(rx)) == 2, unseen(rx)
    rx.assert_clean()


def test_a_worker_killed_while_the_notices_fall_due(make_cluster, receivers):
    """Six rooms' messages posted through worker a, which is SIGKILLed just as they fall due (when its watcher may
    be holding some of them): worker b sends each notice, exactly once."""
    rx = receivers()
    c = start(make_cluster, rx.url, WEBHOOK_LEASE_MS=3000, WEBHOOK_TIMEOUT_MS=1000, SWEEP_INTERVAL_MS=100)
    a, b = c.a, c.b
    alice, bob = register(a, "alice"), register(b, "bobby")
    rooms = [private_room((a, b)[i % 2], alice, ["bobby"], name=f"dm{i}") for i in range(6)]
    posted = [post(a, alice, room, f"to room {i}") for i, room in enumerate(rooms)]
    sleep_until(after(posted[-1], GRACE) + 0.05)
    a.proc.stop(signal.SIGKILL)
    want = [expected(room, "bobby", m) for room, m in zip(rooms, posted)]
    assert wait_until(lambda: all(unseen(rx, room=e["room"]) for e in want), 30, 0.1), unseen(rx)
    time.sleep(max(0.0, after(posted[-1], GRACE + 12) - time.time()))
    got = unseen(rx)
    assert sorted(got, key=lambda e: e["room"]) == sorted(want, key=lambda e: e["room"]), got
    delays = []
    for e in got:
        first = next(m for m in posted if m["id"] == e["message_id"])
        assert_not_early(rx, e, first)
        delays.append(round(rx.arrival_of(e) - first["timestamp"] / 1000, 2))
    print(f"\nmessage_unseen after the SIGKILL: arrived {sorted(delays)} s after their messages")
    rx.assert_clean()


def test_support_tickets_public_rooms_and_filters(make_cluster, receivers):
    everything, only, other = receivers(), receivers(), receivers()
    urls = f"{everything.url},{only.url}|{EVENT},{other.url}|channel_occupied"
    c = start(make_cluster, urls)
    a, b = c.a, c.b
    boss, agent, cust, stranger = setup_people(c)
    ticket = "MU-1"
    room = f"ticket_{ticket}"
    assert a.call("POST", f"/support/{ticket}/metadata", user=boss, json={"assignedAgentId": "agent1"}).status_code == 200
    assert b.call("POST", f"/support/{ticket}/join", user=cust, json={}).status_code == 200  # takes the seat, present

    # The customer writes; the assigned agent is neither there nor subscribed: one event for the agent only.
    m1 = post_support(a, cust, ticket, "my printer is on fire")
    got = wait_events(everything, 1, user_id="agent1")
    assert got == [expected(room, "agent1", m1, ticket=ticket)], got
    assert_not_early(everything, got[0], m1)

    # The agent answers while the customer is present: nobody gets one (the agent is the author).
    assert a.call("POST", f"/support/{ticket}/join", user=agent, json={"role": "agent"}).status_code == 200
    m2 = post_support(b, agent, ticket, "on it")
    sleep_until(after(m2, GRACE + 2))
    assert unseen(everything) == [expected(room, "agent1", m1, ticket=ticket)], unseen(everything)

    # The customer leaves; the agent's next message reaches the customer, once.
    assert b.call("POST", f"/support/{ticket}/leave", user=cust).json() == {"success": True}
    m3 = post_support(a, agent, ticket, "still there?")
    got = wait_events(everything, 1, user_id="cust1")
    assert got == [expected(room, "cust1", m3, ticket=ticket)], got
    assert_not_early(everything, got[0], m3)

    # A public room: nothing, whoever was there before.
    switch(a, stranger, None, "general")
    switch(b, stranger, "general", None)
    m4 = post(b, cust, "general", "hello everyone")
    sleep_until(max(after(m3, GRACE + 3), after(m4, GRACE + 3)))

    want = [expected(room, "agent1", m1, ticket=ticket), expected(room, "cust1", m3, ticket=ticket)]
    assert unseen(everything) == want, unseen(everything)
    assert unseen(everything, room="general") == [] and unseen(everything, message_id=m4["id"]) == []
    # Filters: `|message_unseen` gets exactly these and nothing else; `|channel_occupied` none of them.
    assert wait_until(lambda: len(only.all()) >= 2, 10, 0.1), only.all()
    assert only.all() == want, only.all()
    assert unseen(other) == [] and all(e["name"] == "channel_occupied" for e in other.all()), other.all()
    assert wait_until(lambda: counter(c.workers, "message_unseen_sent_total") == 2, 10, 0.2), \
        counter(c.workers, "message_unseen_sent_total")
    for rx in (everything, only, other):
        rx.assert_clean()
