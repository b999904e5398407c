"""Connection recovery (issue #31) in a real browser: the web client (Debian's chromium via Playwright) behind nginx in
front of two workers. The worker holding the page's WebSocket is SIGKILLed while another user posts to the room
through the other worker: before the kill, while the page is reconnecting, and after. The page reconnects through
nginx to the surviving worker, subscribes again with `recover` (the epoch and offset of the last event it saw), gets
`recovered: true` and then exactly the events it missed, and shows every message once, in order, without loading the
room's history again by HTTP.

What is checked is what the page sees on the wire (every frame of each of its WebSockets) and on screen, and every HTTP
request it makes for the room's history. Fails on any JavaScript error in the page (web_client.ErrorLog), except the
WebSocket and 502 errors a killed worker causes.
"""
import json
import os
import re
import signal
import threading
import time
import uuid
from urllib.parse import urlparse

import pytest
import requests

from conftest import ROOT, Nginx, register, render_nginx, wait_until
from web_client import ChatPage, ErrorLog, launch, sync_playwright

ROOM = "general"
CHANNEL = f"room-{ROOM}"
HISTORY_PATH = f"/api/rooms/{ROOM}/messages"
TEMPLATE = os.path.join(ROOT, "ops", "nginx.conf.template")
# Generous: a busy 2-core machine runs chromium, nginx, two workers and Redis at once.
WAIT = 30


def unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:8]}"


@pytest.fixture
def site(make_cluster):
    """Two workers on the test's Redis (message rate limit lifted: one user posts a stream), nginx in front."""
    cluster = make_cluster(2, MESSAGE_RATE_LIMIT=100000)
    upstreams = [w.base.split("//", 1)[1] for w in cluster.workers]
    # The config ops/cluster renders (ops/nginx.conf.template).
    nginx = Nginx(lambda listen, prefix: render_nginx(TEMPLATE, listen, prefix, upstreams),
                  dir_prefix="presence-test-nginx-recovery-")
    yield cluster, nginx
    nginx.stop()


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as playwright:
        b = launch(playwright)
        yield b
        b.close()


# ---------------------------------------------------------------------------------------------------------------------
# What the page does: its WebSockets' frames, its history requests


class Socket:
    """One WebSocket of the page: every frame it sent and received (parsed JSON), in order."""

    def __init__(self, ws):
        self.url = ws.url
        self.sent = []
        self.received = []
        self.closed = False
        ws.on("framesent", lambda payload: self.sent.append(self._parse(payload)))
        ws.on("framereceived", lambda payload: self.received.append(self._parse(payload)))
        ws.on("close", lambda _ws: setattr(self, "closed", True))

    @staticmethod
    def _parse(payload):
        try:
            return json.loads(payload)
        except (TypeError, ValueError):
            return {"unparsed": payload}

    def subscribes(self, channel):
        return [f["data"] for f in self.sent
                if f.get("event") == "pusher:subscribe" and isinstance(f.get("data"), dict)
                and f["data"].get("channel") == channel]

    def answer(self, channel):
        """The parsed data of the channel's subscription_succeeded, or None."""
        for f in self.received:
            if f.get("event") == "pusher_internal:subscription_succeeded" and f.get("channel") == channel:
                data = f.get("data")
                return json.loads(data) if isinstance(data, str) else data
        return None

    def answer_index(self, channel):
        for i, f in enumerate(self.received):
            if f.get("event") == "pusher_internal:subscription_succeeded" and f.get("channel") == channel:
                return i
        return None

    def events(self, channel):
        """Event frames on `channel` after its subscribe answer (not pusher_internal ones)."""
        start = self.answer_index(channel)
        if start is None:
            return []
        return [f for f in self.received[start + 1:]
                if f.get("channel") == channel and not str(f.get("event", "")).startswith("pusher")]


class PageRecorder:
    def __init__(self, page):
        self.sockets = []
        self.history_requests = []
        page.on("websocket", lambda ws: self.sockets.append(Socket(ws)))
        page.on("request", self._request)

    def _request(self, request):
        if request.method == "GET" and urlparse(request.url).path == HISTORY_PATH:
            self.history_requests.append(request.url)


def pump_until(page, predicate, timeout, what):
    """Waits for `predicate` while letting Playwright deliver the page's events (frames, requests) to the recorder."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        page.wait_for_timeout(50)
    assert predicate(), f"timed out after {timeout} s waiting for {what}"


def socket_counts(cluster):
    """Each live worker's open WebSockets (its websocket_connections gauge), by worker index."""
    counts = {}
    for i, w in enumerate(cluster.workers):
        if w.proc.proc.poll() is not None:
            continue
        m = re.search(r"^websocket_connections(?:\{[^}]*\})? (\S+)$", w.metrics(), re.M)
        counts[i] = int(float(m.group(1))) if m else 0
    return counts


class Poster:
    """Posts numbered messages to the room as one user through one worker's HTTP API, in order, and keeps what was
    accepted: (text, message id). `start()` keeps posting in a thread (one every `every` s) until `stop()`."""

    def __init__(self, worker, user, tag):
        self.worker, self.user, self.tag = worker, user, tag
        self.posted = []
        self.failures = []
        self.halt = threading.Event()
        self.thread = None

    def post(self, phase):
        text = f"{self.tag} {len(self.posted):04d} {phase}"
        r = self.worker.call("POST", HISTORY_PATH, user=self.user, json={"content": text})
        if r.status_code != 201:
            self.failures.append((text, r.status_code, r.text))
            return
        self.posted.append((text, r.json()["message"]["id"]))

    def start(self, phase, every=0.03):
        def run():
            while not self.halt.is_set():
                try:
                    self.post(phase)
                except requests.RequestException as e:
                    self.failures.append((phase, "request failed", repr(e)))
                self.halt.wait(every)
        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()

    def stop(self):
        self.halt.set()
        if self.thread:
            self.thread.join(WAIT)
            assert not self.thread.is_alive(), "the posting thread did not stop"


def shown_texts(page, tag):
    return [t for t in page.locator("#messages li.message .message-text").all_inner_texts() if t.startswith(tag)]


# ---------------------------------------------------------------------------------------------------------------------


def test_a_page_whose_worker_is_killed_recovers_every_missed_message_without_reloading_history(site, browser):
    cluster, nginx = site
    errors = ErrorLog(allow_socket_failures=True)
    reader, writer = unique("rd"), unique("wr")
    register(cluster.a, reader)
    poster_user = register(cluster.b, writer)
    context = browser.new_context()
    try:
        page = context.new_page()
        errors.attach(page, "reader")
        recorder = PageRecorder(page)
        chat = ChatPage(page, nginx.origin).open().login(reader)

        # Which worker holds the page's socket: the one whose gauge says 1 (nothing else holds a WebSocket).
        counts = {}

        def one_socket():
            nonlocal counts
            counts = socket_counts(cluster)
            return sorted(counts.values()) == [0, 1]
        assert wait_until(one_socket, WAIT, 0.2), f"the page's WebSocket is not on exactly one worker: {counts}"
        a_index = next(i for i, n in counts.items() if n == 1)
        worker_a, worker_b = cluster.workers[a_index], cluster.workers[1 - a_index]
        first = recorder.sockets[0]

        chat.enter(ROOM)
        pump_until(page, lambda: first.answer(CHANNEL) is not None, WAIT, f"the first subscribe answer on {CHANNEL}")
        pump_until(page, lambda: len(recorder.history_requests) >= 1, WAIT, "the room's initial history load")
        answer = first.answer(CHANNEL)
        assert "recover" not in first.subscribes(CHANNEL)[0], "the first subscribe asks for recovery of nothing"
        start = answer.get("recovery")
        assert isinstance(start, dict), f"{CHANNEL} is recoverable: its answer has `recovery`: {answer}"
        assert start.get("recovered") is False and isinstance(start.get("epoch"), str) and start["epoch"] \
            and isinstance(start.get("offset"), int), answer

        # Before the kill: delivered live by worker A, each frame with its offset.
        tag = unique("rec")
        poster = Poster(worker_b, poster_user, tag)
        for _ in range(5):
            poster.post("before")
        pump_until(page, lambda: len(shown_texts(page, tag)) == 5, WAIT, "the 5 messages posted before the kill")
        live = first.events(CHANNEL)
        epoch = live[0].get("epoch") if live else None
        assert live and isinstance(epoch, str) and all(f.get("epoch") == epoch for f in live), \
            f"every event on {CHANNEL} carries the channel's epoch: {live}"
        # Live events go on from the answer's position (a channel without history yet answers epoch "none", 0).
        assert start["epoch"] in (epoch, "none"), (start, epoch)
        first_offset = start["offset"] + 1 if start["epoch"] == epoch else 1
        assert [f.get("offset") for f in live] == list(range(first_offset, first_offset + len(live))), \
            f"offsets on {CHANNEL} go on from the subscribe answer's ({start}) one by one: {live}"
        chat.record_states()

        # SIGKILL worker A; messages go on being posted through B while the page notices and reconnects.
        worker_a.proc.stop(signal.SIGKILL)
        for _ in range(5):
            poster.post("during")  # the page cannot be back yet: its first retry waits at least 0.35 s
        poster.start("around")

        def resubscribed():
            return any(s is not first and s.answer(CHANNEL) is not None for s in recorder.sockets)
        pump_until(page, resubscribed, WAIT, f"the page to reconnect and subscribe to {CHANNEL} again")
        at_reconnect = len(poster.posted)
        pump_until(page, lambda: len(poster.posted) >= at_reconnect + 5 or poster.failures, WAIT,
                   "5 more messages posted after the page was back")
        poster.stop()
        for _ in range(5):
            poster.post("after")
        assert not poster.failures, f"posting through worker B failed: {poster.failures[:5]}"
        posted = poster.posted

        # The page shows every message once, in the order posted.
        pump_until(page, lambda: len(shown_texts(page, tag)) >= len(posted), WAIT,
                   f"all {len(posted)} messages on the page")
        shown = shown_texts(page, tag)
        expected = [text for text, _ in posted]
        assert shown == expected, (f"the page shows {len(shown)} messages, {len(expected)} were posted; "
                                   f"missing {sorted(set(expected) - set(shown))[:10]}, "
                                   f"duplicated {sorted({t for t in shown if shown.count(t) > 1})[:10]}")

        # It reconnected through nginx to worker B, and worker A is gone.
        assert "reconnecting" in chat.states() and chat.states()[-1] == "connected", chat.states()
        assert wait_until(lambda: socket_counts(cluster) == {1 - a_index: 1}, WAIT, 0.2), socket_counts(cluster)

        # On the wire: the new socket asked to recover from the last event the old one delivered, got recovered: true,
        # then the missed events (offsets up to the answer's) and the live ones, consecutive, no gap, no duplicate.
        second = next(s for s in recorder.sockets if s is not first and s.answer(CHANNEL) is not None)
        assert second is recorder.sockets[-1], "the page opened another socket after it was back"
        before_kill = first.events(CHANNEL)
        last_seen = before_kill[-1]["offset"]
        asks = second.subscribes(CHANNEL)
        assert len(asks) == 1, asks
        assert asks[0].get("recover") == {"epoch": epoch, "offset": last_seen}, \
            f"the resubscribe asks to recover from the last event seen ({epoch}, {last_seen}): {asks[0]}"
        recovery = second.answer(CHANNEL).get("recovery")
        assert isinstance(recovery, dict) and recovery.get("recovered") is True and recovery.get("epoch") == epoch, \
            f"{CHANNEL} recovered within the window: {second.answer(CHANNEL)}"
        after = second.events(CHANNEL)
        offsets = [f.get("offset") for f in after]
        assert offsets == list(range(last_seen + 1, last_seen + 1 + len(after))), \
            f"offsets after the resubscribe go on from {last_seen} with no gap or duplicate: {offsets}"
        assert all(f.get("epoch") == epoch for f in after), after
        replayed = [f for f in after if f["offset"] <= recovery["offset"]]
        assert any(f["event"] == "room-message" for f in replayed), \
            f"messages posted while the page was away come as the replay (offsets up to {recovery['offset']}): {offsets}"
        print(f"page on worker {a_index} (killed) then {1 - a_index}; {len(posted)} messages, "
              f"{len(replayed)} events replayed (offsets {last_seen + 1}..{recovery['offset']}), "
              f"{len(after) - len(replayed)} live after the resubscribe")

        # The same, message by message, across both sockets: each once, in the order posted.
        def messages(frames):
            out = []
            for f in frames:
                if f.get("event") == "room-message":
                    data = json.loads(f["data"]) if isinstance(f.get("data"), str) else f.get("data")
                    out.append((data["message"]["content"], data["message"]["id"]))
            return out
        received = [m for m in messages(before_kill) + messages(after) if m[0].startswith(tag)]
        assert received == posted, f"room-message frames differ from what was posted: {len(received)} vs {len(posted)}"

        # And no history reload: the one GET of the room's messages is the initial load.
        page.evaluate("() => new Promise((done) => setTimeout(done, 0))")  # let any request under way be reported
        assert len(recorder.history_requests) == 1, \
            f"the history was loaded {len(recorder.history_requests)} times: {recorder.history_requests}"
    finally:
        context.close()
    errors.check()
