"""The web client through nginx in front of three workers (`ops/cluster up`, CHAT_PRESENCE_TTL=3,
SWEEP_INTERVAL_MS=250), in a real browser: two users whose WebSockets are on two different workers see each other, and
a worker killed under one of them shows that user leaving within TTL + sweep, then the page back on a surviving worker.
"""
import os
import re
import secrets
import signal
import sys
import time

import pytest
import requests

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "system"))
from web_client import ChatPage, ErrorLog, expect, launch, measured, screenshot, sync_playwright  # noqa: E402

TTL = float(os.environ.get("CHAT_PRESENCE_TTL", "3"))
SWEEP = float(os.environ.get("SWEEP_INTERVAL_MS", "250")) / 1000


def unique(prefix):
    return f"{prefix}{secrets.token_hex(3)}"


def register(base, name):
    r = requests.post(base + "/api/auth/register", json={"username": name, "password": "password123"}, timeout=10)
    assert r.status_code == 201, r.text


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as playwright:
        b = launch(playwright)
        yield b
        b.close()


def sockets_per_worker(cluster):
    """Each live worker's open WebSockets (its `websocket_connections` gauge)."""
    counts = {}
    for i in range(1, cluster.workers + 1):
        if not cluster.alive(i):
            continue
        try:
            text = requests.get(cluster.metrics_url(i), timeout=5).text
        except requests.RequestException:
            continue
        m = re.search(r"^websocket_connections(?:\{[^}]*\})? (\S+)$", text, re.M)
        counts[i] = int(float(m.group(1))) if m else 0
    return counts


def settled_counts(cluster):
    previous = None
    for _ in range(40):
        counts = sockets_per_worker(cluster)
        if counts == previous:
            return counts
        previous = counts
        time.sleep(0.25)
    return previous


def open_on_new_worker(browser, errors, cluster, label, name, avoid=(), tries=12):
    """Opens a page through nginx and signs in, until its WebSocket lands on a worker not in `avoid`; returns the
    page and the worker holding its socket."""
    for _ in range(tries):
        before = settled_counts(cluster)
        context = browser.new_context()
        page = context.new_page()
        errors.attach(page, label)
        chat = ChatPage(page, cluster.url).open().login(name)
        after = settled_counts(cluster)
        grown = [i for i in after if after[i] > before.get(i, 0)]
        if len(grown) == 1 and grown[0] not in avoid:
            return chat, grown[0]
        context.close()
    pytest.fail(f"no page of {label} landed on a worker other than {avoid}")


def two_users_on_two_workers(browser, errors, cluster, prefix):
    """Registers Ana and Ben and signs each in through nginx, their WebSockets on two different workers. Returns
    (ana, ben, Ana's page, her worker, Ben's page, his worker)."""
    ana, ben = unique(prefix + "a"), unique(prefix + "b")
    register(cluster.url, ana)
    register(cluster.url, ben)
    a, wa = open_on_new_worker(browser, errors, cluster, "ana", ana)
    b, wb = open_on_new_worker(browser, errors, cluster, "ben", ben, avoid=(wa,))
    return ana, ben, a, wa, b, wb


def test_two_users_on_two_workers_through_nginx(cluster, browser):
    errors = ErrorLog()
    ana, ben, a, wa, b, wb = two_users_on_two_workers(browser, errors, cluster, "n")
    assert wa != wb
    timings = {}
    a.enter("general")
    timings["join"] = measured(lambda: b.enter("general"), lambda: a.wait_member(ben, True))
    timings["type"] = measured(lambda: b.start_typing("he"),
                               lambda: expect(a.page.locator("#typing")).to_have_attribute("data-users", ben))
    text = unique("through nginx ")
    timings["post"] = measured(lambda: b.post(text), lambda: expect(a.message(text)).to_have_count(1))
    timings["leave"] = measured(b.leave, lambda: a.wait_member(ben, False))
    print(f"ana on worker {wa}, ben on worker {wb}; seconds:", {k: round(v, 3) for k, v in timings.items()})
    assert max(timings.values()) <= 1.0, timings
    for page in (a, b):
        page.page.context.close()
    errors.check()


def test_a_worker_killed_under_a_user_shows_the_leave_then_the_page_reconnects(cluster, browser):
    """Ben's worker is SIGKILLed as Ben's network drops (the browser context goes offline), so his page cannot
    reconnect at once: Ana must see him leave by expiry, within TTL + sweep, as the sweeper announces it. Back
    online, his page reconnects through nginx to a surviving worker and he is back. Then his new worker is killed while nothing stands in the way: the page
    reconnects by itself and he stays in the room."""
    errors = ErrorLog(allow_socket_failures=True)
    ana, ben, a, wa, b, wb = two_users_on_two_workers(browser, errors, cluster, "k")
    a.enter("random")
    b.enter("random")
    a.wait_member(ben, True)
    b.page.context.set_offline(True)
    os.kill(cluster.worker_pid(wb), signal.SIGKILL)
    killed = time.monotonic()
    a.wait_member(ben, False, timeout=TTL + SWEEP + 10)
    left_after = time.monotonic() - killed
    print(f"ben's worker {wb} killed; ana saw him leave after {left_after:.2f} s (TTL {TTL} s + sweep {SWEEP} s)")
    assert left_after <= TTL + SWEEP + 1.0, left_after
    expect(b.page.locator("#connection-status")).not_to_have_attribute("data-state", "connected")
    expect(a.page.locator("#connection-status")).to_have_attribute("data-state", "connected")

    b.page.context.set_offline(False)
    thawed = time.monotonic()
    b.wait_connected(timeout=30)
    a.wait_member(ben, True, timeout=30)
    print(f"ben's page reconnected and ana saw him back {time.monotonic() - thawed:.2f} s after the network came back")
    counts = settled_counts(cluster)
    assert wb not in counts, counts  # the dead worker serves nobody
    ben_on = [i for i, n in counts.items() if n > (1 if i == wa else 0)]
    assert len(ben_on) == 1, counts  # ben's socket is on one surviving worker
    text = unique("after the kill ")
    b.post(text)
    expect(a.message(text)).to_have_count(1)

    # Killed again under the running page (ana's too, if ben came back on hers): each page reconnects by itself and
    # ben stays, or is back, in the room.
    cluster.start_worker(wb)
    b.record_states()
    os.kill(cluster.worker_pid(ben_on[0]), signal.SIGKILL)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and "connected" not in b.states():
        time.sleep(0.1)
    assert "connected" in b.states() and b.states()[0] != "connected", b.states()  # it noticed, then reconnected
    b.wait_connected(timeout=20)
    a.wait_connected(timeout=20)
    a.wait_member(ben, True, timeout=TTL + SWEEP + 10)
    text = unique("after the second kill ")
    b.post(text)
    expect(a.message(text)).to_have_count(1)
    screenshot(a.page, "web-client-after-kill.png")
    errors.check()


def test_a_worker_stopping_under_a_page_sends_it_elsewhere_at_once(cluster, browser):
    """SIGTERM: the worker closes its sockets with 4200, which the page takes as "reconnect now"; it comes back on
    another worker within a couple of seconds, subscribed again to everything it had."""
    errors = ErrorLog(allow_socket_failures=True)
    ana, ben, a, wa, b, wb = two_users_on_two_workers(browser, errors, cluster, "t")
    a.enter("general")
    b.enter("general")
    a.wait_member(ben, True)
    b.record_states()
    stopped = time.monotonic()
    os.kill(cluster.worker_pid(wb), signal.SIGTERM)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and "connected" not in b.states():
        time.sleep(0.05)
    back = time.monotonic() - stopped
    states = b.states()
    assert "connected" in states and states[0] != "connected", states
    print(f"ben's worker {wb} stopped (SIGTERM); his page went {states} and was connected again after {back:.2f} s")
    assert back < 5, back
    # Subscribed again: the room's events reach him, and his reach Ana.
    a.wait_member(ben, True, timeout=TTL + SWEEP + 5)
    text_a, text_b = unique("to ben "), unique("to ana ")
    a.post(text_a)
    expect(b.message(text_a)).to_have_count(1)
    b.post(text_b)
    expect(a.message(text_b)).to_have_count(1)
    errors.check()
