"""Multi-instance behaviour through nginx against three workers (started by `ops/cluster up`)."""
import json
import os
import secrets
import signal
import subprocess
import threading
import time

import requests
import websocket

from conftest import ROOT


def register(base, name):
    r = requests.post(base + "/api/auth/register", json={"username": name, "password": "password123"}, timeout=10)
    assert r.status_code == 201, r.text
    return {"Authorization": f"Bearer {r.json()['token']}", "X-Username": name}


def unique(prefix):
    return f"{prefix}{secrets.token_hex(3)}"


def test_every_worker_gives_the_same_answers(cluster):
    name = unique("same")
    auth = register(cluster.url, name)
    assert requests.post(cluster.url + "/api/presence/switch", headers=auth, timeout=10,
                         json={"nextRoomId": "general", "username": name}).status_code == 200
    requests.post(cluster.url + "/api/rooms/general/messages", headers=auth, json={"content": "hello"}, timeout=10)
    paths = ["/api/rooms", "/api/rooms/general", f"/api/users?search={name[:4]}", "/api/rooms/general/messages?limit=5"]
    for path in paths:
        answers = {json.dumps(requests.get(cluster.worker_url(i) + path, timeout=10,
                                           headers={"X-Forwarded-For": "198.51.100.1"}).json(), sort_keys=True)
                   for i in range(1, cluster.workers + 1)}
        assert len(answers) == 1, path
    users = [u["username"] for u in requests.get(cluster.url + "/api/rooms/general/users", timeout=10).json()["users"]]
    assert name in users
    # Each worker accepts the token the others issued.
    for i in range(1, cluster.workers + 1):
        r = requests.post(cluster.worker_url(i) + "/api/presence/heartbeat", headers=auth, json={}, timeout=10)
        assert r.status_code == 200


def test_non_websocket_upgrade_is_served_as_plain_http(cluster):
    # curl --http2 on http:// asks for h2c; nginx drops any Upgrade but websocket, so the worker answers normally.
    for upgrade in ["h2c", "foo"]:
        r = requests.get(cluster.url + "/health", timeout=10, headers={"Upgrade": upgrade, "Connection": "Upgrade"})
        assert r.status_code == 200 and r.json() == {"status": "ok"}, upgrade
    # A real WebSocket upgrade still goes through.
    ws = websocket.create_connection(cluster.url.replace("http", "ws") + "/app/presence-key?protocol=7", timeout=10)
    assert json.loads(ws.recv())["event"] == "pusher:connection_established"
    ws.close()


def stream(url, stop, results, method="GET", body=None, headers=None):
    session = requests.Session()
    while not stop.is_set():
        try:
            r = session.request(method, url, json=body, headers=headers, timeout=10)
            results.append(r.status_code)
        except requests.RequestException as e:
            results.append(type(e).__name__)
        time.sleep(0.005)


def test_sigkill_of_a_worker_during_traffic(cluster):
    victim = 2
    name = unique("kill")
    direct = cluster.worker_url(victim)
    auth = register(cluster.url, name)
    # The user's presence lives on the victim's WebSocket (presence channel).
    port = cluster.worker_port(victim)
    ws = websocket.create_connection(f"ws://127.0.0.1:{port}/app/presence-key?protocol=7", timeout=5)
    sid = json.loads(json.loads(ws.recv())["data"])["socket_id"]
    token = requests.post(direct + "/pusher/auth", headers=auth, data={"socket_id": sid, "channel_name": "presence-room-random"}, timeout=10).json()
    ws.send(json.dumps({"event": "pusher:subscribe", "data": {"channel": "presence-room-random", "auth": token["auth"], "channel_data": token["channel_data"]}}))
    assert json.loads(ws.recv())["event"] == "pusher_internal:subscription_succeeded"
    pubsub = cluster.listen("ch:{room-random}")

    stop = threading.Event()
    gets, posts = [], []
    threads = [threading.Thread(target=stream, args=(cluster.url + "/api/rooms", stop, gets)),
               threading.Thread(target=stream, args=(cluster.url + "/api/rooms/general", stop, gets)),
               threading.Thread(target=stream, args=(cluster.url + "/api/presence/heartbeat", stop, posts, "POST", {}, auth))]
    for t in threads:
        t.start()
    time.sleep(1.0)
    os.kill(cluster.worker_pid(victim), signal.SIGKILL)
    killed_at = time.monotonic()
    time.sleep(2.0)
    stop.set()
    for t in threads:
        t.join()
    assert len(gets) > 50
    assert all(code == 200 for code in gets), sorted(set(map(str, gets)))  # idempotent: retried on another worker
    assert all(code in (200, 502, 504) for code in posts), sorted(set(map(str, posts)))  # the rest fail cleanly
    # Its user's presence expires (CHAT_PRESENCE_TTL) and is announced by the sweeper.
    left = None
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and left is None:
        m = pubsub.next(timeout=0.2)
        if m:
            event = json.loads(m)
            if event["event"] == "presence-update" and event["data"]["username"] == name and event["data"]["action"] == "left":
                left = time.monotonic() - killed_at
    assert left is not None, "no presence-update left after the worker died"
    assert name not in [u["username"] for u in requests.get(cluster.url + "/api/rooms/random/users", timeout=10).json()["users"]]
    pubsub.close()


def test_rolling_restart_under_load(cluster):
    stop = threading.Event()
    gets = []
    threads = [threading.Thread(target=stream, args=(cluster.url + "/api/rooms", stop, gets)) for _ in range(3)]
    for t in threads:
        t.start()
    closes = []
    for i in range(1, cluster.workers + 1):
        ws = websocket.create_connection(f"ws://127.0.0.1:{cluster.worker_port(i)}/app/presence-key?protocol=7", timeout=10)
        ws.recv()
        pid = cluster.worker_pid(i)
        os.kill(pid, signal.SIGTERM)
        op, frame = ws.recv_data(control_frame=True)
        while op != websocket.ABNF.OPCODE_CLOSE:
            op, frame = ws.recv_data(control_frame=True)
        closes.append(int.from_bytes(frame[:2], "big"))
        deadline = time.monotonic() + 20
        while cluster.alive(i) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not cluster.alive(i), f"worker {i} did not exit on SIGTERM"
        cluster.start_worker(i)
        time.sleep(0.5)
    stop.set()
    for t in threads:
        t.join()
    assert closes == [4200] * cluster.workers
    assert len(gets) > 100
    assert all(code == 200 for code in gets), sorted(set(map(str, gets)))


def test_metrics_after_a_scenario(cluster):
    name = unique("metrics")
    auth = register(cluster.url, name)
    for i in range(1, cluster.workers + 1):
        base = cluster.worker_url(i)
        requests.post(base + "/api/presence/switch", headers=auth, json={"nextRoomId": "general", "username": name}, timeout=10)
        requests.get(base + "/api/users?search=me", timeout=10)
    for _ in range(25):
        requests.post(cluster.worker_url(1) + "/api/rooms/general/messages", headers=auth, json={"content": "x"}, timeout=10)
    ws = websocket.create_connection(f"ws://127.0.0.1:{cluster.worker_port(1)}/app/presence-key?protocol=7", timeout=5)
    ws.recv()
    ws.send(json.dumps({"event": "pusher:subscribe", "data": {"channel": "room-general"}}))
    ws.recv()
    text = requests.get(cluster.metrics_url(1), timeout=10).text
    ws.close()

    def value(prefix):
        total = 0.0
        for line in text.splitlines():
            if line.startswith(prefix) and not line.startswith("#"):
                total += float(line.rsplit(" ", 1)[1])
        return total

    assert value('http_requests_total{method="POST",route="/api/presence/switch",status="200"}') >= 1
    assert value('http_request_duration_seconds_count{method="GET",route="/api/users"}') >= 1
    assert value("redis_command_duration_seconds_count") > 0
    assert value("websocket_connections") >= 1
    assert value("pubsub_subscriptions") >= 1
    assert value("sweeper_runs_total") > 0
    assert value('rate_limit_rejections_total{limit="messages"}') >= 1
    # An expiry somewhere in the cluster is announced by one worker's sweeper (CHAT_PRESENCE_TTL=3 here).
    ghost = unique("ghost")
    ghost_auth = register(cluster.url, ghost)
    requests.post(cluster.url + "/api/presence/switch", headers=ghost_auth, json={"nextRoomId": "random", "username": ghost}, timeout=10)
    deadline = time.monotonic() + 10
    announced = 0.0
    while time.monotonic() < deadline and announced == 0:
        time.sleep(0.5)
        announced = 0.0
        for i in range(1, cluster.workers + 1):
            for line in requests.get(cluster.metrics_url(i), timeout=10).text.splitlines():
                if line.startswith("presence_leaves_announced_total"):
                    announced += float(line.rsplit(" ", 1)[1])
    assert announced >= 1
    # The request id is echoed through nginx.
    r = requests.get(cluster.url + "/health", headers={"X-Request-Id": "trace-me-42"}, timeout=5)
    assert r.headers["X-Request-Id"] == "trace-me-42"
    assert requests.get(cluster.url + "/health", timeout=5).headers.get("X-Request-Id")


def test_ops_inspect(cluster):
    name = unique("insp")
    auth = register(cluster.url, name)
    requests.post(cluster.url + "/api/presence/switch", headers=auth, json={"nextRoomId": "general", "username": name}, timeout=10)
    env = dict(os.environ, REDIS_URL=cluster.redis_url)
    out = subprocess.run([os.path.join(ROOT, "ops", "inspect"), "room", "general"], capture_output=True, text=True, env=env, timeout=20)
    assert out.returncode == 0, out.stderr
    assert "== room general: metadata" in out.stdout and name in out.stdout
    out = subprocess.run([os.path.join(ROOT, "ops", "inspect"), "user", name], capture_output=True, text=True, env=env, timeout=20)
    assert out.returncode == 0, out.stderr
    assert f"username\t{name}" in out.stdout and "general" in out.stdout and "passwordHash" not in out.stdout
    out = subprocess.run([os.path.join(ROOT, "ops", "inspect"), "room", "nope-nope"], capture_output=True, text=True, env=env, timeout=20)
    assert out.returncode == 1 and "not found" in out.stdout
