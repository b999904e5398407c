"""Faults with real processes: Redis unreachable at start-up, Redis restarted under load, and persistence of users,
rooms, transcripts and snapshots across a Redis SHUTDOWN with ops/redis.conf (AOF), and a worker SIGKILLed with
open sockets."""
import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time

import requests

from conftest import (RedisProcess, Subscription, Worker, admin, default_settings, register, spread_key, wait_for_admins,
                      wait_until)

REPO = os.path.join(os.path.dirname(__file__), "..", "..")


def test_redis_unreachable_at_startup_then_recovers(start_server):
    r = RedisProcess()  # not started: nothing listens on its port yet
    try:
        server = start_server(REDIS_URL=r.url, REDIS_TIMEOUT_MS=500, BCRYPT_COST=4)
        w = Worker(server)
        assert server.get("/health").status_code == 200
        ready = server.get("/ready")
        assert ready.status_code == 503 and ready.json() == {"error": "Redis unavailable"}
        t0 = time.monotonic()
        resp = w.call("POST", "/api/auth/register", json={"username": "early", "password": "password123"})
        assert resp.status_code == 503 and resp.json() == {"error": "Redis unavailable"}, resp.text
        assert resp.headers["Retry-After"] == "1"
        assert time.monotonic() - t0 < 2.0  # the bounded wait, not a hang

        r.start()
        t1 = time.monotonic()
        assert wait_until(lambda: server.get("/ready").status_code == 200, 3.0, 0.05)
        assert time.monotonic() - t1 <= 3.0
        alice = register(w, "alice")
        # The default rooms were created once Redis came (the start-up task retries).
        assert wait_until(lambda: "general" in [x["id"] for x in w.call("GET", "/api/rooms").json()["rooms"]], 5.0)
        assert w.call("POST", "/api/presence/switch", user=alice,
                      json={"username": "alice", "previousRoomId": None, "nextRoomId": "general"}).status_code == 200
        assert server.proc.poll() is None
    finally:
        r.cleanup()


def test_redis_restart_under_load_gives_503s_never_hangs(start_server):
    redis_proc = RedisProcess(persistent=True)  # the data outlives the SIGKILL, as with ops/redis.conf
    redis_proc.start()
    try:
        # Ten users switching as fast as they can: the presence limit lifted, as in every test cluster.
        settings = dict(default_settings(redis_proc.url), REDIS_TIMEOUT_MS=500)
        workers = [Worker(start_server(**settings)) for _ in range(2)]
        run_restart_under_load(redis_proc, workers)
    finally:
        redis_proc.cleanup()


def run_restart_under_load(redis_proc, workers):
    a, b = workers
    users = [register(a, f"load{i}") for i in range(10)]
    results = []
    stop = threading.Event()

    def hammer(worker, user):
        rooms = ["general", "random"]
        n = 0
        while not stop.is_set():
            n += 1
            t = time.monotonic()
            try:
                resp = worker.call("POST", "/api/presence/switch", user=user, json={
                    "username": user.name, "previousRoomId": rooms[n % 2], "nextRoomId": rooms[(n + 1) % 2]})
                results.append((time.monotonic(), resp.status_code, resp.json(), time.monotonic() - t))
            except requests.RequestException as e:  # a hang would show up as a 10 s timeout here
                results.append((time.monotonic(), "exception", str(e), time.monotonic() - t))

    threads = [threading.Thread(target=hammer, args=(w, u)) for w in (a, b) for u in users[:5]]
    for t in threads:
        t.start()
    time.sleep(1.0)
    redis_proc.kill()
    down_at = time.monotonic()
    time.sleep(2.0)
    redis_proc.start()
    up_at = time.monotonic()
    time.sleep(4.0)
    stop.set()
    for t in threads:
        t.join(15)

    statuses = {s for _, s, _, _ in results}
    assert statuses <= {200, 503}, statuses
    assert all(body == {"error": "Redis unavailable"} for _, s, body, _ in results if s == 503)
    assert any(s == 503 for _, s, _, _ in results), "no request saw the outage"
    assert max(d for _, _, _, d in results) < 2.5, "a request waited beyond the bounded wait"
    # Within 3 s of Redis's return every request succeeds again (on both workers).
    late = [s for at, s, _, _ in results if at > up_at + 3.0]
    assert late and all(s == 200 for s in late), late[:20]
    assert down_at < up_at


def test_data_survives_redis_shutdown_with_ops_redis_conf(start_server):
    port = RedisProcess().port
    data_dir = tempfile.mkdtemp(prefix="presence-aof-")
    conf = os.path.join(REPO, "ops", "redis.conf")

    def start_redis():
        proc = subprocess.Popen(["redis-server", conf, "--port", str(port), "--bind", "127.0.0.1", "--dir", data_dir,
                                 "--daemonize", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        assert wait_until(lambda: subprocess.run(["redis-cli", "-p", str(port), "ping"], capture_output=True,
                                                 text=True).stdout.strip() == "PONG", 10)
        return proc

    proc = start_redis()
    try:
        import redis as redis_py
        settings = default_settings(f"redis://127.0.0.1:{port}")
        server = start_server(**settings)
        wait_for_admins(redis_py.Redis(port=port, decode_responses=True), settings)
        w = Worker(server)
        boss, alice, bob = admin(w), register(w, "alice"), register(w, "bobby")
        assert w.call("POST", "/api/rooms", user=boss, json={"name": "Lobby", "type": "public"}).status_code == 201
        dm = w.call("POST", "/api/rooms", user=alice, json={"name": "dm", "type": "private", "members": ["bobby"]}).json()["room"]
        assert w.call("POST", "/api/rooms/lobby/messages", user=alice, json={"content": "kept?"}).status_code == 201
        assert w.call("POST", f"/api/rooms/{dm['id']}/messages", user=bob, json={"content": "secret"}).status_code == 201
        assert w.call("POST", "/support/T-42/join", user=alice, json={}).status_code == 200
        assert w.call("POST", "/support/T-42/messages", user=alice, json={"content": "help"}).status_code == 201
        assert w.call("POST", "/support/T-43/join", user=bob, json={}).status_code == 200
        assert w.call("POST", "/support/T-43/messages", user=bob, json={"content": "bye"}).status_code == 201
        assert w.call("POST", "/support/T-43/close", user=boss, json={}).status_code == 200

        subprocess.run(["redis-cli", "-p", str(port), "shutdown"], capture_output=True)
        proc.wait(10)
        assert os.listdir(data_dir), "no AOF written"
        proc = start_redis()
        assert wait_until(lambda: server.get("/ready").status_code == 200, 5.0)

        # Users (passwords and old tokens), rooms, private membership, messages, transcripts, snapshots.
        login = w.call("POST", "/api/auth/login", json={"username": "alice", "password": "password123"})
        assert login.status_code == 200
        assert w.call("GET", "/api/rooms/lobby", user=bob).status_code == 200
        rooms = w.call("GET", "/api/rooms", user=bob).json()["rooms"]
        assert {"lobby", dm["id"]} <= {r["id"] for r in rooms}
        assert w.call("GET", f"/api/rooms/{dm['id']}", user=boss).status_code == 403
        msgs = w.call("GET", "/api/rooms/lobby/messages", user=alice).json()["messages"]
        assert [m["content"] for m in msgs] == ["kept?"]
        assert [m["content"] for m in w.call("GET", f"/api/rooms/{dm['id']}/messages", user=bob).json()["messages"]] == ["secret"]
        transcript = w.call("GET", "/support/T-42/messages", user=alice).json()["messages"]
        assert [m["content"] for m in transcript] == ["help"]
        closed = w.call("GET", "/support/T-43/messages", user=boss).json()["messages"]
        assert [m["content"] for m in closed] == ["bye"]
        snapshot = w.call("GET", "/support/T-43/snapshot", user=boss)
        assert snapshot.status_code == 200 and snapshot.json()["snapshot"]["messageCount"] == 1
        assert w.call("GET", "/api/users?search=bo").json()["users"][0]["username"] == "bobby"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        shutil.rmtree(data_dir, ignore_errors=True)


def test_worker_sigkill_announces_each_of_its_users_leave_once(make_cluster):
    """Three workers; four users connected to worker B only, two to C. SIGKILL B: the survivors announce each of B's
    users' leave exactly once (presence channel and chat room) within TTL + sweep interval; C's users stay."""
    from test_realtime import Client
    ttl, sweep = 3, 0.25
    c = make_cluster(3, PUSHER_KEY="test-key", PUSHER_SECRET="test-secret-123", PUSHER_APP_ID="4242",
                     CHAT_PRESENCE_TTL=ttl, SWEEP_INTERVAL_MS=int(sweep * 1000))
    a, k, survivor = c.workers[0], c.workers[1], c.workers[2]
    on_k = [register(a, f"doomed{i}") for i in range(4)]
    on_survivor = [register(a, f"stays{i}") for i in range(2)]
    watcher = register(a, "watcher")
    watch = Client(a, watcher)
    for channel in ["presence-room-general", "room-general"]:
        watch.subscribe(channel, ["pusher_internal:subscription_succeeded", "pusher_internal:member_removed",
                                  "presence-update", "room-message"])
    for channel in ["presence-room-general", "room-general"]:
        watch.wait_for(lambda e, ch=channel: e[0] == ch and e[1] == "pusher_internal:subscription_succeeded")
    clients = []
    for worker, users in [(k, on_k), (survivor, on_survivor)]:
        for user in users:
            cl = Client(worker, user)
            cl.subscribe("presence-room-general", ["pusher_internal:subscription_succeeded", "room-message"])
            cl.subscribe("room-general", ["room-message"])
            cl.wait_for(lambda e: e[0] == "presence-room-general" and e[1] == "pusher_internal:subscription_succeeded")
            clients.append((user, cl))
    everyone = sorted(["watcher"] + [u.name for u in on_k + on_survivor])
    assert wait_until(lambda: sorted(u["username"] for u in a.call("GET", "/api/rooms/general/users").json()["users"]) == everyone, 3)
    sub = Subscription(c.redis(), ["presence-room-general", "room-general"])
    time.sleep(0.5)
    watch.backlog.clear()

    t0 = time.monotonic()
    k.proc.stop(signal.SIGKILL)
    removed_at = {}
    deadline = t0 + ttl + sweep + 2.5
    while time.monotonic() < deadline and len(removed_at) < len(on_k):
        try:
            _, _, data = watch.wait_for(lambda e: e[1] == "pusher_internal:member_removed", timeout=0.2)
        except AssertionError:
            continue
        removed_at.setdefault(json.loads(data)["user_id"], time.monotonic() - t0)
    assert sorted(removed_at) == sorted(u.name for u in on_k), f"announced: {removed_at}"
    assert max(removed_at.values()) <= ttl + sweep + 1.5, removed_at
    # Another two sweep intervals and more: nothing announced twice, nobody else announced.
    published = sub.events(ttl)
    removed = [e["data"]["user_id"] for e in published if e["event"] == "pusher_internal:member_removed"]
    left = [e["data"]["username"] for e in published if e["event"] == "presence-update" and e["data"]["action"] == "left"]
    assert sorted(removed) == sorted(u.name for u in on_k), published
    assert sorted(left) == sorted(u.name for u in on_k), published
    assert not [e for e in published if e["event"] == "presence-update" and e["data"]["action"] == "joined"]
    # The others carry on: C's users and the watcher are still present, and still receive messages.
    stayed = sorted(["watcher"] + [u.name for u in on_survivor])
    for w in (a, survivor):
        assert sorted(u["username"] for u in w.call("GET", "/api/rooms/general/users").json()["users"]) == stayed
    r = survivor.call("POST", "/api/rooms/general/messages", user=watcher, json={"content": "still here"})
    assert r.status_code == 201, r.text
    for user, cl in clients[len(on_k):]:
        cl.wait_for(lambda e: e[0] == "room-general" and e[1] == "room-message" and "still here" in e[2])
    watch.wait_for(lambda e: e[0] == "room-general" and e[1] == "room-message" and "still here" in e[2])
    sub.close()
    for _, cl in clients:
        cl.close()
    watch.close()


def test_worker_sigkill_announces_leaves_on_presence_channels_that_are_not_rooms(make_cluster):
    """A presence channel that is no chat room (`presence-lobby`, signed by the app's own backend with the secret) has
    its engine room `pch:presence-lobby`, with a `:` in it; a user id may hold one too. SIGKILL the worker holding the
    user's socket: another worker's sweeper announces `member_removed` once, within TTL + sweep interval."""
    import hashlib
    import hmac
    import websocket

    key, secret, ttl, sweep = "test-key", "test-secret-123", 3, 0.25
    c = make_cluster(2, PUSHER_KEY=key, PUSHER_SECRET=secret, CHAT_PRESENCE_TTL=ttl, SWEEP_INTERVAL_MS=int(sweep * 1000))
    a, k = c.workers

    def connect(worker, user_id):
        ws = websocket.create_connection(worker.base.replace("http", "ws") + f"/app/{key}?protocol=7", timeout=10)
        socket_id = json.loads(json.loads(ws.recv())["data"])["socket_id"]
        channel_data = json.dumps({"user_id": user_id, "user_info": {}})
        signature = hmac.new(secret.encode(), f"{socket_id}:presence-lobby:{channel_data}".encode(), hashlib.sha256).hexdigest()
        ws.send(json.dumps({"event": "pusher:subscribe", "data": {
            "channel": "presence-lobby", "auth": f"{key}:{signature}", "channel_data": channel_data}}))
        return ws

    def next_event(ws, name, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ws.settimeout(max(0.1, deadline - time.monotonic()))
            try:
                msg = json.loads(ws.recv())
            except websocket.WebSocketTimeoutException:
                break
            if msg["event"] == name:
                return msg
        raise AssertionError(f"no {name} within {timeout} s")

    watcher = connect(a, "watcher")
    next_event(watcher, "pusher_internal:subscription_succeeded", 5)
    doomed = connect(k, "ghost:1")
    members = json.loads(next_event(doomed, "pusher_internal:subscription_succeeded", 5)["data"])["presence"]["ids"]
    assert sorted(members) == ["ghost:1", "watcher"]
    added = next_event(watcher, "pusher_internal:member_added", 5)
    assert json.loads(added["data"])["user_id"] == "ghost:1"
    sub = Subscription(c.redis(), ["presence-lobby"])
    t0 = time.monotonic()
    k.proc.stop(signal.SIGKILL)
    removed = next_event(watcher, "pusher_internal:member_removed", ttl + sweep + 5)
    assert json.loads(removed["data"])["user_id"] == "ghost:1"
    assert time.monotonic() - t0 <= ttl + sweep + 3
    # Announced once: nothing more in another TTL.
    published = [e for e in sub.events(ttl) if e["event"] == "pusher_internal:member_removed"]
    assert [e["data"]["user_id"] for e in published] == ["ghost:1"]
    watcher.close()


def test_worker_sigkilled_mid_burst_of_switches_leaves_no_member_unannounced(make_cluster):
    """Twenty users switch between two rooms as fast as they can on worker K; K is SIGKILLed mid-burst, with joins in
    flight. Whatever K's last joins left in the rooms is announced as left exactly once per (room, user) by the
    surviving worker's sweeper, and after TTL + sweep no room's sorted sets hold any of them: a join registers its room
    with the sweeper before it runs, so no member is ever in a room the sweeper does not know."""
    ttl, sweep = 3, 0.25
    c = make_cluster(2, CHAT_PRESENCE_TTL=ttl, SWEEP_INTERVAL_MS=int(sweep * 1000))
    a, k = c.workers
    r = c.redis()
    users = [register(a, f"burst{i}") for i in range(20)]
    rooms = ["general", "random"]
    stop = threading.Event()
    errors = []

    def hammer(user):
        n = 0
        while not stop.is_set():
            n += 1
            try:
                k.call("POST", "/api/presence/switch", user=user, json={
                    "username": user.name, "previousRoomId": rooms[n % 2], "nextRoomId": rooms[(n + 1) % 2]})
            except requests.RequestException as e:
                errors.append(str(e))
                return

    threads = [threading.Thread(target=hammer, args=(u,)) for u in users]
    for t in threads:
        t.start()
    time.sleep(1.5)
    k.proc.stop(signal.SIGKILL)
    stop.set()
    # Every join of the burst is younger than 1.5 s, so nothing it left expires in the next 1.5 s: listening and
    # reading the rooms now misses no announcement.
    sub = Subscription(r, [f"room-{room}" for room in rooms])
    names = {u.name for u in users}
    stranded = {(room, m) for room in rooms for m in r.zrange(f"room:{{{room}}}:members", 0, -1) if m in names}
    for t in threads:
        t.join(10)
    assert errors, "the burst did not reach the kill"
    assert stranded, "no member left behind by the burst"
    # The sweeper may have announced some already: count every announcement after the kill.
    published = sub.events(ttl + sweep + 3.0)
    announced = sorted((e["data"]["roomId"], e["data"]["username"]) for e in published
                       if e["event"] == "presence-update" and e["data"].get("action") == "left"
                       and e["data"]["username"] in names)
    assert announced == sorted(stranded), (announced, sorted(stranded))
    for room in rooms:
        for key in (f"room:{{{room}}}:members", f"room:{{{room}}}:joined"):
            held = [m for m in r.zrange(key, 0, -1) if m in names]
            assert held == [], (key, held)
    sub.close()


def test_half_done_room_and_user_changes_are_repaired(make_cluster):
    """Room creation, deletion and registration each write a second key after their script (another hash slot).
    When that second write is lost (simulated by undoing it in Redis), the next attempt or listing repairs it: a
    public room is never left unlisted, a deleted room never listed, a user never unsearchable."""
    c = make_cluster(1)
    a = c.a
    r = c.redis()
    boss = admin(a)

    def listed():
        return [room["id"] for room in a.call("GET", "/api/rooms").json()["rooms"]]

    assert a.call("POST", "/api/rooms", user=boss, json={"name": "lobby", "type": "public"}).status_code == 201
    r.srem(spread_key("rooms:public", "lobby"), "lobby")  # the index write after the script, lost
    assert "lobby" not in listed()
    retry = a.call("POST", "/api/rooms", user=boss, json={"name": "lobby", "type": "public"})
    assert retry.status_code == 409, retry.text
    assert "lobby" in listed()

    r.sadd(spread_key("rooms:public", "ghost"), "ghost")  # a deleted room whose index cleanup was lost
    assert "ghost" not in listed()
    assert not r.sismember(spread_key("rooms:public", "ghost"), "ghost")

    register(a, "findme")
    r.zrem("users:prefix:fi", "findme")  # the search index write after the script, lost
    assert a.call("GET", "/api/users?search=fin").json()["users"] == []
    # (with another password: with its own, register signs in)
    again = a.call("POST", "/api/auth/register", json={"username": "findme", "password": "password999"})
    assert again.status_code == 409
    assert [u["username"] for u in a.call("GET", "/api/users?search=fin").json()["users"]] == ["findme"]
