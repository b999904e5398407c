"""The ryOS-compatible chat API through two worker processes on one Redis."""
import json
import threading
import time

import requests

from conftest import Subscription, User, admin, public_rooms, register, spread_key


# ---------------------------------------------------------------- auth

def test_register_login_logout_across_workers(cluster):
    a, b = cluster.a, cluster.b
    alice = register(a, "Alice")
    assert alice.name == "alice" and len(alice.token) == 64 and int(alice.token, 16) >= 0
    # Taken: with another password 409; with its own password register signs in (ryOS's register doubles as login).
    r = a.call("POST", "/api/auth/register", json={"username": "ALICE", "password": "password124"})
    assert (r.status_code, r.json()) == (409, {"error": "Username taken"}), r.text
    r = a.call("POST", "/api/auth/register", json={"username": "ALICE", "password": "password123"})
    assert r.status_code == 200 and r.json()["user"] == {"username": "alice"} and r.json()["token"] != alice.token, r.text
    for bad in ["ab", "1abc", "a--b", "abc-", "a b c"]:
        r = b.call("POST", "/api/auth/register", json={"username": bad, "password": "password123"})
        assert r.status_code == 400, bad
    r = b.call("POST", "/api/auth/register", json={"username": "bobby", "password": "short"})
    assert r.status_code == 400 and "Password" in r.json()["error"]
    r = b.call("POST", "/api/auth/register", json={"username": "bobby", "password": "p" * 129})
    assert r.status_code == 400
    r = b.call("POST", "/api/auth/register", json={"username": "bobby"})
    assert r.status_code == 400 and "password" in r.json()["error"]
    r = b.call("POST", "/api/auth/register", json={"username": 5, "password": "password123"})
    assert r.status_code == 400 and "username" in r.json()["error"]

    r = b.call("POST", "/api/auth/login", json={"username": "Alice", "password": "password123"})
    assert r.status_code == 200 and r.json()["username"] == "alice"
    second = User("alice", r.json()["token"])
    assert b.call("POST", "/api/auth/login", json={"username": "alice", "password": "wrong-password"}).json() == {"error": "Invalid credentials"}
    assert b.call("POST", "/api/auth/login", json={"username": "nobody", "password": "password123"}).status_code == 401

    # Token from A works on B; logout on B kills it on A at once (A has just seen it valid, so its token cache
    # must be told over pub/sub); the other token keeps working.
    assert b.call("POST", "/api/presence/heartbeat", user=alice, json={}).status_code == 200
    assert a.call("POST", "/api/presence/heartbeat", user=alice, json={}).status_code == 200
    assert b.call("POST", "/api/auth/logout", user=alice).json() == {"success": True, "message": "Logged out successfully"}
    r = a.call("POST", "/api/presence/heartbeat", user=alice, json={})
    assert r.status_code == 401 and r.json() == {"error": "Invalid token"}
    assert a.call("POST", "/api/presence/heartbeat", user=second, json={}).status_code == 200

    # Only the SHA-256 of a token is stored.
    r = cluster.redis()
    assert not any(second.token in k for k in r.keys("token:*"))
    assert r.hget("user:{alice}", "passwordHash").startswith("sha256$$2")
    assert "password123" not in json.dumps(r.hgetall("user:{alice}"))


def test_authentication_header_rules(cluster):
    a = cluster.a
    alice = register(a, "alice")
    bob = register(a, "bob1")
    path = "/api/presence/heartbeat"
    assert a.call("POST", path, json={}).json() == {"error": "Authentication required"}
    assert a.call("POST", path, json={}).status_code == 401
    r = a.call("POST", path, json={}, headers={"Authorization": f"Bearer {alice.token}"})
    assert r.status_code == 400 and r.json() == {"error": "Both Authorization and X-Username headers are required"}
    r = a.call("POST", path, json={}, headers={"X-Username": "alice"})
    assert r.status_code == 400
    r = a.call("POST", path, json={}, headers={"Authorization": f"Bearer {bob.token}", "X-Username": "alice"})
    assert r.status_code == 401 and r.json() == {"error": "Invalid token"}
    r = a.call("POST", path, json={}, headers={"Authorization": "Bearer " + "0" * 64, "X-Username": "alice"})
    assert r.json() == {"error": "Invalid token"}
    r = a.call("POST", path, json={}, headers={"Authorization": f"Bearer {alice.token}", "X-Username": "ALICE"})
    assert r.status_code == 200


def test_token_expiry_slides(make_cluster):
    c = make_cluster(1, TOKEN_TTL=60)
    alice = register(c.a, "alice")
    r = c.redis()
    key = r.keys("token:*")[0]
    assert 55 <= r.ttl(key) <= 60
    r.expire(key, 10)
    assert c.a.call("POST", "/api/presence/heartbeat", user=alice, json={}).status_code == 200
    assert r.ttl(key) > 50


# ---------------------------------------------------------------- origins, bodies

def test_own_host_pass_cannot_be_rebound(make_cluster):
    """DNS rebinding: an attacker's name resolved to this server makes Origin and Host agree. The own-host pass goes
    only to addresses and localhost; a name passes only when the operator names it (APP_PUBLIC_ORIGIN, ALLOWED_ORIGINS)."""
    c = make_cluster(1, ALLOWED_ORIGINS="https://only.example", APP_PUBLIC_ORIGIN="https://chat.example")
    a = c.a
    port = a.base.rsplit(":", 1)[1]
    user = register(a, "rebound")
    for host, allowed in [(f"evil.example:{port}", False), (f"127.0.0.1:{port}", True), (f"localhost:{port}", True),
                          ("chat.example", True)]:
        scheme = "https" if host == "chat.example" else "http"
        r = requests.post(a.base + "/api/presence/switch", json={"previousRoomId": None, "nextRoomId": "general"},
                          headers={"Host": host, "Origin": f"{scheme}://{host}", "Authorization": f"Bearer {user.token}",
                                   "X-Username": user.name}, timeout=5)
        assert (r.status_code == 200) == allowed, (host, r.status_code, r.text)
        if not allowed:
            assert r.json() == {"error": "Unauthorized"}


def test_origins_and_preflight(cluster):
    a = cluster.a
    r = requests.get(a.base + "/api/rooms", headers={"Origin": "https://evil.example"}, timeout=5)
    assert r.status_code == 403 and r.json() == {"error": "Unauthorized"}
    r = requests.get(a.base + "/api/rooms", headers={"Origin": "http://localhost:5173"}, timeout=5)
    assert r.status_code == 200
    assert r.headers["Access-Control-Allow-Origin"] == "http://localhost:5173"
    assert "Origin" in r.headers["Vary"]
    r = requests.options(a.base + "/api/rooms/general/messages", headers={"Origin": "http://127.0.0.1:3000"}, timeout=5)
    assert r.status_code == 204
    assert r.headers["Access-Control-Allow-Origin"] == "http://127.0.0.1:3000"
    assert r.headers["Access-Control-Allow-Headers"] == "Content-Type, Authorization, X-Username, X-User-Timezone"
    assert set(m.strip() for m in r.headers["Access-Control-Allow-Methods"].split(",")) == {"GET", "POST", "OPTIONS"}
    assert requests.options(a.base + "/api/rooms", headers={"Origin": "https://evil.example"}, timeout=5).status_code == 403


def test_any_origin_with_star(make_cluster):
    c = make_cluster(1, ALLOWED_ORIGINS="*")
    r = requests.get(c.a.base + "/api/rooms", headers={"Origin": "https://os.ryo.lu"}, timeout=5)
    assert r.status_code == 200 and r.headers["Access-Control-Allow-Origin"] == "https://os.ryo.lu"


def test_bodies_malformed_and_too_large(cluster):
    a = cluster.a
    alice = register(a, "alice")
    r = requests.post(a.base + "/api/auth/login", data="{not json", timeout=5)
    assert r.status_code == 400 and r.json() == {"error": "Invalid JSON body"}
    r = requests.post(a.base + "/api/auth/login", data="[1,2]", timeout=5)
    assert r.json() == {"error": "Invalid JSON body"}
    r = requests.post(a.base + "/api/auth/register", data=json.dumps({"username": "x" * 70000, "password": "p"}), timeout=5)
    assert r.status_code == 413 and "error" in r.json()
    r = a.call("POST", "/api/rooms/general/messages", user=alice, json={"content": "y" * 70000})
    assert r.status_code == 413


# ---------------------------------------------------------------- rooms

def test_rooms_lifecycle(cluster):
    a, b = cluster.a, cluster.b
    boss = admin(a)
    alice, bob, carol = (register(a, n) for n in ["alice", "bobby", "carol"])
    rooms = a.call("GET", "/api/rooms").json()["rooms"]
    assert {r["id"] for r in rooms} == {"general", "random"}
    assert all(set(r) == {"id", "name", "type", "createdAt", "createdBy", "userCount"} for r in rooms)

    sub = Subscription(cluster.redis(), ["chats-public", "private-chats-alice", "private-chats-bobby", "private-chats-carol"])
    r = a.call("POST", "/api/rooms", user=alice, json={"name": "Lobby", "type": "public"})
    assert r.status_code == 403 and r.json() == {"error": "Forbidden"}
    r = a.call("POST", "/api/rooms", user=boss, json={"name": "Lobby Two", "type": "public"})
    assert r.status_code == 201
    room = r.json()["room"]
    assert room["id"] == "lobby-two" and room["type"] == "public" and room["createdBy"] == "boss" and room["userCount"] == 0
    assert "members" not in room
    assert b.call("POST", "/api/rooms", user=boss, json={"name": "lobby two", "type": "public"}).status_code == 409
    assert b.call("POST", "/api/rooms", user=boss, json={"name": "bad/name", "type": "public"}).json() == {"error": "Invalid room ID format"}
    assert b.call("POST", "/api/rooms", user=boss, json={"name": "x", "type": "secret"}).status_code == 400
    assert b.call("POST", "/api/rooms", user=boss, json={"type": "public"}).status_code == 400

    r = b.call("POST", "/api/rooms", user=alice, json={"name": "dm", "type": "private", "members": ["bobby", "ghost"]})
    assert r.status_code == 400 and "ghost" in r.json()["error"]
    r = b.call("POST", "/api/rooms", user=alice, json={"name": "dm", "type": "private", "members": ["Bobby"]})
    assert r.status_code == 201
    dm = r.json()["room"]
    assert dm["type"] == "private" and sorted(dm["members"]) == ["alice", "bobby"] and dm["id"] != "dm"
    events = sub.events(0.5)
    assert {(e["event"], e["channel"]) for e in events} >= {
        ("room-updated", "chats-public"), ("room-updated", "private-chats-alice"), ("room-updated", "private-chats-bobby")}
    assert not any(e["channel"] == "private-chats-carol" for e in events)

    # Listing and reading, on the other worker.
    ids = lambda user: {r["id"] for r in a.call("GET", "/api/rooms", user=user).json()["rooms"]}
    assert dm["id"] in ids(alice) and dm["id"] in ids(bob)
    assert dm["id"] not in ids(carol) and dm["id"] not in {r["id"] for r in a.call("GET", "/api/rooms").json()["rooms"]}
    assert a.call("GET", f"/api/rooms/{dm['id']}", user=bob).json()["room"]["members"] == ["alice", "bobby"]
    assert a.call("GET", f"/api/rooms/{dm['id']}", user=carol).status_code == 403
    assert a.call("GET", f"/api/rooms/{dm['id']}").status_code == 403
    assert a.call("GET", "/api/rooms/nope").json() == {"error": "Room not found"}
    assert a.call("GET", "/api/rooms/bad%20id").json() == {"error": "Invalid room ID format"}

    # Deleting: public by admins only; private by members (the room goes below 2 members).
    assert a.call("DELETE", "/api/rooms/lobby-two", user=alice).status_code == 403
    a.call("POST", "/api/rooms/lobby-two/messages", user=alice, json={"content": "hi"})
    sub.events(0.3)
    assert b.call("DELETE", "/api/rooms/lobby-two", user=boss).json() == {"success": True}
    assert a.call("GET", "/api/rooms/lobby-two").status_code == 404
    assert not cluster.redis().keys("room:{lobby-two}*")
    assert {"event": "room-deleted", "channel": "chats-public", "data": {"roomId": "lobby-two"}} in sub.events(0.5)
    assert a.call("DELETE", f"/api/rooms/{dm['id']}", user=carol).status_code == 403
    assert a.call("DELETE", f"/api/rooms/{dm['id']}", user=bob).json() == {"success": True}
    assert a.call("GET", f"/api/rooms/{dm['id']}", user=alice).status_code == 404
    assert any(e["event"] == "room-deleted" and e["channel"] == "private-chats-alice" for e in sub.events(0.5))
    sub.close()


def test_private_room_survives_with_two_members(cluster):
    a = cluster.a
    alice, bob, carol = (register(a, n) for n in ["alice", "bobby", "carol"])
    room = a.call("POST", "/api/rooms", user=alice, json={"name": "trio", "type": "private", "members": ["bobby", "carol"]}).json()["room"]
    assert a.call("DELETE", f"/api/rooms/{room['id']}", user=carol).status_code == 200
    r = a.call("GET", f"/api/rooms/{room['id']}", user=alice)
    assert r.status_code == 200 and r.json()["room"]["members"] == ["alice", "bobby"]
    assert a.call("GET", f"/api/rooms/{room['id']}", user=carol).status_code == 403


def test_default_rooms_created_once_by_many_workers(make_cluster):
    c = make_cluster(3, DEFAULT_ROOMS="general,random,help")
    r = c.redis()
    assert public_rooms(r) == {"general", "random", "help"}
    created = {r.hget(f"room:{{{name}}}:meta", "createdAt") for name in ["general", "random", "help"]}
    assert all(created)
    for w in c.workers:
        assert {x["id"] for x in w.call("GET", "/api/rooms").json()["rooms"]} == {"general", "random", "help"}


# ---------------------------------------------------------------- presence

def switch(worker, user, prev, nxt, name=None):
    return worker.call("POST", "/api/presence/switch", user=user,
                       json={"previousRoomId": prev, "nextRoomId": nxt, "username": name or user.name})


def test_presence_switch_rules_and_events(cluster):
    a, b = cluster.a, cluster.b
    alice, bob, carol = (register(a, n) for n in ["alice", "bobby", "carol"])
    dm = a.call("POST", "/api/rooms", user=alice, json={"name": "dm", "type": "private", "members": ["bobby"]}).json()["room"]
    sub = Subscription(cluster.redis(), ["chats-public", "room-general", "room-random", f"private-room-{dm['id']}", "private-chats-bobby"])

    assert switch(a, alice, None, None).json() == {"success": True, "noop": True}
    assert switch(a, alice, "general", "general").json() == {"success": True, "noop": True}
    r = switch(a, alice, None, "general", name="bobby")
    assert r.status_code == 403 and r.json() == {"error": "Forbidden - username mismatch"}
    assert switch(a, alice, None, "general", name="ALICE").status_code == 200
    assert switch(a, alice, "bad id", "random").json() == {"error": "Invalid room ID format"}
    assert switch(a, alice, "general", "nope").json() == {"error": "Room not found"}
    r = switch(a, carol, None, dm["id"])
    assert r.status_code == 403 and r.json() == {"error": "Forbidden - not a room member"}
    # ryOS's UI sends no username: the session says who.
    r = a.call("POST", "/api/presence/switch", user=alice, json={"previousRoomId": "general", "nextRoomId": "general"})
    assert r.json() == {"success": True, "noop": True}, r.text
    r = a.call("POST", "/api/presence/switch", user=alice, json={"nextRoomId": 7, "username": "alice"})
    assert r.status_code == 400 and "nextRoomId" in r.json()["error"]

    # Rejected switches changed nothing: alice is still in general.
    users = lambda w, room, u=None: [x["username"] for x in w.call("GET", f"/api/rooms/{room}/users", user=u).json()["users"]]
    assert users(b, "general") == ["alice"]
    events = sub.events(0.5)
    assert {"event": "presence-update", "channel": "room-general",
            "data": {"roomId": "general", "username": "alice", "action": "joined", "userCount": 1}} in events
    updated = [e for e in events if e["event"] == "room-updated" and e["channel"] == "chats-public"]
    assert updated and updated[-1]["data"]["room"]["id"] == "general" and updated[-1]["data"]["room"]["userCount"] == 1

    # Switch through B: leave general, enter random; both sides announced.
    assert switch(b, alice, "general", "random").json() == {"success": True}
    assert users(a, "general") == [] and users(a, "random") == ["alice"]
    events = sub.events(0.5)
    assert {"event": "presence-update", "channel": "room-general",
            "data": {"roomId": "general", "username": "alice", "action": "left", "userCount": 0}} in events
    assert {"event": "presence-update", "channel": "room-random",
            "data": {"roomId": "random", "username": "alice", "action": "joined", "userCount": 1}} in events

    # An unknown previous room is no error; a private room announces on its private channels.
    assert switch(a, bob, "no-such-room", dm["id"]).json() == {"success": True}
    events = sub.events(0.5)
    assert any(e["event"] == "presence-update" and e["channel"] == f"private-room-{dm['id']}" for e in events)
    assert any(e["event"] == "room-updated" and e["channel"] == "private-chats-bobby"
               and e["data"]["room"]["userCount"] == 1 for e in events)
    assert users(a, dm["id"], bob) == ["bobby"]
    assert a.call("GET", f"/api/rooms/{dm['id']}/users", user=carol).status_code == 403
    assert a.call("GET", "/api/rooms/nope/users").status_code == 404
    # Leaving everything.
    assert switch(a, alice, "random", None).json() == {"success": True}
    assert users(b, "random") == []
    rooms = {r["id"]: r["userCount"] for r in b.call("GET", "/api/rooms", user=bob).json()["rooms"]}
    assert rooms == {"general": 0, "random": 0, dm["id"]: 1}
    # lastActive moved.
    assert int(cluster.redis().hget("user:{alice}", "lastActive")) > int(cluster.redis().hget("user:{alice}", "createdAt")) - 1
    sub.close()


def test_heartbeat_keeps_presence(make_cluster):
    c = make_cluster(2, CHAT_PRESENCE_TTL=2, SWEEP_INTERVAL_MS=200)
    alice, bob = register(c.a, "alice"), register(c.a, "bobby")
    assert switch(c.a, alice, None, "general").status_code == 200
    assert switch(c.a, bob, None, "random").status_code == 200
    for _ in range(4):
        time.sleep(0.8)
        assert c.b.call("POST", "/api/presence/heartbeat", user=alice, json={}).json() == {"success": True}
        assert c.a.call("POST", "/api/presence/heartbeat", user=bob, json={"roomId": "random"}).status_code == 200
    users = lambda room: [x["username"] for x in c.a.call("GET", f"/api/rooms/{room}/users").json()["users"]]
    assert users("general") == ["alice"] and users("random") == ["bobby"]
    assert c.a.call("POST", "/api/presence/heartbeat", user=bob, json={"roomId": "../x"}).status_code == 400
    time.sleep(2.5)
    assert users("general") == [] and users("random") == []


def test_sweeper_announces_expiry_exactly_once(make_cluster):
    c = make_cluster(2, CHAT_PRESENCE_TTL=2, SWEEP_INTERVAL_MS=250)
    alice, bob = register(c.a, "alice"), register(c.b, "bobby")
    sub = Subscription(c.redis(), ["room-general", "chats-public"])
    assert switch(c.a, alice, None, "general").status_code == 200
    assert switch(c.b, bob, None, "general").status_code == 200
    joined_at = time.monotonic()
    sub.events(0.3)
    # bob keeps heartbeating, alice stops.
    left = []
    while time.monotonic() - joined_at < 4.0 and not left:
        c.b.call("POST", "/api/presence/heartbeat", user=bob, json={"roomId": "general"})
        left += [e for e in sub.events(0.5) if e["event"] == "presence-update" and e["data"]["action"] == "left"]
    elapsed = time.monotonic() - joined_at
    for _ in range(3):  # bob stays: nothing more may be announced
        c.b.call("POST", "/api/presence/heartbeat", user=bob, json={"roomId": "general"})
        left += [e for e in sub.events(0.5) if e["event"] == "presence-update" and e["data"]["action"] == "left"]
    assert left == [{"event": "presence-update", "channel": "room-general",
                     "data": {"roomId": "general", "username": "alice", "action": "left", "userCount": 1}}]
    assert elapsed <= 2 + 2
    users = [x["username"] for x in c.a.call("GET", "/api/rooms/general/users").json()["users"]]
    assert users == ["bobby"]
    assert {r["id"]: r["userCount"] for r in c.b.call("GET", "/api/rooms").json()["rooms"]}["general"] == 1
    sub.close()


def test_200_users_switching_concurrently_through_two_workers(make_cluster):
    # 200 clients on one address, each with a keep-alive connection to both workers: above the default per-address
    # connection cap (100), which this test is not about.
    cluster = make_cluster(MAX_CONNECTIONS_PER_ADDRESS=1000)
    a, b = cluster.a, cluster.b
    r = cluster.redis()
    # Seed users straight into Redis with tokens, as registration would (bcrypt is not what is under test).
    import hashlib, secrets
    users = []
    for i in range(200):
        name = f"user{i:03d}"
        token = secrets.token_hex(32)
        r.hset(f"user:{{{name}}}", mapping={"username": name, "passwordHash": "x", "createdAt": 1, "lastActive": 1})
        r.set(f"token:{{{hashlib.sha256(token.encode()).hexdigest()}}}", name, ex=600)
        users.append(User(name, token))
    rooms = ["general", "random"]
    errors = []

    def run(index, user):
        session = requests.Session()
        worker = (a, b)[index % 2]
        prev = None
        for step in range(6):
            nxt = rooms[(index + step) % 2] if step < 5 else (None if index % 3 == 0 else rooms[index % 2])
            resp = session.post(worker.base + "/api/presence/switch", timeout=30,
                                json={"previousRoomId": prev, "nextRoomId": nxt, "username": user.name},
                                headers={"Authorization": f"Bearer {user.token}", "X-Username": user.name})
            if resp.status_code != 200:
                errors.append(resp.text)
            prev = nxt
            worker = (b, a)[index % 2]

    threads = [threading.Thread(target=run, args=(i, u)) for i, u in enumerate(users)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    expected = {"general": 0, "random": 0}
    for i in range(200):
        if i % 3 != 0:
            expected[rooms[i % 2]] += 1
    for w in (a, b):
        counts = {room["id"]: room["userCount"] for room in w.call("GET", "/api/rooms").json()["rooms"]}
        assert counts == expected
        for room in rooms:
            assert len(w.call("GET", f"/api/rooms/{room}/users").json()["users"]) == expected[room]


# ---------------------------------------------------------------- messages

def test_messages(make_cluster):
    c = make_cluster(2, MESSAGE_RATE_LIMIT=5, HISTORY_LIMIT=8)
    a, b = c.a, c.b
    alice, bob, carol = (register(a, n) for n in ["alice", "bobby", "carol"])
    dm = a.call("POST", "/api/rooms", user=alice, json={"name": "dm", "type": "private", "members": ["bobby"]}).json()["room"]
    sub = Subscription(c.redis(), ["room-general", f"private-room-{dm['id']}", "private-chats-bobby"])
    r = a.call("POST", "/api/rooms/general/messages", user=alice, json={"content": "  hello world  "})
    assert r.status_code == 201
    m = r.json()["message"]
    assert set(m) == {"id", "roomId", "username", "content", "timestamp"}
    assert m["content"] == "hello world" and m["roomId"] == "general" and m["username"] == "alice"
    assert abs(m["timestamp"] - time.time() * 1000) < 5000 and m["id"].startswith(str(m["timestamp"]))
    assert {"event": "room-message", "channel": "room-general", "data": {"roomId": "general", "message": m}} in sub.events(0.5)

    assert a.call("POST", "/api/rooms/general/messages", user=alice, json={"content": "   "}).status_code == 400
    assert a.call("POST", "/api/rooms/general/messages", user=alice, json={"content": "x" * 1001}).status_code == 400
    assert a.call("POST", "/api/rooms/general/messages", user=alice, json={"content": 5}).status_code == 400
    assert a.call("POST", "/api/rooms/general/messages", json={"content": "hi"}).status_code == 401
    assert a.call("POST", "/api/rooms/nope/messages", user=alice, json={"content": "hi"}).status_code == 404
    assert a.call("POST", f"/api/rooms/{dm['id']}/messages", user=carol, json={"content": "hi"}).status_code == 403
    r = b.call("POST", f"/api/rooms/{dm['id']}/messages", user=bob, json={"content": "psst"})
    assert r.status_code == 201
    events = sub.events(0.5)
    assert {e["channel"] for e in events if e["event"] == "room-message"} == {f"private-room-{dm['id']}", "private-chats-bobby"}

    # Rate limit: 5 per 60 s per user, across workers; 429 with Retry-After.
    statuses = [(a, b)[i % 2].call("POST", "/api/rooms/general/messages", user=alice, json={"content": f"m{i}"}).status_code for i in range(5)]
    assert statuses == [201, 201, 201, 201, 429]
    r = b.call("POST", "/api/rooms/general/messages", user=alice, json={"content": "again"})
    assert r.status_code == 429 and r.json() == {"error": "Rate limit exceeded"} and 1 <= int(r.headers["Retry-After"]) <= 60
    for i in range(6):
        assert b.call("POST", "/api/rooms/general/messages", user=carol, json={"content": f"c{i}"}).status_code in (201, 429)

    # History: newest first, limit, before cursor, capped at HISTORY_LIMIT.
    msgs = a.call("GET", "/api/rooms/general/messages").json()["messages"]
    assert len(msgs) == 8
    ids = [x["id"] for x in msgs]
    assert ids == sorted(ids, key=lambda i: tuple(map(int, i.split("-"))), reverse=True)
    page = b.call("GET", "/api/rooms/general/messages?limit=3").json()["messages"]
    assert [x["id"] for x in page] == ids[:3]
    older = b.call("GET", f"/api/rooms/general/messages?limit=3&before={page[-1]['id']}").json()["messages"]
    assert [x["id"] for x in older] == ids[3:6]
    assert b.call("GET", "/api/rooms/general/messages?before=abc").status_code == 400
    assert b.call("GET", "/api/rooms/general/messages?limit=x").status_code == 400
    assert len(b.call("GET", "/api/rooms/general/messages?limit=500").json()["messages"]) == 8
    assert c.redis().xlen("room:{general}:history") == 8
    assert b.call("GET", f"/api/rooms/{dm['id']}/messages", user=carol).status_code == 403
    assert b.call("GET", f"/api/rooms/{dm['id']}/messages", user=alice).json()["messages"][0]["content"] == "psst"
    sub.close()


# ---------------------------------------------------------------- users and search

def test_search_over_10000_users(cluster):
    a, b = cluster.a, cluster.b
    r = cluster.redis()
    import random
    rng = random.Random(7)
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
    names = set()
    while len(names) < 10000:
        names.add(rng.choice("abcdefghijklmnopqrstuvwxyz") + "".join(rng.choice(alphabet) for _ in range(rng.randint(2, 9))))
    names |= {"alice", "alicia", "ali-baba", "alison_x"}
    pipe = r.pipeline(transaction=False)
    for n in names:
        pipe.hset(f"user:{{{n}}}", mapping={"username": n, "passwordHash": "$2b$secret", "createdAt": 1, "lastActive": 1000 + len(n)})
        pipe.zadd(f"users:prefix:{n[:2]}", {n: 0})
    pipe.execute()

    for prefix in ["al", "ali", "b3", "zz", "q"]:
        expected = sorted(n for n in names if n.startswith(prefix))[:20] if len(prefix) >= 2 else []
        got = b.call("GET", f"/api/users?search={prefix}").json()["users"]
        assert [u["username"] for u in got] == expected, prefix
        assert all(set(u) == {"username", "lastActive"} for u in got)
        assert all(u["lastActive"] == 1000 + len(u["username"]) for u in got)
    got = a.call("GET", "/api/users?search=%20ALI%20&limit=3").json()["users"]
    assert [u["username"] for u in got] == sorted(n for n in names if n.startswith("ali"))[:3]
    assert len(a.call("GET", "/api/users?search=a&limit=50").json()["users"]) == 0
    assert len(a.call("GET", "/api/users?search=a1&limit=500").json()["users"]) <= 50
    for weird in ["a*", "a?", "[a", "al%00", "al\\", "al]"]:
        resp = a.call("GET", "/api/users", params={"search": weird})
        assert resp.status_code == 200 and resp.json() == {"users": []}


def test_search_rate_limit_per_client_address(make_cluster):
    c = make_cluster(2, SEARCH_RATE_LIMIT=3)
    a, b = c.a, c.b
    # Loopback is a trusted proxy by default: X-Forwarded-For names the client.
    ok = [a.call("GET", "/api/users?search=al", headers={"X-Forwarded-For": "203.0.113.5"}).status_code for _ in range(3)]
    assert ok == [200, 200, 200]
    r = b.call("GET", "/api/users?search=al", headers={"X-Forwarded-For": "203.0.113.5"})
    assert r.status_code == 429 and r.json() == {"error": "Rate limit exceeded"} and int(r.headers["Retry-After"]) >= 1
    assert b.call("GET", "/api/users?search=al", headers={"X-Forwarded-For": "203.0.113.6"}).status_code == 200


def test_login_attempts_limited_per_username_address_pair_and_per_address(make_cluster):
    c = make_cluster(2, LOGIN_RATE_LIMIT=3, LOGIN_ADDRESS_RATE_LIMIT=5)
    a, b = c.a, c.b
    register(a, "carol")
    register(a, "dave")

    def login(worker, name, password, address):
        return worker.call("POST", "/api/auth/login", json={"username": name, "password": password},
                           headers={"X-Forwarded-For": address})

    # Per username and client address, across workers: right and wrong attempts both count; the 4th from that
    # address is refused even with the right password, and says when to come back.
    codes = [login(a, "carol", "wrong-password", "203.0.113.10").status_code,
             login(b, "carol", "wrong-password", "203.0.113.10").status_code,
             login(a, "Carol", "password123", "203.0.113.10").status_code]
    assert codes == [401, 401, 200]
    r = login(b, "carol", "password123", "203.0.113.10")
    assert r.status_code == 429 and r.json() == {"error": "Rate limit exceeded"} and int(r.headers["Retry-After"]) >= 1
    assert "token" not in r.text
    # The same user from another address, and another user from that address, are not affected.
    assert login(a, "carol", "password123", "203.0.113.11").status_code == 200
    assert login(a, "dave", "password123", "203.0.113.10").status_code == 200

    # Per address: 5 attempts from one client address, whatever the names (unknown and invalid ones count too).
    codes = [login(a, name, "password123", "198.51.100.7").status_code for name in ["nobody1", "bad name", "dave", "nobody2", "nobody3"]]
    assert codes == [401, 401, 200, 401, 401]
    r = login(b, "dave", "password123", "198.51.100.7")
    assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1
    assert login(b, "dave", "password123", "198.51.100.8").status_code == 200
    # Limiter state lives in Redis under the documented keys.
    keys = c.redis().keys("ratelimit:login*")
    assert any("carol" in k for k in keys), keys
    assert "ratelimit:login-address:{198.51.100.7}" in keys, keys


def test_untrusted_peer_cannot_spoof_forwarded_for(make_cluster):
    c = make_cluster(1, SEARCH_RATE_LIMIT=2, TRUSTED_PROXIES="10.9.9.9")
    codes = [c.a.call("GET", "/api/users?search=al", headers={"X-Forwarded-For": f"198.51.100.{i}"}).status_code for i in range(3)]
    assert codes == [200, 200, 429]


# ---------------------------------------------------------------- key schema

def documented_patterns():
    import os
    import re
    path = os.path.join(os.path.dirname(__file__), "..", "..", "docs", "redis-keys.md")
    patterns = []
    in_keys = False
    for line in open(path):
        if line.startswith("## "):
            in_keys = line.strip() == "## Keys"
        if in_keys and line.startswith("| `"):
            pattern = line.split("`")[1]
            regex = "^" + re.sub(r"<[^>]+>", ".+?", re.escape(pattern).replace(r"\<", "<").replace(r"\>", ">")) + "$"
            patterns.append((pattern, re.compile(regex)))
    return patterns


def test_every_key_a_full_scenario_creates_is_documented(make_cluster):
    c = make_cluster(2, CHAT_PRESENCE_TTL=1, SWEEP_INTERVAL_MS=200, MESSAGE_RATE_LIMIT=50)
    a, b = c.a, c.b
    boss = admin(a)
    alice, bob = (register(a, n) for n in ["alice", "bobby"])
    b.call("POST", "/api/auth/login", json={"username": "alice", "password": "password123"})
    a.call("POST", "/api/rooms", user=boss, json={"name": "Lobby", "type": "public"})
    dm = a.call("POST", "/api/rooms", user=alice, json={"name": "dm", "type": "private", "members": ["bobby"]}).json()["room"]
    switch(a, alice, None, "lobby")
    switch(b, bob, None, dm["id"])
    a.call("POST", "/api/presence/heartbeat", user=alice, json={})
    a.call("POST", "/api/rooms/lobby/messages", user=alice, json={"content": "hi"})
    b.call("POST", f"/api/rooms/{dm['id']}/messages", user=bob, json={"content": "hi"})
    b.call("GET", "/api/users?search=al")
    a.call("PUT", "/api/admin/agents/bobby", user=boss)
    a.call("POST", "/support/T-1/metadata", user=bob, json={"priority": "high", "customerId": "alice"})
    b.call("POST", "/support/T-1/join", user=alice, json={})
    b.call("POST", "/support/T-1/messages", user=alice, json={"content": "help"})
    a.call("POST", "/support/T-1/close", user=bob, json={})
    import websocket as ws_client
    port = int(a.base.rsplit(":", 1)[1])
    sock = ws_client.create_connection(f"ws://127.0.0.1:{port}/app/presence-key?protocol=7", timeout=5)
    sock.recv()
    sock.send(json.dumps({"event": "pusher:subscribe", "data": {"channel": "room-lobby"}}))
    sock.recv()
    a.call("POST", "/pusher/auth", user=alice, data={"socket_id": "1.1", "channel_name": "presence-room-lobby"}).json()
    r = c.redis()
    keys = set(r.scan_iter(count=1000))
    sock.close()
    time.sleep(2)  # let presence expire and be swept
    keys |= set(r.scan_iter(count=1000))
    patterns = documented_patterns()
    assert len(patterns) >= 10
    undocumented = [k for k in keys if not any(rx.match(k) for _, rx in patterns)]
    assert undocumented == []
    # And the scenario did exercise the main patterns.
    for must in ["room:{lobby}:meta", "room:{lobby}:history", "user:{alice}", "users:prefix:al",
                 spread_key("rooms:public", "lobby"), "user:{bobby}:agent", f"room:{{{dm['id']}}}:access",
                 "user:{alice}:present", "ratelimit:messages:{alice}", "room:{ticket_T-1}:meta",
                 "room:{ticket_T-1}:snapshot", "room:{ticket_T-1}:history", "room:{ticket_T-1}:attendance",
                 "support:agents"]:
        assert must in keys, must
    assert any(k.startswith("token:{") for k in keys)
    assert "room:{lobby}:members" in keys and "room:{lobby}:joined" in keys


def test_room_users_in_pages_and_as_a_count(cluster):
    """GET /api/rooms/{id}/users: unchanged without parameters; pages in join order with the stable cursor; a count."""
    from test_support_api import seed_users
    a, b = cluster.a, cluster.b
    r = cluster.redis()
    room = "random"
    people = seed_users(r, [f"pg{i:03d}" for i in range(130)])
    for i, u in enumerate(people):
        assert (a, b)[i % 2].call("POST", "/api/presence/switch", user=u,
                                  json={"nextRoomId": room, "username": u.name}).status_code == 200
    everyone = a.call("GET", f"/api/rooms/{room}/users").json()
    names = [x["username"] for x in everyone["users"]]
    assert set(names) >= {u.name for u in people} and names == sorted(names) and set(everyone) == {"users"}
    assert a.call("GET", f"/api/rooms/{room}/users?count=true").json() == {"count": len(names)}
    seen, cursor, pages = [], None, 0
    while True:
        page = (a, b)[pages % 2].call("GET", f"/api/rooms/{room}/users?limit=40" + (f"&cursor={cursor}" if cursor else "")).json()
        assert len(page["users"]) <= 40
        seen += page["users"]
        cursor, pages = page["nextCursor"], pages + 1
        if not cursor:
            break
    assert pages == -(-len(names) // 40)
    assert sorted(x["username"] for x in seen) == sorted(names)  # each once
    joined = [(x["joinedAt"], x["username"]) for x in seen]
    assert joined == sorted(joined)  # join order
    # Someone leaving between pages does not shift the others.
    first = a.call("GET", f"/api/rooms/{room}/users?limit=10").json()
    leaver = first["users"][0]["username"]
    who = next(u for u in people if u.name == leaver) if leaver.startswith("pg") else None
    if who:
        a.call("POST", "/api/presence/switch", user=who, json={"previousRoomId": room, "username": who.name})
    rest = a.call("GET", f"/api/rooms/{room}/users?limit=100&cursor={first['nextCursor']}").json()["users"]
    assert rest[0]["username"] == names_in_join_order(seen)[10]
    for query, message in [("limit=0", "Query parameter 'limit' must be an integer from 1 to 100"),
                           ("limit=x", "Query parameter 'limit' must be an integer from 1 to 100"),
                           ("cursor=nonsense", "Invalid cursor"), ("count=false", "Query parameter 'count' must be true")]:
        response = a.call("GET", f"/api/rooms/{room}/users?{query}")
        assert response.status_code == 400 and response.json() == {"error": message}, query
    # A private room's list, paged or counted, is for its members only.
    alice, bob, carol = register(a, "pgalice"), register(a, "pgbob"), register(a, "pgcarol")
    dm = a.call("POST", "/api/rooms", user=alice, json={"name": "dm", "type": "private", "members": ["pgbob"]}).json()["room"]
    for query in ("count=true", "limit=5", "cursor="):
        assert a.call("GET", f"/api/rooms/{dm['id']}/users?{query}", user=carol).status_code == 403
        assert a.call("GET", f"/api/rooms/{dm['id']}/users?{query}", user=bob).status_code == 200
    assert a.call("GET", "/api/rooms/nope/users?count=true").status_code == 404


def names_in_join_order(users):
    return [x["username"] for x in sorted(users, key=lambda x: (x["joinedAt"], x["username"]))]
