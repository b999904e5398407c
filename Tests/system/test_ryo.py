"""POST /api/ai/ryo-reply: a real local chat-completions server, the per-user sliding-window limiter."""
import http.server
import json
import re
import threading
import time

import pytest
import requests

from conftest import Subscription, register, free_port


class FakeCompletions:
    """A real HTTP server speaking the chat-completions format; records what it receives."""

    def __init__(self):
        self.mode = "ok"
        self.reply = "  hey alice, not much\x07 here  "
        self.requests = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                outer.requests.append({"path": self.path, "headers": dict(self.headers), "body": json.loads(body)})
                if outer.mode == "500":
                    return self._send(500, b'{"error":{"message":"boom"}}')
                if outer.mode == "slow":
                    time.sleep(3)
                    return self._send(200, b"{}")
                if outer.mode == "malformed":
                    return self._send(200, b'{"choices": "nope"}')
                if outer.mode == "empty":
                    return self._send(200, json.dumps({"choices": [{"message": {"role": "assistant", "content": " \n "}}]}).encode())
                payload = {"id": "cmpl-1", "object": "chat.completion", "model": outer.requests[-1]["body"].get("model"),
                           "choices": [{"index": 0, "message": {"role": "assistant", "content": outer.reply}, "finish_reason": "stop"}]}
                self._send(200, json.dumps(payload).encode())

            def _send(self, status, data):
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.port = free_port()
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}/v1"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fake_ai():
    f = FakeCompletions()
    yield f
    f.close()


def ryo(worker, user, room="general", prompt="what's up?", **extra):
    body = {"roomId": room, "prompt": prompt}
    body.update(extra)
    return worker.call("POST", "/api/ai/ryo-reply", user=user, json=body)


def test_real_provider_request_storage_and_broadcast(make_cluster, fake_ai):
    c = make_cluster(2, AI_BASE_URL=fake_ai.url, AI_API_KEY="sk-test-123", AI_MODEL="tiny-model", AI_TIMEOUT=1)
    alice = register(c.a, "alice")
    sub = Subscription(c.redis(), ["room-general"])
    recent = "alice: hey everyone\nbob: hi alice\nalice: @ryo what's up?"
    r = ryo(c.b, alice, systemState={"chatRoomContext": {"recentMessages": recent, "mentionedMessage": "@ryo what's up?"}})
    assert r.status_code == 201, r.text
    msg = r.json()["message"]
    assert msg["username"] == "ryo" and msg["roomId"] == "general"
    assert msg["content"] == "hey alice, not much here"  # trimmed, control character removed
    assert set(msg) == {"id", "roomId", "username", "content", "timestamp", "isAI"} and msg["isAI"] is True

    sent = fake_ai.requests[-1]
    assert sent["path"] == "/v1/chat/completions"
    assert sent["headers"]["Authorization"] == "Bearer sk-test-123"
    body = sent["body"]
    assert body["model"] == "tiny-model"
    system = [m for m in body["messages"] if m["role"] == "system"]
    assert len(system) == 1 and "ryo" in system[0]["content"] and "lowercase" in system[0]["content"]
    assert "language" in system[0]["content"] and "never reveal" in system[0]["content"]
    assert recent not in system[0]["content"]  # context never mixed into the instructions
    user_turns = "\n".join(m["content"] for m in body["messages"] if m["role"] == "user")
    assert "<recent_messages>\nalice: hey everyone\nbob: hi alice\nalice: @ryo what's up?\n</recent_messages>" in user_turns
    assert "<mentioned_message>\n@ryo what's up?\n</mentioned_message>" in user_turns
    assert "alice asks: what's up?" in user_turns

    # Stored in the room's history (the same one chat messages use) and broadcast.
    history = c.a.call("GET", "/api/rooms/general/messages").json()["messages"]
    assert history[0] == msg
    assert {"event": "room-message", "channel": "room-general", "data": {"roomId": "general", "message": msg}} in sub.events(0.5)
    sub.close()


@pytest.mark.parametrize("mode", ["500", "slow", "malformed", "empty"])
def test_provider_failures_store_nothing(make_cluster, fake_ai, mode):
    c = make_cluster(1, AI_BASE_URL=fake_ai.url, AI_TIMEOUT=1, AI_RATE_LIMIT=2)
    alice = register(c.a, "alice")
    sub = Subscription(c.redis(), ["room-general"])
    fake_ai.mode = mode
    t0 = time.monotonic()
    r = ryo(c.a, alice)
    assert r.status_code == 500 and r.json() == {"error": "Failed to generate reply"}
    assert time.monotonic() - t0 < 2.5
    assert c.a.call("GET", "/api/rooms/general/messages").json()["messages"] == []
    assert [e for e in sub.events(0.3) if e["event"] == "room-message"] == []
    # The attempt used a limiter slot.
    assert re.fullmatch(r'"ai";r=1;t=\d+', r.headers["RateLimit"])
    sub.close()


def test_validation_order_and_messages(make_cluster):
    c = make_cluster(1, AI_RATE_LIMIT=3)
    a = c.a
    alice, bob = register(a, "alice"), register(a, "bobby")
    r = requests.post(a.base + "/api/ai/ryo-reply", data="{oops", timeout=5)
    assert r.status_code == 400 and r.json() == {"error": "Invalid JSON body"}
    assert r.headers["RateLimit-Policy"] == '"ai";q=3;w=60'
    r = requests.post(a.base + "/api/ai/ryo-reply", json={"roomId": "general", "prompt": "hi"}, timeout=5)
    assert r.status_code == 401 and r.json() == {"error": "Authentication required"}
    assert ryo(a, alice, room=None).json() == {"error": "Invalid room ID format"}
    assert ryo(a, alice, room="bad id!").json() == {"error": "Invalid room ID format"}
    for bad in [None, "", "   ", 5]:
        r = ryo(a, alice, prompt=bad)
        assert r.status_code == 400 and r.json() == {"error": "Prompt is required"}
        assert r.headers["RateLimit"] == '"ai";r=3;t=0'  # validation failures are not counted
    r = ryo(a, alice, prompt="x" * 4001)
    assert r.status_code == 400 and "4000" in r.json()["error"]
    assert ryo(a, alice, systemState={"chatRoomContext": {"recentMessages": 5}}).status_code == 400
    # Rate limit before the room check: a missing room still costs a slot.
    r = ryo(a, alice, room="nowhere")
    assert r.status_code == 404 and r.json() == {"error": "Room not found"} and r.headers["RateLimit"].startswith('"ai";r=2;')
    dm = a.call("POST", "/api/rooms", user=bob, json={"name": "dm", "type": "private", "members": []}).json()["room"]
    assert ryo(a, alice, room=dm["id"]).status_code == 403
    r = ryo(a, bob, room=dm["id"])
    assert r.status_code == 201 and r.json()["message"]["username"] == "ryo" and r.json()["message"]["isAI"] is True
    assert r.json()["message"]["content"] == r.json()["message"]["content"].strip()


def test_context_beyond_16k_is_cut_from_the_oldest_end(make_cluster, fake_ai):
    c = make_cluster(1, AI_BASE_URL=fake_ai.url)
    alice = register(c.a, "alice")
    lines = [f"user{i}: message number {i} " + "x" * 40 for i in range(600)]
    r = ryo(c.a, alice, systemState={"chatRoomContext": {"recentMessages": "\n".join(lines)}})
    assert r.status_code == 201
    context = next(m["content"] for m in fake_ai.requests[-1]["body"]["messages"] if "<recent_messages>" in m["content"])
    kept = context.split("<recent_messages>\n")[1].split("\n</recent_messages>")[0]
    assert len(kept.encode()) <= 16 * 1024
    assert kept.endswith(lines[-1]) and lines[0] not in kept
    assert kept.split("\n")[0] in lines  # cut at a line boundary


def test_offline_responder_by_default(cluster):
    alice = register(cluster.a, "alice")
    r = ryo(cluster.a, alice, prompt="hey ryo", systemState={"chatRoomContext": {"recentMessages": "bob: pizza tonight?\ncarol: pizza yes"}})
    assert r.status_code == 201
    content = r.json()["message"]["content"]
    assert content == content.lower() and 0 < len(content) <= 2000 and "alice" in content
    again = ryo(cluster.b, alice, prompt="hey ryo", systemState={"chatRoomContext": {"recentMessages": "bob: pizza tonight?\ncarol: pizza yes"}})
    assert again.json()["message"]["content"] == content  # deterministic


def test_limiter_exact_across_workers(make_cluster):
    c = make_cluster(2)
    alice, bob = register(c.a, "alice"), register(c.a, "bobby")
    results = []
    lock = threading.Lock()

    def fire(i):
        r = ryo((c.a, c.b)[i % 2], alice, prompt=f"question {i}?")
        with lock:
            results.append(r)

    threads = [threading.Thread(target=fire, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    codes = sorted(r.status_code for r in results)
    assert codes.count(201) == 5 and codes.count(429) == 15
    for r in results:
        assert r.headers["RateLimit-Policy"] == '"ai";q=5;w=60'
        m = re.fullmatch(r'"ai";r=(\d+);t=(\d+)', r.headers["RateLimit"])
        assert m
        if r.status_code == 429:
            assert r.json() == {"error": "Rate limit exceeded"}
            assert m.group(1) == "0"
            assert 1 <= int(r.headers["Retry-After"]) <= 60
            assert int(r.headers["Retry-After"]) == max(1, int(m.group(2)))
    assert sorted(int(re.search(r"r=(\d+)", r.headers["RateLimit"]).group(1)) for r in results if r.status_code == 201) == [0, 1, 2, 3, 4]
    # Another user is unaffected.
    assert ryo(c.b, bob).status_code == 201
    assert c.redis().zcard("ratelimit:ai:{alice}") == 5


def test_sliding_window_short(make_cluster):
    c = make_cluster(2, AI_RATE_LIMIT=2, AI_RATE_WINDOW=2)
    alice = register(c.a, "alice")
    first = ryo(c.a, alice)
    time.sleep(0.6)
    second = ryo(c.b, alice)
    assert (first.status_code, second.status_code) == (201, 201)
    # Rejections while the window is full do not push it back.
    for _ in range(5):
        r = ryo(c.a, alice)
        assert r.status_code == 429
        time.sleep(0.2)
    # The oldest accepted request leaves ~2 s after it was made: exactly one more passes.
    deadline = time.monotonic() + 3
    passed = None
    while time.monotonic() < deadline:
        r = ryo(c.b, alice)
        if r.status_code == 201:
            passed = r
            break
        assert int(r.headers["Retry-After"]) >= 1
        time.sleep(0.1)
    assert passed is not None
    assert passed.headers["RateLimit"].startswith('"ai";r=0;')
    assert ryo(c.a, alice).status_code == 429  # only one slot came free
