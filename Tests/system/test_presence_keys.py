"""Presence in keys with native TTL (#27), through two workers, on one Redis and on the cluster (SYSTEM_REDIS_CLUSTER=1):
each present member has `room:{<id>}:presence:<user>`, expiring exactly at their expiry in `room:{<id>}:members`;
heartbeats push it back, it expires on its own, and it goes with the member however they go."""
import time

from conftest import admin, register, wait_until


def key(room, user):
    return f"room:{{{room}}}:presence:{user}"


def deadline(r, room, user):
    """(PEXPIRETIME of the member's key, their score in :members), both epoch ms."""
    score = r.zscore(f"room:{{{room}}}:members", user)
    return r.pexpiretime(key(room, user)), None if score is None else int(score)


def switch(worker, user, prev, nxt):
    r = worker.call("POST", "/api/presence/switch", user=user,
                    json={"previousRoomId": prev, "nextRoomId": nxt, "username": user.name})
    assert r.status_code == 200, r.text


def test_a_join_sets_the_key_a_heartbeat_pushes_it_back_a_leave_deletes_it(cluster):
    a, b, r = cluster.a, cluster.b, cluster.redis()
    alice = register(a, "alice")
    switch(a, alice, None, "general")
    assert r.get(key("general", "alice")) == "1"
    ttl = r.pttl(key("general", "alice"))
    assert 0 < ttl <= 90_000, ttl  # CHAT_PRESENCE_TTL, 90 s
    first, score = deadline(r, "general", "alice")
    assert first == score, "the key expires at the member's expiry"

    time.sleep(0.3)
    assert b.call("POST", "/api/presence/heartbeat", user=alice, json={"roomId": "general"}).status_code == 200
    pushed, score = deadline(r, "general", "alice")
    assert pushed == score and pushed >= first + 250, (first, pushed)

    switch(b, alice, "general", "random")
    assert not r.exists(key("general", "alice"))
    assert 0 < r.pttl(key("random", "alice")) <= 90_000
    switch(a, alice, "random", None)
    assert not r.exists(key("random", "alice"))


def test_an_abandoned_key_expires_on_its_own_and_the_sweeper_still_announces_once(make_cluster):
    c = make_cluster(2, CHAT_PRESENCE_TTL=2, SWEEP_INTERVAL_MS=250)
    r = c.redis()
    bob = register(c.a, "bobby")
    switch(c.a, bob, None, "general")
    assert 0 < r.pttl(key("general", "bobby")) <= 2_000
    # No heartbeat: the key goes by itself at the deadline, and the sweeper takes the member off the sorted sets.
    assert wait_until(lambda: not r.exists(key("general", "bobby")), 5, 0.05)
    assert wait_until(lambda: r.zscore("room:{general}:members", "bobby") is None, 5, 0.1)

    def announced():
        return sum(float(line.split()[-1]) for w in c.workers for line in w.metrics().splitlines()
                   if line.startswith("presence_leaves_announced_total"))
    assert wait_until(lambda: announced() == 1, 5, 0.1)
    time.sleep(1)
    assert announced() == 1, "announced exactly once"


def test_a_room_deletion_a_private_leave_and_a_support_close_remove_the_keys(cluster):
    a, b, r = cluster.a, cluster.b, cluster.redis()
    boss = admin(a)
    alice, bob, carol = (register(a, n) for n in ["alice", "bobby", "carol"])
    assert a.call("POST", "/api/rooms", user=boss, json={"name": "keys-room", "type": "public"}).status_code == 201
    for user in (alice, bob):
        switch(a, user, None, "keys-room")
    assert r.exists(key("keys-room", "alice"), key("keys-room", "bobby")) == 2
    assert b.call("DELETE", "/api/rooms/keys-room", user=boss).json() == {"success": True}
    assert r.exists(key("keys-room", "alice"), key("keys-room", "bobby")) == 0

    dm = a.call("POST", "/api/rooms", user=alice, json={"name": "trio", "type": "private", "members": ["bobby", "carol"]}).json()["room"]
    for user in (alice, bob, carol):
        switch(a, user, None, dm["id"])
    assert b.call("DELETE", f"/api/rooms/{dm['id']}", user=carol).status_code == 200  # carol leaves; two remain
    assert not r.exists(key(dm["id"], "carol")) and r.exists(key(dm["id"], "alice"), key(dm["id"], "bobby")) == 2
    assert b.call("DELETE", f"/api/rooms/{dm['id']}", user=bob).status_code == 200  # fewer than two: the room goes
    assert r.exists(key(dm["id"], "alice"), key(dm["id"], "bobby")) == 0

    agent = register(a, "agent1")
    assert a.call("PUT", "/api/admin/agents/agent1", user=boss).status_code == 200
    assert a.call("POST", "/support/K-1/join", user=carol, json={}).status_code == 200
    assert b.call("POST", "/support/K-1/join", user=agent, json={"role": "agent"}).status_code == 200
    assert 0 < r.pttl(key("ticket_K-1", "carol")) <= 45_000  # SUPPORT_PRESENCE_TTL, 45 s
    assert b.call("POST", "/support/K-1/close", user=agent, json={}).json()["closed"] is True
    assert r.exists(key("ticket_K-1", "carol"), key("ticket_K-1", "agent1")) == 0
