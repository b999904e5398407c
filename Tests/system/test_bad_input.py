"""Bad input against real workers: every field and path parameter gets oversized values and characters special to
Redis or to our key schema. Each must get a clear 4xx JSON error (never a 5xx, never a hang), the worker must stay
healthy, and Redis must hold no key outside docs/redis-keys.md afterwards."""
import json
import re
import socket
import urllib.parse

from conftest import admin, register
from test_chat_api import documented_patterns

HOSTILE = ["*", "?", "[", "]", "{", "}", ":", "a b", "a\r\nb", "a\nX-Injected: 1", "a\x00b", "ü", "../x", "%", "\\",
           "x" * 10_000, "{general}", "room:{x}", "a*", "ticket_{T}"]


def assert_clear_4xx(r, what):
    assert 400 <= r.status_code < 500, f"{what}: {r.status_code} {r.text[:200]}"
    body = r.json()
    assert isinstance(body.get("error"), str) and body["error"], f"{what}: {body}"


def assert_only_documented_keys(c):
    patterns = documented_patterns()
    stray = [k for k in c.redis().scan_iter(count=1000) if not any(p.match(k) for _, p in patterns)]
    assert stray == [], f"keys outside the documented schema: {stray[:10]}"


def raw_request(worker, data: bytes, timeout=2.0) -> bytes:
    """Sends raw bytes over one connection and returns whatever comes back before the server closes or goes quiet."""
    host, port = urllib.parse.urlsplit(worker.base).netloc.split(":")
    with socket.create_connection((host, int(port)), timeout=timeout) as s:
        s.sendall(data)
        out = b""
        try:
            while chunk := s.recv(65536):
                out += chunk
                if b"\r\n\r\n" in out and len(out) > 12:
                    head, _, rest = out.partition(b"\r\n\r\n")
                    length = [int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")]
                    if length and len(rest) >= length[0]:
                        break
        except (socket.timeout, ConnectionResetError):
            pass
        return out


def test_hostile_values_in_every_field_and_path(make_cluster):
    c = make_cluster(1, MESSAGE_RATE_LIMIT=100000, SEARCH_RATE_LIMIT=100000,
                     LOGIN_RATE_LIMIT=100000, LOGIN_USER_RATE_LIMIT=100000, LOGIN_ADDRESS_RATE_LIMIT=100000)
    a = c.a
    boss, alice = admin(a), register(a, "alice")
    keys_before = set(c.redis().keys("*"))
    checked = 0
    for bad in HOSTILE:
        q = urllib.parse.quote(bad, safe="")
        cases = [
            ("POST", "/api/auth/register", None, {"username": bad, "password": "password123"}),
            ("POST", "/api/auth/register", None, {"username": "zed", "password": bad if len(bad) < 8 else "x"}),
            ("POST", "/api/auth/login", None, {"username": bad, "password": "password123"}),
            ("POST", "/api/rooms", boss, {"name": bad, "type": "public"}),
            ("POST", "/api/rooms", alice, {"name": "dm", "type": "private", "members": [bad]}),
            ("POST", "/api/rooms", alice, {"name": "dm", "type": bad}),
            ("GET", f"/api/rooms/{q}", alice, None),
            ("DELETE", f"/api/rooms/{q}", boss, None),
            ("GET", f"/api/rooms/{q}/messages", alice, None),
            ("POST", f"/api/rooms/{q}/messages", alice, {"content": "hi"}),
            ("GET", f"/api/rooms/{q}/users", alice, None),
            ("POST", "/api/presence/switch", alice, {"username": "alice", "previousRoomId": None, "nextRoomId": bad}),
            ("POST", "/api/presence/switch", alice, {"username": "alice", "previousRoomId": bad, "nextRoomId": None}),
            ("POST", "/api/presence/switch", alice, {"username": bad, "nextRoomId": "general"}),
            ("POST", "/api/presence/heartbeat", alice, {"roomId": bad}),
            ("PUT", f"/api/admin/agents/{q}", boss, None),
            ("DELETE", f"/api/admin/agents/{q}", boss, None),
            ("POST", f"/support/{q}/join", alice, {}),
            ("POST", f"/support/{q}/metadata", boss, {"priority": "high"}),
            ("POST", "/support/T-1/metadata", boss, {"assignedAgentId": bad}),
            ("POST", "/support/T-1/metadata", boss, {"priority": bad}),
            ("POST", "/support/T-1/metadata", boss, {"status": bad}),
            ("POST", "/support/T-1/join", alice, {"role": bad}),
            ("GET", f"/support/{q}/members", alice, None),
            ("GET", f"/support/{q}/messages", alice, None),
            ("GET", f"/support/{q}/snapshot", alice, None),
            ("GET", f"/support/T-1/members?cursor={q}", boss, None),
            ("GET", f"/support/T-1/messages?after={q}", boss, None),
            ("GET", f"/api/rooms/general/messages?before={q}", alice, None),
            ("GET", f"/api/rooms/general/messages?limit={q}", alice, None),
            ("POST", "/pusher/auth", alice, {"socket_id": bad, "channel_name": "private-chats-alice"}),
            ("POST", "/pusher/auth", alice, {"socket_id": "1.2", "channel_name": bad}),
        ]
        for method, path, user, body in cases:
            r = a.call(method, path, user=user, json=body)
            if r.status_code == 201 and path == "/api/rooms" and body["type"] == "public":
                # A name like "a b" is a fine room name; its id is derived and must be a safe one.
                assert re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,63}", r.json()["room"]["id"]), r.text
                continue
            assert_clear_4xx(r, f"{method} {path[:60]} {json.dumps(body)[:80]}")
            checked += 1
        # A search for anything hostile is not an error: it finds nothing. A request line over 8 KiB is refused
        # before any route (414).
        r = a.call("GET", f"/api/users?search={q}", user=alice)
        if len(f"GET /api/users?search={q} HTTP/1.1") > 8192:
            assert r.status_code == 414 and r.json() == {"error": "URI too long"}
        else:
            assert r.status_code == 200 and r.json() == {"users": []}
    assert checked > 500
    # Refused requests created nothing but limiter windows (the one accepted room, "a b" → a-b, aside); every key
    # is documented, and the worker is healthy.
    new_keys = set(c.redis().keys("*")) - keys_before
    # (the accepted room's room-created is kept for recovery on chats-public: rec:{chats-public})
    assert all(k.startswith(("ratelimit:", "room:{a-b}:", "rooms:public", "rec:{chats-public}")) for k in new_keys), \
        sorted(new_keys)[:10]
    assert_only_documented_keys(c)
    assert a.call("GET", "/health").status_code == 200


def test_malformed_bodies(make_cluster):
    c = make_cluster(1)
    a = c.a
    alice = register(a, "alice")
    deep = "[" * 10_000 + "]" * 10_000
    nested_obj = '{"username":' * 5_000 + '"x"' + "}" * 5_000
    for raw, label in [
        (deep.encode(), "deeply nested array"),
        (nested_obj.encode(), "deeply nested object"),
        (b'{"username": "al\xffice", "password": "password123"}', "invalid UTF-8"),
        (b'{"username": "\\ud800", "password": "password123"}', "lone surrogate"),
        (b'{"username": "alice", "password": "password123"} trailing', "trailing garbage"),
        (b'\x00\x01\x02', "binary"),
        (b'{"username": "alice", "password": "password123", }', "trailing comma"),
        (b'NaN', "NaN"),
    ]:
        for path in ["/api/auth/register", "/api/auth/login"]:
            r = a.call("POST", path, data=raw, headers={"Content-Type": "application/json"})
            assert r.status_code == 400 and r.json() == {"error": "Invalid JSON body"}, (label, path, r.status_code, r.text[:100])
        r = a.call("POST", "/api/presence/switch", user=alice, data=raw, headers={"Content-Type": "application/json"})
        assert r.status_code == 400, (label, r.status_code)
    # Wrong types in every position are 400s naming the field.
    for body in [{"username": ["alice"], "password": "password123"}, {"username": {"a": 1}, "password": "password123"},
                 {"username": "alice", "password": 12345678}, [], "text", 5, None]:
        r = a.call("POST", "/api/auth/login", json=body)
        assert r.status_code == 400, (body, r.status_code, r.text)
    # Oversized: 413 whatever the route.
    big = b'{"content": "' + b"x" * (70 * 1024) + b'"}'
    for path in ["/api/auth/register", "/api/rooms/general/messages", "/support/T-9/messages"]:
        r = a.call("POST", path, user=alice, data=big, headers={"Content-Type": "application/json"})
        assert r.status_code == 413, (path, r.status_code)
    assert a.call("GET", "/health").status_code == 200


def test_huge_headers_and_garbage_requests(make_cluster):
    c = make_cluster(1)
    a = c.a
    alice = register(a, "alice")
    # A 100 KB header: 431 in JSON (MAX_HEADER_BYTES, 32 KiB by default), never a 5xx or a crash.
    r = a.call("GET", "/health", headers={"X-Big": "x" * 100_000})
    assert r.status_code == 431 and r.json() == {"error": "Request header fields too large"}
    # Huge credentials: a clean 401/400, not a Redis key lookup of a 10 KB name.
    r = a.call("POST", "/api/presence/heartbeat", json={},
               headers={"Authorization": "Bearer " + "a" * 10_000, "X-Username": "alice"})
    assert r.status_code == 401 and r.json() == {"error": "Invalid token"}
    r = a.call("POST", "/api/presence/heartbeat", json={},
               headers={"Authorization": f"Bearer {alice.token}", "X-Username": "x" * 10_000})
    assert r.status_code == 401
    # Not HTTP at all, then a request line with a NUL: the worker answers 4xx or closes, and keeps serving.
    for junk in [b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 64, b"GET /he\x00alth HTTP/1.1\r\nHost: x\r\n\r\n",
                 b"GARBAGE\r\n\r\n", b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n"]:
        out = raw_request(a, junk)
        assert not out.startswith(b"HTTP/1.1 5"), out[:100]
    assert a.call("GET", "/health").status_code == 200
    assert_only_documented_keys(c)


def test_edge_values_schemathesis_found(make_cluster):
    """Edge values the contract fuzzer (ops/schemathesis) found; each once gave a 500 or a wrong answer."""
    c = make_cluster(1)
    w = c.a
    alice, boss = register(w, "alice"), admin(w)
    # Cursors at the ends of the id space: empty pages, not Redis's "invalid interval" as a 500.
    assert w.call("GET", "/api/rooms/general/messages?before=0-0").json() == {"messages": []}
    assert w.call("POST", "/support/t1/join", user=alice, json={}).status_code == 200
    top = "18446744073709551615-18446744073709551615"
    r = w.call("GET", f"/support/t1/messages?after={top}", user=alice)
    assert r.status_code == 200 and r.json() == {"messages": []}, r.text
    # Path parameters are percent-decoded; a broken escape is an invalid id.
    assert w.call("GET", "/api/rooms/gen%65ral").json()["room"]["id"] == "general"
    assert w.call("POST", "/support/t%31/heartbeat", user=alice).status_code == 200
    r = w.call("GET", "/api/rooms/gen%zzral")
    assert r.status_code == 400 and r.json() == {"error": "Invalid room ID format"}
    # Chat rooms cannot take a support room's id (ticket_<id>), so the two never share a Redis hash.
    r = w.call("POST", "/api/rooms", user=boss, json={"name": "ticket_t3", "type": "public"})
    assert r.status_code == 400 and "reserved" in r.json()["error"]
    # ... nor read one through the chat routes (issue 14, finding 10).
    r = w.call("GET", "/api/rooms/ticket_t1")
    assert r.status_code == 400 and r.json() == {"error": "Room IDs starting with ticket_ belong to support rooms"}
    # Usernames are ASCII before they are lowercased (the Kelvin sign lowercases to "k").
    r = w.call("POST", "/api/auth/register", json={"username": "\u212aelvin", "password": "password123"})
    assert r.status_code == 400
    assert c.redis().exists("user:{kelvin}") == 0
    # Lengths count Unicode scalars, as JSON Schema does: 8 scalars that are 4 characters make a valid password.
    r = w.call("POST", "/api/auth/register", json={"username": "bobby", "password": "e\u0301" * 4})
    assert r.status_code == 201, r.text
    assert w.call("POST", "/api/auth/register", json={"username": "carol", "password": "e\u0301" * 65}).status_code == 400
    # socket_id digits are ASCII digits only.
    r = w.call("POST", "/pusher/auth", user=alice, json={"socket_id": "\u0661\u0662.\u00bd", "channel_name": "private-chats-alice"})
    assert r.status_code == 400, r.text
