"""Issue 28, access on live sockets (docs/security.md), two workers on one Redis (or the cluster): an old signature
gives nothing back once its grant is gone, and a logout or logout-all ends the user's governed subscriptions and
sign-ins on every worker, Pusher and ryOS sockets alike."""

from conftest import login, register
from test_ryos_ws import RyWS, ticket_for
from test_security_model import (PUSHER, REVOKED, SECRET, SUB_ERROR, SUCCEEDED, Socket, channel_auth, data_of, flush,
                                 join_channel)

KEY = PUSHER["PUSHER_KEY"]
NOT_CURRENT = {"type": "AuthError", "error": "Signature not current: ask /pusher/auth for a new one", "status": 401}


def grant_key(sock):
    return f"pusher:grants:{{{sock.id}}}"


def signin(sock, worker, user):
    """Signs `sock` in as `user` through this service's /pusher/user-auth."""
    r = worker.call("POST", "/pusher/user-auth", user=user, data={"socket_id": sock.id})
    assert r.status_code == 200, r.text
    sock.send("pusher:signin", {"auth": r.json()["auth"], "user_data": r.json()["user_data"]})
    sock.wait_for(lambda m: m["event"] == "pusher:signin_success")


def close_code(sock, timeout=5.0):
    import websocket
    sock.ws.settimeout(timeout)
    while True:
        try:
            opcode, frame = sock.ws.recv_data_frame(True)
        except websocket.WebSocketConnectionClosedException:
            return None
        if opcode == websocket.ABNF.OPCODE_CLOSE:
            return int.from_bytes(frame.data[:2], "big")


def test_an_old_signature_is_refused_once_its_grant_is_gone_and_the_room_stays_closed(make_cluster):
    """Auth and REST on worker a, carol's socket on worker b. carol signs on her open socket while a member, leaves
    the room, and the grant record goes (deleted here; it lapses after 600 s): her old signature, still correctly
    signed for that socket, is refused and the room's next message does not reach her."""
    c = make_cluster(2, **PUSHER, MESSAGE_RATE_LIMIT=100000)
    a, b = c.a, c.b
    r = c.redis()
    alice, bob, carol = (register(a, n) for n in ["alice", "bobby", "carol"])
    room = a.call("POST", "/api/rooms", user=alice, json={"name": "trio", "type": "private", "members": ["bobby", "carol"]})
    rid = room.json()["room"]["id"]
    priv = f"private-room-{rid}"
    alice_ws, carol_ws = Socket(a), Socket(b)
    join_channel(a, alice, alice_ws, priv)
    assert carol_ws.subscribe("sentinel")["event"] == SUCCEEDED

    # While a member, carol gets a signature on her open socket, and keeps it.
    signed = channel_auth(a, carol, carol_ws, priv)
    assert signed.status_code == 200, signed.text
    old = signed.json()["auth"]
    # With the grant deleted but still a member, the signature alone gives nothing: the client signs again.
    r.delete(grant_key(carol_ws))
    reply = carol_ws.subscribe(priv, old)
    assert reply["event"] == SUB_ERROR and data_of(reply) == NOT_CURRENT, reply
    again = channel_auth(b, carol, carol_ws, priv).json()["auth"]
    assert carol_ws.subscribe(priv, again)["event"] == SUCCEEDED
    carol_ws.send("pusher:unsubscribe", {"channel": priv})

    # She leaves: a fresh signature is refused; the grant record goes too.
    assert a.call("DELETE", f"/api/rooms/{rid}", user=carol).status_code == 200
    for w in (a, b):
        assert channel_auth(w, carol, carol_ws, priv).status_code == 403
    r.delete(grant_key(carol_ws))
    assert not r.exists(grant_key(carol_ws))
    # The old signature is refused, and the room's next message does not reach her.
    flush(carol_ws, r)
    reply = carol_ws.subscribe(priv, old)
    assert reply["event"] == SUB_ERROR and data_of(reply)["status"] in (401, 403), reply
    assert a.call("POST", f"/api/rooms/{rid}/messages", user=alice, json={"content": "after"}).status_code == 201
    alice_ws.wait_for(lambda m: m["event"] == "room-message" and data_of(m)["message"]["content"] == "after")
    assert [m for m in flush(carol_ws, r) if m.get("channel") == priv] == []
    alice_ws.close()
    carol_ws.close()


def test_a_logout_ends_the_users_live_subscriptions_and_sign_ins_on_every_worker(make_cluster):
    """alice logs out through worker a; her sockets are on worker b: the one holding private-chats-alice gets
    AccessRevoked and nothing more on it (its public channel stays), the one signed in as her is closed (4009), her
    old signature is refused; bob, on the same worker, keeps everything."""
    c = make_cluster(2, **PUSHER, MESSAGE_RATE_LIMIT=100000)
    a, b = c.a, c.b
    r = c.redis()
    alice, bob = register(a, "alice"), register(a, "bobby")
    own, bobs = "private-chats-alice", "private-chats-bobby"
    alice_ws, signed_ws, bob_ws = Socket(b), Socket(b), Socket(b)
    signed, _ = join_channel(a, alice, alice_ws, own)
    assert alice_ws.subscribe("room-general")["event"] == SUCCEEDED
    assert alice_ws.subscribe("sentinel")["event"] == SUCCEEDED
    signin(signed_ws, a, alice)
    join_channel(a, bob, bob_ws, bobs)
    # While signed in, an event on her channel reaches her.
    dm = a.call("POST", "/api/rooms", user=bob, json={"name": "dm1", "type": "private", "members": ["alice"]})
    assert dm.status_code == 201, dm.text
    alice_ws.wait_for(lambda m: m["event"] == "room-updated" and m.get("channel") == own)

    assert a.call("POST", "/api/auth/logout", user=alice).status_code == 200
    err = alice_ws.wait_for(lambda m: m["event"] == SUB_ERROR and m.get("channel") == own, 5)
    assert data_of(err) == REVOKED, err
    assert close_code(signed_ws) == 4009
    # Nothing more on her channel; her public channel and bob's channel go on.
    flush(alice_ws, r)
    dm = a.call("POST", "/api/rooms", user=bob, json={"name": "dm2", "type": "private", "members": ["alice"]})
    assert dm.status_code == 201, dm.text
    bob_ws.wait_for(lambda m: m["event"] == "room-updated" and m.get("channel") == bobs
                    and data_of(m)["room"]["id"] == dm.json()["room"]["id"])
    assert a.call("POST", "/api/rooms/general/messages", user=bob, json={"content": "still here"}).status_code == 201
    alice_ws.wait_for(lambda m: m["event"] == "room-message" and m.get("channel") == "room-general")
    assert [m for m in flush(alice_ws, r) if m.get("channel") == own] == []
    assert [m for m in bob_ws.take_all() if m["event"] == SUB_ERROR] == []
    # The old signature, correctly signed for her socket, gives nothing back.
    reply = alice_ws.subscribe(own, signed["auth"])
    assert reply["event"] == SUB_ERROR and data_of(reply) == NOT_CURRENT, reply
    # Signed in again, she signs again and gets it back.
    again = login(a, "alice", "password123").json()["token"]
    alice.token = again
    join_channel(b, alice, alice_ws, own)
    for sock in (alice_ws, signed_ws, bob_ws):
        sock.close()


def test_logout_all_ends_ryos_sockets_subscriptions_across_workers(make_cluster):
    """ryOS's /ws sockets ride on their ticket's user: logout-all (worker a) ends their governed subscriptions on
    worker b (subscription_error) and their ticket user, so a governed subscribe after it is refused; public channels
    stay."""
    c = make_cluster(2, **PUSHER)
    a, b = c.a, c.b
    alice = register(a, "alice")
    own = "private-chats-alice"
    ws = RyWS(b, ticket_for(a, alice))
    ws.subscribe(own)
    ws.subscribe("room-general")
    assert [f for f in ws.backlog if f.get("type") == "subscription_error"] == []
    assert a.call("POST", "/api/auth/logout-all", user=alice).status_code == 200
    err = ws.wait_for(lambda f: f.get("type") == "subscription_error" and f.get("channel") == own)
    assert err == {"type": "subscription_error", "channel": own}
    ws.subscribe(own)
    ws.wait_for(lambda f: f.get("type") == "subscription_error" and f.get("channel") == own)
    bob = register(a, "bobby")
    assert a.call("POST", "/api/rooms/general/messages", user=bob, json={"content": "public"}).status_code == 201
    ws.wait_for(lambda f: f.get("type") == "event" and f.get("channel") == "room-general")
    ws.ws.close()
