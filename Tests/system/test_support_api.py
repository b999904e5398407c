"""Support ticket rooms through two worker processes on one Redis."""
import hashlib
import secrets
import time

from conftest import Subscription, User, admin, register


def seed_users(r, names):
    users = []
    pipe = r.pipeline(transaction=False)
    for name in names:
        token = secrets.token_hex(32)
        pipe.hset(f"user:{{{name}}}", mapping={"username": name, "passwordHash": "x", "createdAt": 1, "lastActive": 1})
        pipe.set(f"token:{{{hashlib.sha256(token.encode()).hexdigest()}}}", name, ex=600)
        users.append(User(name, token))
    pipe.execute()
    return users


def setup_people(c):
    a = c.a
    boss = admin(a)                     # the configured admin (ADMIN_USERS, ADMIN_PASSWORD)
    agent = register(a, "agent1")
    cust = register(a, "cust1")
    other = register(a, "other1")
    assert a.call("PUT", "/api/admin/agents/agent1", user=boss).status_code == 200
    return boss, agent, cust, other


def test_agents_admin_routes(cluster):
    a, b = cluster.a, cluster.b
    boss, agent, cust, other = setup_people(cluster)
    assert b.call("GET", "/api/admin/agents", user=boss).json() == {"agents": ["agent1"]}
    assert b.call("GET", "/api/admin/agents", user=agent).status_code == 403
    assert b.call("PUT", "/api/admin/agents/other1", user=cust).json() == {"error": "Forbidden"}
    assert b.call("PUT", "/api/admin/agents/nobody", user=boss).status_code == 404
    assert b.call("PUT", "/api/admin/agents/bad%20name", user=boss).status_code == 400
    assert b.call("PUT", "/api/admin/agents/other1", user=boss).status_code == 200
    assert a.call("GET", "/api/admin/agents", user=boss).json() == {"agents": ["agent1", "other1"]}
    assert a.call("DELETE", "/api/admin/agents/other1", user=boss).json() == {"success": True}
    assert a.call("DELETE", "/api/admin/agents/other1", user=boss).status_code == 404
    assert a.call("GET", "/api/admin/agents").status_code == 401


def test_seed_flow_end_to_end(cluster):
    """metadata → join → typing → members → close, then transcript and snapshot still readable."""
    a, b = cluster.a, cluster.b
    boss, agent, cust, other = setup_people(cluster)
    sub = Subscription(cluster.redis(), ["private-room-ticket_T-100"])

    r = a.call("POST", "/support/T-100/metadata", user=agent, json={"priority": "high", "assignedAgentId": "agent1"})
    assert r.status_code == 200
    room = r.json()["room"]
    assert room["id"] == "ticket_T-100" and room["ticketId"] == "T-100"
    assert room["metadata"] == {"ticketId": "T-100", "priority": "high", "assignedAgentId": "agent1", "status": "open"}
    assert isinstance(room["createdAt"], int)

    # Opened by an agent with no customer named: the first user to join as customer takes the seat (the seed's order),
    # and nobody else can after.
    assert r.json()["room"]["customerId"] is None
    r = b.call("POST", "/support/T-100/join", user=cust, json={})
    assert r.status_code == 200, r.text
    assert b.call("POST", "/support/T-100/join", user=other, json={}).status_code == 403
    r = b.call("POST", "/support/T-100/metadata", user=agent, json={"status": "open"})
    assert r.status_code == 200 and r.json()["room"]["customerId"] == "cust1"
    r = b.call("POST", "/support/T-100/join", user=cust, json={})
    assert r.status_code == 200
    m = r.json()["member"]
    assert m["username"] == "cust1" and m["metadata"] == {"role": "customer"}
    assert m["presence"] == {"status": "online", "typing": False}
    assert m["expiresAt"] - m["lastSeen"] == 45000 and m["joinedAt"] <= m["lastSeen"]
    r = a.call("POST", "/support/T-100/join", user=agent, json={"role": "agent"})
    assert r.json()["member"]["metadata"] == {"role": "agent"}

    assert a.call("POST", "/support/T-100/typing", user=cust, json={"typing": True}).json() == {"presence": {"status": "online", "typing": True}}
    assert b.call("POST", "/support/T-100/typing", user=cust, json={"typing": True}).status_code == 200
    assert b.call("POST", "/support/T-100/typing", user=cust, json={"typing": "yes"}).status_code == 400
    assert b.call("POST", "/support/T-100/typing", user=cust, json={}).status_code == 400

    members = b.call("GET", "/support/T-100/members", user=agent).json()
    assert [x["username"] for x in members["members"]] == ["cust1", "agent1"]
    assert members["members"][0]["presence"]["typing"] is True
    assert members["nextCursor"] is None

    assert a.call("POST", "/support/T-100/messages", user=cust, json={"content": "my printer is on fire"}).status_code == 201
    r = b.call("POST", "/support/T-100/messages", user=agent, json={"content": "on it"})
    assert r.status_code == 201
    msg = r.json()["message"]
    assert set(msg) == {"id", "roomId", "username", "role", "content", "timestamp"} and msg["role"] == "agent"

    events = sub.events(0.7)
    names = [e["event"] for e in events]
    assert names.count("member-updated") == 1, names  # typing:true twice → one broadcast
    assert names.count("member-joined") == 2 and "metadata-updated" in names and names.count("room-message") == 2

    assert a.call("POST", "/support/T-100/close", user=cust, json={}).status_code == 403
    r = a.call("POST", "/support/T-100/close", user=agent, json={})
    assert r.json() == {"closed": True, "historyKept": True, "snapshotKept": True}
    events = sub.events(0.5)
    left = [e["data"] for e in events if e["event"] == "member-left"]
    assert sorted(x["username"] for x in left) == ["agent1", "cust1"] and all(x["reason"] == "closed" for x in left)
    closed = [e["data"] for e in events if e["event"] == "room-closed"]
    assert len(closed) == 1 and closed[0]["roomId"] == "ticket_T-100"

    # After close: live routes 410, transcript and snapshot readable.
    for method, path, body in [("POST", "join", {}), ("POST", "typing", {"typing": False}), ("POST", "heartbeat", {}),
                               ("POST", "messages", {"content": "x"}), ("GET", "members", None)]:
        r = b.call(method, f"/support/T-100/{path}", user=agent, json=body)
        assert r.status_code == 410 and r.json() == {"error": "Room closed"}, path
    transcript = b.call("GET", "/support/T-100/messages", user=cust).json()["messages"]
    assert [x["content"] for x in transcript] == ["my printer is on fire", "on it"]
    assert [x["role"] for x in transcript] == ["customer", "agent"]
    snap = a.call("GET", "/support/T-100/snapshot", user=agent).json()["snapshot"]
    assert snap["metadata"] == {"ticketId": "T-100", "priority": "high", "assignedAgentId": "agent1", "status": "open"}
    assert sorted((x["username"], x["role"]) for x in snap["members"]) == [("agent1", "agent"), ("cust1", "customer")]
    assert snap["closedBy"] == "agent1" and snap["messageCount"] == 2 and snap["closedAt"] >= snap["createdAt"]
    assert not cluster.redis().exists("room:{ticket_T-100}:members", "room:{ticket_T-100}:joined")
    assert a.call("POST", "/support/T-100/close", user=agent, json={}).status_code == 410

    # Reopen: live again with its history.
    assert a.call("POST", "/support/T-100/reopen", user=cust).status_code == 403
    assert a.call("POST", "/support/T-100/reopen", user=agent).status_code == 200
    assert b.call("POST", "/support/T-100/join", user=cust, json={}).status_code == 200
    assert len(b.call("GET", "/support/T-100/messages", user=cust).json()["messages"]) == 2
    assert any(e["event"] == "room-reopened" for e in sub.events(0.5))
    sub.close()


def test_close_can_delete_history_and_snapshot(cluster):
    a = cluster.a
    boss, agent, cust, other = setup_people(cluster)
    a.call("POST", "/support/T-7/join", user=cust, json={})
    a.call("POST", "/support/T-7/messages", user=cust, json={"content": "hello"})
    r = cluster.redis()
    assert r.xlen("room:{ticket_T-7}:history") == 1
    res = a.call("POST", "/support/T-7/close", user=boss, json={"deleteHistory": True, "deleteSnapshots": True})
    assert res.json() == {"closed": True, "historyKept": False, "snapshotKept": False}
    assert not r.exists("room:{ticket_T-7}:history") and not r.exists("room:{ticket_T-7}:snapshot")
    assert a.call("GET", "/support/T-7/snapshot", user=agent).status_code == 404
    assert a.call("GET", "/support/T-7/messages", user=agent).json() == {"messages": []}
    assert a.call("POST", "/support/T-7/close", user=agent, json={"deleteHistory": "yes"}).status_code == 400


def test_access_roles_and_errors(cluster):
    a, b = cluster.a, cluster.b
    boss, agent, cust, other = setup_people(cluster)
    assert a.call("POST", "/support/bad%20id/join", user=cust, json={}).status_code == 400
    assert a.call("POST", "/support/" + "x" * 65 + "/join", user=cust, json={}).status_code == 400
    assert a.call("POST", "/support/T-1/join", json={}).status_code == 401
    # Never existed → 404 everywhere but join and metadata.
    for method, path in [("POST", "typing"), ("POST", "heartbeat"), ("POST", "leave"), ("GET", "members"),
                         ("POST", "messages"), ("GET", "messages"), ("POST", "close"), ("POST", "reopen"), ("GET", "snapshot")]:
        r = a.call(method, f"/support/NOPE/{path}", user=agent, json={"typing": True, "content": "x"} if method == "POST" else None)
        assert r.status_code == 404 and r.json() == {"error": "Room not found"}, path

    assert a.call("POST", "/support/T-1/join", user=cust, json={"role": "agent"}).json() == {"error": "Forbidden"}
    assert a.call("POST", "/support/T-1/join", user=cust, json={"role": "observer"}).status_code == 403
    assert a.call("POST", "/support/T-1/join", user=cust, json={"role": "boss"}).status_code == 400
    assert a.call("POST", "/support/T-1/join", user=cust, json={}).status_code == 200  # cust1 opens it
    # Anyone else is shut out of every route of that ticket.
    for method, path in [("POST", "join"), ("POST", "typing"), ("POST", "heartbeat"), ("POST", "leave"), ("GET", "members"),
                         ("POST", "messages"), ("GET", "messages"), ("POST", "metadata"), ("GET", "snapshot")]:
        r = b.call(method, f"/support/T-1/{path}", user=other, json={"typing": True, "content": "x"} if method == "POST" else None)
        assert r.status_code == 403 and r.json() == {"error": "Forbidden"}, path
    assert b.call("POST", "/support/T-1/metadata", user=cust, json={"status": "pending"}).status_code == 403
    # Observers and admins.
    assert b.call("POST", "/support/T-1/join", user=agent, json={"role": "observer"}).json()["member"]["metadata"] == {"role": "observer"}
    assert b.call("POST", "/support/T-1/join", user=boss, json={"role": "agent"}).status_code == 200
    # Not present → 409.
    assert a.call("POST", "/support/T-1/leave", user=cust).json() == {"success": True}
    assert a.call("POST", "/support/T-1/typing", user=cust, json={"typing": True}).json() == {"error": "Not in room"}
    assert a.call("POST", "/support/T-1/heartbeat", user=cust).status_code == 409
    assert a.call("POST", "/support/T-1/join", user=cust, json={}).status_code == 200
    hb = a.call("POST", "/support/T-1/heartbeat", user=cust).json()
    assert hb["expiresAt"] > time.time() * 1000 + 40000
    # Messages: 1-4000 characters.
    assert a.call("POST", "/support/T-1/messages", user=cust, json={"content": ""}).status_code == 400
    assert a.call("POST", "/support/T-1/messages", user=cust, json={"content": "x" * 4001}).status_code == 400
    assert a.call("POST", "/support/T-1/messages", user=cust, json={"content": "x" * 4000}).status_code == 201
    assert a.call("GET", "/support/T-1/messages?after=zzz", user=cust).status_code == 400


def test_metadata_partial_updates_and_validation(cluster):
    a, b = cluster.a, cluster.b
    boss, agent, cust, other = setup_people(cluster)
    meta = lambda r: r.json()["room"]["metadata"]
    assert meta(a.call("POST", "/support/M-1/metadata", user=agent, json={"priority": "low"})) == \
        {"ticketId": "M-1", "priority": "low", "assignedAgentId": None, "status": "open"}
    assert meta(b.call("POST", "/support/M-1/metadata", user=boss, json={"status": "pending"}))["priority"] == "low"
    assert meta(b.call("POST", "/support/M-1/metadata", user=boss, json={"assignedAgentId": "agent1"}))["assignedAgentId"] == "agent1"
    assert meta(b.call("POST", "/support/M-1/metadata", user=boss, json={"assignedAgentId": "BOSS"}))["assignedAgentId"] == "boss"
    assert meta(a.call("POST", "/support/M-1/metadata", user=agent, json={"priority": None})) == \
        {"ticketId": "M-1", "priority": None, "assignedAgentId": "boss", "status": "pending"}
    for bad in [{"priority": "meh"}, {"status": "closed"}, {"status": None}, {"assignedAgentId": "cust1"},
                {"assignedAgentId": "nobody"}, {"priority": 3}]:
        r = a.call("POST", "/support/M-1/metadata", user=agent, json=bad)
        assert r.status_code == 400, bad
    assert meta(a.call("POST", "/support/M-1/metadata", user=agent, json={})) == \
        {"ticketId": "M-1", "priority": None, "assignedAgentId": "boss", "status": "pending"}
    # Two agents changing different fields at the same moment, through two workers: both win.
    import threading
    for round_ in range(10):
        prio, status = ["low", "urgent"][round_ % 2], ["open", "resolved"][round_ % 2]
        t1 = threading.Thread(target=a.call, args=("POST", "/support/M-1/metadata"), kwargs={"user": agent, "json": {"priority": prio}})
        t2 = threading.Thread(target=b.call, args=("POST", "/support/M-1/metadata"), kwargs={"user": boss, "json": {"status": status}})
        t1.start(); t2.start(); t1.join(); t2.join()
        got = b.call("GET", "/support/M-1/messages", user=agent)  # any route; then read the metadata
        assert got.status_code == 200
        m = cluster.redis().hgetall("room:{ticket_M-1}:meta")
        assert (m["priority"], m["status"]) == (prio, status)


def test_expired_member_leaves_exactly_once(make_cluster):
    c = make_cluster(2, SUPPORT_PRESENCE_TTL=2, SWEEP_INTERVAL_MS=250)
    boss, agent, cust, other = setup_people(c)
    sub = Subscription(c.redis(), ["private-room-ticket_E-1"])
    assert c.a.call("POST", "/support/E-1/join", user=cust, json={}).status_code == 200
    assert c.b.call("POST", "/support/E-1/join", user=agent, json={"role": "agent"}).status_code == 200
    start = time.monotonic()
    left = []
    while time.monotonic() - start < 5:
        c.b.call("POST", "/support/E-1/heartbeat", user=agent)
        left += [e for e in sub.events(0.4) if e["event"] == "member-left"]
        members = [m["username"] for m in c.a.call("GET", "/support/E-1/members", user=agent).json()["members"]]
        if time.monotonic() - start > 2.3:
            assert members == ["agent1"]
    assert left == [{"event": "member-left", "channel": "private-room-ticket_E-1",
                     "data": {"username": "cust1", "reason": "expired"}}]


def test_members_pagination_while_members_come_and_go(cluster):
    a, b = cluster.a, cluster.b
    boss, agent, cust, other = setup_people(cluster)
    r = cluster.redis()
    people = seed_users(r, [f"m{i:03d}" for i in range(300)] + [f"late{i:02d}" for i in range(40)])
    members, late = people[:300], people[300:]
    r.sadd("support:agents", *[u.name for u in people])
    for u in people:
        r.set(f"user:{{{u.name}}}:agent", "1")
    for i, u in enumerate(members):
        assert (a, b)[i % 2].call("POST", "/support/P-1/join", user=u, json={"role": "agent"}).status_code == 200
    left_during = set()
    seen = []
    cursor = None
    page_no = 0
    while True:
        q = "/support/P-1/members?limit=25" + (f"&cursor={cursor}" if cursor else "")
        page = (a, b)[page_no % 2].call("GET", q, user=agent).json()
        assert len(page["members"]) <= 25
        seen += [m["username"] for m in page["members"]]
        cursor = page["nextCursor"]
        # Between pages: some leave, some join.
        for u in members[page_no * 7::7][:3]:
            a.call("POST", "/support/P-1/leave", user=u)
            left_during.add(u.name)
        for u in late[page_no * 3:page_no * 3 + 3]:
            b.call("POST", "/support/P-1/join", user=u, json={"role": "agent"})
        page_no += 1
        if not cursor:
            break
    assert len(seen) == len(set(seen)), "a member appeared twice"
    assert 10 <= len(left_during) < 60
    present_throughout = [u.name for u in members if u.name not in left_during]
    missing = [n for n in present_throughout if n not in seen]
    assert missing == []
    # Join order: oldest first.
    order = [n for n in seen if n.startswith("m")]
    assert order == sorted(order)
    assert a.call("GET", "/support/P-1/members?cursor=garbage", user=agent).status_code == 400
    assert len(a.call("GET", "/support/P-1/members?limit=1000", user=agent).json()["members"]) == 100
