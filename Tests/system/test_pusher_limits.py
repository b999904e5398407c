"""Pusher's limits (#28), each refused with the codes and messages Pusher-compatible servers send, seen by real
clients: raw WebSockets (websocket-client), the `pusher` library from PyPI (HTTP API, channel and user signatures),
two workers on one Redis or a Redis Cluster.

- 10 KB of event data (PUSHER_MAX_EVENT_BYTES): client events (pusher:error 4301) and the HTTP API (413);
- 200-character event names (PUSHER_MAX_EVENT_NAME): 4301 / 400;
- 164-character channel names (PUSHER_MAX_CHANNEL_NAME), #server-to-user-<id> included: subscribe, /pusher/auth,
  HTTP API, sign-in;
- 100 members per app presence channel (PUSHER_MAX_PRESENCE_MEMBERS): a new member beyond gets
  pusher:subscription_error 4100; 1 KB of user_info (PUSHER_MAX_USER_INFO_BYTES): 4301;
- user_info kept as the app signed it, in subscription_succeeded and member_added;
- room-backed presence channels (presence-room-<id>) larger than the cap: at most the cap's members and the true count.
"""
import hashlib
import hmac
import json
import time

import pusher
import pusher.http
import pytest
import requests
import websocket

from conftest import Cluster, RedisProcess, Worker, default_settings, register

KEY, SECRET, APP = "limits-key", "limits-secret-123", "4343"


def settings(**extra):
    return dict(PUSHER_KEY=KEY, PUSHER_SECRET=SECRET, PUSHER_APP_ID=APP, CHAT_PRESENCE_TTL=3, SWEEP_INTERVAL_MS=250,
                MAX_CONNECTIONS_PER_ADDRESS=1000, **extra)


@pytest.fixture
def rt(make_cluster):
    return make_cluster(2, **settings())


def port_of(worker):
    return int(worker.base.rsplit(":", 1)[1])


def backend_for(worker):
    return pusher.Pusher(app_id=APP, key=KEY, secret=SECRET, host="127.0.0.1", port=port_of(worker), ssl=False)


def raw_socket(worker):
    ws = websocket.create_connection(f"ws://127.0.0.1:{port_of(worker)}/app/{KEY}?protocol=7&client=js&version=8.0", timeout=5)
    hello = json.loads(ws.recv())
    assert hello["event"] == "pusher:connection_established", hello
    return ws, json.loads(hello["data"])["socket_id"]


def recv(ws, timeout=5):
    ws.settimeout(timeout)
    return json.loads(ws.recv())


def silent(ws, seconds=0.7):
    """Nothing more arrives on `ws` within `seconds`."""
    ws.settimeout(seconds)
    with pytest.raises(websocket.WebSocketTimeoutException):
        got = ws.recv()
        raise AssertionError(f"unexpected message {got}")


def data_of(message):
    return message["data"] if isinstance(message["data"], dict) else json.loads(message["data"])


def subscribe_private(ws, socket_id, channel):
    auth = KEY + ":" + hmac.new(SECRET.encode(), f"{socket_id}:{channel}".encode(), hashlib.sha256).hexdigest()
    ws.send(json.dumps({"event": "pusher:subscribe", "data": {"channel": channel, "auth": auth}}))
    return recv(ws)


def subscribe_presence(ws, socket_id, channel, backend, user_id, user_info=None):
    """Subscribes with channel_data signed by the official library (the app's server), as pusher-js sends it."""
    custom = {"user_id": user_id}
    if user_info is not None:
        custom["user_info"] = user_info
    signed = backend.authenticate(channel=channel, socket_id=socket_id, custom_data=custom)
    ws.send(json.dumps({"event": "pusher:subscribe",
                        "data": {"channel": channel, "auth": signed["auth"], "channel_data": signed["channel_data"]}}))
    while True:
        # A member event published just before the subscription may reach the socket once it is in the channel.
        message = recv(ws)
        if not message["event"].startswith("pusher_internal:member_"):
            return message


def api_post(worker, path, params):
    """A request signed by the `pusher` library but not checked by it first (it refuses long names itself)."""
    backend = backend_for(worker)
    request = pusher.http.Request(backend._pusher_client, "POST", f"/apps/{APP}/{path}", params)
    return requests.post(request.url, data=request.body, headers=request.headers, timeout=10)


def outbox_entries(r):
    """Every entry of every webhook outbox stream, as text."""
    out = []
    for key in r.keys("webhooks:*"):
        if r.type(key) in ("stream", b"stream"):
            out += [json.dumps(fields, default=str) for _, fields in r.xrange(key)]
    return out


# -- event data and names ------------------------------------------------------------------------------------------

def test_a_30_kb_client_event_is_refused_and_neither_delivered_nor_written_to_the_webhook_outbox(make_cluster):
    rt = make_cluster(2, **settings(WEBHOOK_URLS="http://127.0.0.1:9/hook|client_event"))
    sender, sid = raw_socket(rt.a)
    receiver, rid = raw_socket(rt.b)
    channel = "private-limits-" + str(int(time.time() * 1000))
    for ws, socket_id in ((sender, sid), (receiver, rid)):
        assert subscribe_private(ws, socket_id, channel)["event"] == "pusher_internal:subscription_succeeded"
    sender.send(json.dumps({"event": "client-big", "channel": channel, "data": {"blob": "x" * 30 * 1024}}))
    error = recv(sender)
    assert error == {"event": "pusher:error",
                     "data": {"code": 4301, "message": "The event data should be less than 10 KB."}}, error
    silent(receiver)
    # Exactly 10 KB of data (as it goes out: the JSON text of the object) is delivered.
    blob = "y" * (10 * 1024 - len('{"blob":""}'))
    sender.send(json.dumps({"event": "client-fits", "channel": channel, "data": {"blob": blob}}))
    got = recv(receiver)
    assert got["event"] == "client-fits" and json.loads(got["data"]) == {"blob": blob}
    # A string payload one byte over is refused too.
    sender.send(json.dumps({"event": "client-big", "channel": channel, "data": "z" * (10 * 1024 + 1)}))
    assert recv(sender)["data"]["code"] == 4301
    silent(receiver)
    # The outbox holds the delivered event, not the refused ones.
    r = rt.redis()
    entries = outbox_entries(r)
    assert any("client-fits" in e for e in entries), entries
    assert not any("client-big" in e for e in entries)
    sender.close(); receiver.close()


def test_a_client_event_name_over_200_characters_is_refused(rt):
    sender, sid = raw_socket(rt.a)
    receiver, rid = raw_socket(rt.b)
    channel = "private-names-" + str(int(time.time() * 1000))
    for ws, socket_id in ((sender, sid), (receiver, rid)):
        assert subscribe_private(ws, socket_id, channel)["event"] == "pusher_internal:subscription_succeeded"
    long_name = "client-" + "n" * 194
    assert len(long_name) == 201
    sender.send(json.dumps({"event": long_name, "channel": channel, "data": {}}))
    assert recv(sender) == {"event": "pusher:error",
                            "data": {"code": 4301, "message": "Event name is too long. Maximum allowed size is 200."}}
    silent(receiver)
    sender.send(json.dumps({"event": long_name[:200], "channel": channel, "data": {}}))
    assert recv(receiver)["event"] == long_name[:200]
    sender.close(); receiver.close()


def test_the_http_api_refuses_events_over_10_kb_with_413_and_names_over_200_characters_with_400(rt):
    ws, _ = raw_socket(rt.a)
    ws.send(json.dumps({"event": "pusher:subscribe", "data": {"channel": "api-limits"}}))
    assert recv(ws)["event"] == "pusher_internal:subscription_succeeded"
    backend = backend_for(rt.b)
    # The library lets 20 KB through (it checks 30 KB); the server refuses it with Pusher's 413.
    with pytest.raises(pusher.errors.PusherBadStatus) as refused:
        backend.trigger("api-limits", "big", "d" * 20 * 1024)
    assert "413" in str(refused.value) and "The event data should be less than 10 KB." in str(refused.value)
    r = api_post(rt.b, "events", {"name": "big", "channel": "api-limits", "data": "d" * (10 * 1024 + 1)})
    assert r.status_code == 413 and r.json()["error"] == "The event data should be less than 10 KB.", r.text
    r = api_post(rt.b, "batch_events", {"batch": [{"name": "ok", "channel": "api-limits", "data": "1"},
                                                  {"name": "big", "channel": "api-limits", "data": "d" * 10241}]})
    assert r.status_code == 413, r.text
    r = api_post(rt.b, "events", {"name": "n" * 201, "channel": "api-limits", "data": "{}"})
    assert r.status_code == 400 and r.json()["error"] == "Event name is too long. Maximum allowed size is 200.", r.text
    r = api_post(rt.b, "batch_events", {"batch": [{"name": "n" * 201, "channel": "api-limits", "data": "{}"}]})
    assert r.status_code == 400, r.text
    silent(ws)  # all or nothing: the batch's first event did not go either
    # At the limits, delivered.
    backend.trigger("api-limits", "n" * 200, "d" * 10 * 1024)
    event = recv(ws)
    assert event["event"] == "n" * 200 and len(event["data"]) == 10 * 1024
    ws.close()


# -- channel names --------------------------------------------------------------------------------------------------

def test_channel_names_over_164_characters_are_refused_everywhere(rt):
    a, b = rt.a, rt.b
    backend = backend_for(b)
    long_channel = "c" * 165
    fits = "c" * 164
    ws, sid = raw_socket(a)
    ws.send(json.dumps({"event": "pusher:subscribe", "data": {"channel": long_channel}}))
    refused = recv(ws)
    assert refused == {"event": "pusher:subscription_error", "channel": long_channel, "data": {
        "type": "LimitReached", "error": "The channel name is longer than the allowed 164 characters.", "status": 4009}}, refused
    ws.send(json.dumps({"event": "pusher:subscribe", "data": {"channel": fits}}))
    assert recv(ws) == {"event": "pusher_internal:subscription_succeeded", "channel": fits, "data": "{}"}
    # Signed channels too: a private one refused before its signature is even looked at.
    private = "private-" + "p" * 157
    assert subscribe_private(ws, sid, private)["data"]["status"] == 4009
    # /pusher/auth.
    alice = register(a, "alice")
    r = a.call("POST", "/pusher/auth", user=alice, data={"socket_id": sid, "channel_name": "private-room-" + "r" * 152})
    assert r.status_code == 400 and "164" in r.json()["error"], r.text
    # The HTTP API (the library allows 200).
    with pytest.raises(pusher.errors.PusherBadRequest) as bad:
        backend.trigger(long_channel, "e", "{}")
    assert "longer than the allowed 164 characters" in str(bad.value)
    r = backend_for(b)._pusher_client.channel_info.make_request(long_channel, [])
    answer = requests.get(r.url, timeout=10)
    assert answer.status_code == 400, answer.text
    backend.trigger(fits, "e", "{}")
    assert recv(ws)["channel"] == fits
    # #server-to-user-<id> is a channel name like any other: a user id that would make it longer cannot sign in,
    # and send_to_user for it is refused.
    prefix = "#server-to-user-"
    too_long_user, fitting_user = "u" * (165 - len(prefix)), "u" * (164 - len(prefix))
    bad_ws, bad_sid = raw_socket(a)
    auth = backend.authenticate_user(bad_sid, {"id": too_long_user})
    bad_ws.send(json.dumps({"event": "pusher:signin", "data": auth}))
    assert recv(bad_ws)["data"]["code"] == 4009
    with pytest.raises(pusher.errors.PusherBadRequest):
        backend.send_to_user(too_long_user, "notice", {})
    good_ws, good_sid = raw_socket(a)
    good_ws.send(json.dumps({"event": "pusher:signin", "data": backend.authenticate_user(good_sid, {"id": fitting_user})}))
    assert recv(good_ws)["event"] == "pusher:signin_success"
    good_ws.send(json.dumps({"event": "pusher:subscribe", "data": {"channel": prefix + fitting_user}}))
    assert recv(good_ws)["event"] == "pusher_internal:subscription_succeeded"
    backend.send_to_user(fitting_user, "notice", {"n": 1})
    assert recv(good_ws)["event"] == "notice"
    for s in (ws, bad_ws, good_ws):
        s.close()


def test_the_limits_are_settings(make_cluster):
    """Smaller limits than Pusher's, set by PUSHER_MAX_EVENT_BYTES, PUSHER_MAX_EVENT_NAME and PUSHER_MAX_CHANNEL_NAME."""
    rt = make_cluster(1, **settings(PUSHER_MAX_EVENT_BYTES=2048, PUSHER_MAX_EVENT_NAME=50, PUSHER_MAX_CHANNEL_NAME=64))
    ws, sid = raw_socket(rt.a)
    ws.send(json.dumps({"event": "pusher:subscribe", "data": {"channel": "c" * 65}}))
    assert data_of(recv(ws))["error"] == "The channel name is longer than the allowed 64 characters."
    channel = "private-small"
    assert subscribe_private(ws, sid, channel)["event"] == "pusher_internal:subscription_succeeded"
    ws.send(json.dumps({"event": "client-" + "n" * 44, "channel": channel, "data": {}}))
    assert recv(ws)["data"] == {"code": 4301, "message": "Event name is too long. Maximum allowed size is 50."}
    ws.send(json.dumps({"event": "client-x", "channel": channel, "data": "d" * 2049}))
    assert recv(ws)["data"] == {"code": 4301, "message": "The event data should be less than 2 KB."}
    r = api_post(rt.a, "events", {"name": "e", "channel": channel, "data": "d" * 2049})
    assert r.status_code == 413, r.text
    ws.close()


# -- presence --------------------------------------------------------------------------------------------------------

def test_the_101st_member_of_an_app_presence_channel_is_refused_and_members_already_there_get_in(rt):
    a, b = rt.a, rt.b
    backend = backend_for(a)
    channel = "presence-lobby-" + str(int(time.time() * 1000))
    sockets = []
    for i in range(100):
        ws, sid = raw_socket((a, b)[i % 2])
        ok = subscribe_presence(ws, sid, channel, backend, f"m{i}", {"n": i})
        assert ok["event"] == "pusher_internal:subscription_succeeded", ok
        sockets.append(ws)
    presence = data_of(ok)["presence"]
    assert presence["count"] == 100 and len(presence["ids"]) == 100
    # The 101st new member, on either worker: Pusher's over-capacity refusal, and nobody hears of them.
    late, late_sid = raw_socket(b)
    refused = subscribe_presence(late, late_sid, channel, backend, "m100", {"n": 100})
    assert refused == {"event": "pusher:subscription_error", "channel": channel, "data": {
        "type": "LimitReached", "error": "The maximum members per presence channel limit was reached", "status": 4100}}, refused
    assert backend.channel_info(channel, ["user_count"])["user_count"] == 100
    assert {"id": "m100"} not in backend.users_info(channel)["users"]
    # A member already there comes in with another connection (a reconnect, a second tab).
    again, again_sid = raw_socket(b)
    ok = subscribe_presence(again, again_sid, channel, backend, "m0", {"n": 0})
    assert ok["event"] == "pusher_internal:subscription_succeeded" and data_of(ok)["presence"]["count"] == 100
    # Once someone leaves, the newcomer gets in.
    sockets[99].send(json.dumps({"event": "pusher:unsubscribe", "data": {"channel": channel}}))
    deadline = time.monotonic() + 5
    while backend.channel_info(channel, ["user_count"])["user_count"] != 99:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    ok = subscribe_presence(late, late_sid, channel, backend, "m100", {"n": 100})
    assert ok["event"] == "pusher_internal:subscription_succeeded", ok
    assert data_of(ok)["presence"]["count"] == 100 and data_of(ok)["presence"]["hash"]["m100"] == {"n": 100}
    for ws in sockets + [late, again]:
        ws.close()


def test_a_user_info_over_1_kb_is_refused(rt):
    backend = backend_for(rt.a)
    channel = "presence-big-info"
    ws, sid = raw_socket(rt.a)
    refused = subscribe_presence(ws, sid, channel, backend, "big", {"bio": "b" * 2048})
    assert refused == {"event": "pusher:subscription_error", "channel": channel, "data": {
        "type": "LimitReached", "error": "The maximum size for a channel member is 1 KB.", "status": 4301}}, refused
    assert backend.channel_info(channel, ["user_count"])["user_count"] == 0
    info = {"bio": "b" * (1024 - len('{"bio":""}'))}  # exactly 1 KB of JSON
    ok = subscribe_presence(ws, sid, channel, backend, "big", info)
    assert ok["event"] == "pusher_internal:subscription_succeeded", ok
    assert data_of(ok)["presence"]["hash"] == {"big": info}
    ws.close()


def test_app_signed_user_info_reaches_other_members_exactly(rt):
    """{"user_id":"u1","user_info":{"name":"A"}} signed by the app comes back as {"name":"A"}: in the next subscriber's
    presence.hash (on the other worker) and in member_added; this service's own /pusher/auth keeps {"username": …}."""
    a, b = rt.a, rt.b
    backend = backend_for(a)
    channel = "presence-team-" + str(int(time.time() * 1000))
    first, first_sid = raw_socket(a)
    ok = subscribe_presence(first, first_sid, channel, backend, "u1", {"name": "A"})
    assert data_of(ok)["presence"] == {"ids": ["u1"], "hash": {"u1": {"name": "A"}}, "count": 1}
    second, second_sid = raw_socket(b)
    info = {"name": "B", "avatar": {"url": "https://example.com/b.png", "size": 64}, "tags": ["x", 1, True, None]}
    ok = subscribe_presence(second, second_sid, channel, backend, "u2", info)
    presence = data_of(ok)["presence"]
    assert presence["hash"] == {"u1": {"name": "A"}, "u2": info} and presence["count"] == 2
    assert sorted(presence["ids"]) == ["u1", "u2"]
    added = recv(first)
    assert added["event"] == "pusher_internal:member_added" and data_of(added) == {"user_id": "u2", "user_info": info}
    # A numeric user_id is a string id (as Pusher sends it); no user_info at all reads as {"username": <id>}.
    third, third_sid = raw_socket(a)
    ok = subscribe_presence(third, third_sid, channel, backend, 7)
    assert data_of(ok)["presence"]["hash"]["7"] == {"username": "7"}
    assert data_of(recv(first)) == {"user_id": "7", "user_info": {"username": "7"}}
    # This service's own /pusher/auth signs {"username": <user>}, and that is what the others see.
    alice, bob = register(a, "alice"), register(a, "bobby")
    room_channel = "presence-room-general"
    joined = []
    for user, worker in ((alice, a), (bob, b)):
        ws, sid = raw_socket(worker)
        r = worker.call("POST", "/pusher/auth", user=user, data={"socket_id": sid, "channel_name": room_channel})
        assert json.loads(r.json()["channel_data"]) == {"user_id": user.name, "user_info": {"username": user.name}}
        ws.send(json.dumps({"event": "pusher:subscribe", "data": {"channel": room_channel, **r.json()}}))
        joined.append((ws, data_of(recv(ws))["presence"]))
    (ws1, _), (ws2, presence) = joined
    assert presence["hash"] == {"alice": {"username": "alice"}, "bobby": {"username": "bobby"}}
    assert data_of(recv(ws1)) == {"user_id": "bobby", "user_info": {"username": "bobby"}}
    for s in (first, second, third, ws1, ws2):
        s.close()


def fill_general(worker, n):
    """n users present in chat room general (room switches), in join order."""
    users = []
    for i in range(n):
        u = register(worker, f"crowd{i}")
        r = worker.call("POST", "/api/presence/switch", user=u, json={"nextRoomId": "general", "username": u.name})
        assert r.status_code == 200, r.text
        users.append(u.name)
    return users


def test_a_room_backed_presence_channel_larger_than_the_cap_lists_the_cap_and_the_true_count(make_cluster):
    """presence-room-<id> takes everyone (a chat room may have 100k members); its subscription_succeeded carries at
    most PUSHER_MAX_PRESENCE_MEMBERS members (the subscriber among them) and the true count, and the rest are paged
    over HTTP (GET /api/rooms/{id}/users?limit=&cursor=)."""
    env = settings(PUSHER_MAX_PRESENCE_MEMBERS=3)
    env["CHAT_PRESENCE_TTL"] = 60  # the crowd's room switches stay present for the whole test
    rt = make_cluster(2, **env)
    a, b = rt.a, rt.b
    crowd = fill_general(a, 5)
    alice = register(a, "alice")
    ws, sid = raw_socket(b)
    r = b.call("POST", "/pusher/auth", user=alice, data={"socket_id": sid, "channel_name": "presence-room-general"})
    ws.send(json.dumps({"event": "pusher:subscribe", "data": {"channel": "presence-room-general", **r.json()}}))
    ok = recv(ws)
    assert ok["event"] == "pusher_internal:subscription_succeeded", ok
    presence = data_of(ok)["presence"]
    assert presence["count"] == 6
    assert len(presence["ids"]) == 3 and "alice" in presence["ids"] and set(presence["ids"]) <= set(crowd) | {"alice"}
    assert presence["hash"] == {u: {"username": u} for u in presence["ids"]}
    # The rest, paged over HTTP.
    seen, cursor = [], None
    while True:
        page = a.call("GET", "/api/rooms/general/users?limit=2" + (f"&cursor={cursor}" if cursor else ""), user=alice).json()
        seen += [u["username"] for u in page["users"]]
        cursor = page["nextCursor"]
        if not cursor:
            break
    assert sorted(seen) == sorted(crowd + ["alice"])
    # An app channel with the same cap refuses its 4th member.
    backend = backend_for(a)
    for i in range(3):
        s, s_id = raw_socket(a)
        assert subscribe_presence(s, s_id, "presence-small", backend, f"s{i}")["event"] == "pusher_internal:subscription_succeeded"
    s, s_id = raw_socket(b)
    assert data_of(subscribe_presence(s, s_id, "presence-small", backend, "s3"))["status"] == 4100
    ws.close()


def test_redis_restart_resends_capped_presence(start_server):
    """After a Redis reconnect the hub sends presence again to presence sockets: the same cap, the true count, and the
    socket's own user listed. (One Redis kept across the restart, as ops/redis.conf's.)"""
    redis_proc = RedisProcess(persistent=True)
    redis_proc.start()
    try:
        env = dict(default_settings(redis_proc.url), **settings(PUSHER_MAX_PRESENCE_MEMBERS=3))
        env["CHAT_PRESENCE_TTL"] = 60
        rt = Cluster(redis_proc, [Worker(start_server(**env)) for _ in range(2)])
        a, b = rt.a, rt.b
        fill_general(a, 5)
        alice = register(a, "alice")
        ws, sid = raw_socket(b)
        r = b.call("POST", "/pusher/auth", user=alice, data={"socket_id": sid, "channel_name": "presence-room-general"})
        ws.send(json.dumps({"event": "pusher:subscribe", "data": {"channel": "presence-room-general", **r.json()}}))
        assert data_of(recv(ws))["presence"]["count"] == 6
        redis_proc.kill()
        time.sleep(0.5)
        redis_proc.start()
        deadline = time.monotonic() + 15
        while True:
            message = recv(ws, timeout=max(0.1, deadline - time.monotonic()))
            if message["event"] == "pusher_internal:subscription_succeeded":
                break
        presence = data_of(message)["presence"]
        assert presence["count"] == 6 and len(presence["ids"]) == 3 and "alice" in presence["ids"], presence
        ws.close()
    finally:
        redis_proc.cleanup()
