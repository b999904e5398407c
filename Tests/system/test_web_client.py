"""The web client (`/`) and the operator console (`/console`) in a real browser (Debian's chromium via Playwright),
against two workers started straight (no proxy): each user's page is served by, and holds its WebSocket on, its own
worker, so everything one sees of the other went through Redis. Every test fails on any JavaScript error in the pages
(see web_client.ErrorLog)."""
import json
import re
import signal
import time
import uuid

import pytest
import requests

from conftest import ADMIN_NAME, ADMIN_PASSWORD, REDIS_CLUSTER, admin, register, wait_until
from web_client import ChatPage, ConsolePage, ErrorLog, expect, launch, measured, screenshot, sync_playwright

pytestmark = pytest.mark.skipif(REDIS_CLUSTER, reason="the browser tests run once, on one Redis")

CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "font-src 'self'; manifest-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")


def unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as playwright:
        b = launch(playwright)
        yield b
        b.close()


@pytest.fixture
def errors():
    log = ErrorLog()
    yield log
    log.check()


@pytest.fixture
def open_page(browser, errors):
    contexts = []

    def open_(base: str, label: str, **context_options):
        context = browser.new_context(**context_options)
        contexts.append(context)
        page = context.new_page()
        errors.attach(page, label)
        return page

    yield open_
    for context in contexts:
        context.close()


def test_two_users_on_two_workers_see_each_other_join_type_post_and_leave_within_a_second(cluster, open_page, errors):
    ana, ben = unique("ana"), unique("ben")
    register(cluster.b, ben)
    # Ana registers in the page (a new user); Ben signs in; each on their own worker.
    a = ChatPage(open_page(cluster.a.base, "ana"), cluster.a.base).open().register(ana)
    b = ChatPage(open_page(cluster.b.base, "ben"), cluster.b.base).open().login(ben)
    timings = {}
    a.enter("general")
    timings["ana sees ben join"] = measured(lambda: b.enter("general"), lambda: a.wait_member(ben, True))
    b.wait_member(ana, True)
    timings["ben sees ana type"] = measured(
        lambda: a.start_typing("hel"), lambda: expect(b.page.locator("#typing")).to_have_attribute("data-users", ana))
    timings["ana sees ben type"] = measured(
        lambda: b.start_typing("hi"), lambda: expect(a.page.locator("#typing")).to_have_attribute("data-users", ben))
    text_a, text_b = unique("from ana "), unique("from ben ")
    timings["ben sees ana's message"] = measured(lambda: a.post(text_a), lambda: expect(b.message(text_a)).to_have_count(1))
    timings["ana sees ben's message"] = measured(lambda: b.post(text_b), lambda: expect(a.message(text_b)).to_have_count(1))
    # A message sent ends its sender's typing for the others.
    expect(a.page.locator("#typing")).to_have_attribute("data-users", "")
    timings["ben sees ana leave"] = measured(a.leave, lambda: b.wait_member(ana, False))
    timings["ben sees ana come back"] = measured(lambda: a.enter("general"), lambda: b.wait_member(ana, True))
    # Each message once, in order, in both pages (Ana's from the history she reloaded on coming back).
    for page in (a, b):
        texts = page.page.locator("#messages li.message .message-text").all_inner_texts()
        assert texts.count(text_a) == 1 and texts.count(text_b) == 1, texts
        assert texts.index(text_a) < texts.index(text_b)
    screenshot(a.page, "web-client.png")
    timings["ana sees ben leave"] = measured(b.leave, lambda: a.wait_member(ben, False))
    print("seconds from the action in one page to the change in the other:",
          {k: round(v, 3) for k, v in timings.items()})
    assert max(timings.values()) <= 1.0, timings


def test_markup_in_messages_renders_as_text_and_runs_nothing(cluster, open_page):
    name = unique("mal")
    page = open_page(cluster.a.base, "mal")
    chat = ChatPage(page, cluster.a.base).open().register(name)
    chat.enter("random")
    payloads = ['<img src=x onerror="window.__xss=1">', "<script>window.__xss=2</script>",
                '<a href="javascript:window.__xss=3">link</a>']
    for payload in payloads:
        chat.post(payload)
        expect(chat.message(payload)).to_have_count(1)
    # Again from history, after a reload.
    page.reload()
    chat.wait_connected()
    chat.enter("random")
    for payload in payloads:
        expect(chat.page.locator("#messages .message-text").filter(has_text=payload)).to_have_count(1)
        assert payload in chat.page.locator("#messages").inner_text()
    page.wait_for_timeout(300)
    assert page.evaluate("window.__xss") is None
    assert page.locator("#messages img, #messages script, #messages a[href^='javascript']").count() == 0


def test_every_page_and_asset_has_the_csp_and_nothing_violates_it(cluster, open_page, errors):
    page = open_page(cluster.a.base, "csp")
    page.add_init_script("window.__violations = []; document.addEventListener('securitypolicyviolation',"
                         " e => window.__violations.push(e.violatedDirective + ' ' + e.blockedURI));")
    seen = []
    page.on("response", lambda r: seen.append((r.url, r.headers.get("content-security-policy"), r.headers.get("content-type"))))
    ChatPage(page, cluster.a.base).open().register(unique("csp"))
    assert page.evaluate("window.__violations") == []
    page.goto(cluster.a.base + "/console")
    page.wait_for_load_state("networkidle")
    assert page.evaluate("window.__violations") == []
    served = [(url, csp, ctype) for url, csp, ctype in seen
              if url.split(cluster.a.base, 1)[-1].split("?")[0] in ("/", "/console") or "/assets/" in url]
    kinds = {ctype.split(";")[0] for _, _, ctype in served}
    assert {"text/html", "text/javascript", "text/css"} <= kinds, served
    for url, csp, _ in served:
        assert csp == CSP, (url, csp)
    # An inline script is refused by the policy (the page itself has none).
    page.evaluate("""() => { const s = document.createElement('script'); s.textContent = 'window.__inline = 1';
                             document.body.appendChild(s); }""")
    page.wait_for_timeout(200)
    assert page.evaluate("window.__inline") is None
    assert any("script-src" in v for v in page.evaluate("window.__violations"))
    # That refusal is the one console error this test causes on purpose.
    refused = [e for e in errors.errors if "Executing inline script violates" in e]
    assert len(refused) == 1, errors.errors
    errors.errors.remove(refused[0])


def test_the_console_refuses_non_admins_and_shows_admins_the_live_state(cluster, open_page):
    name = unique("nosy")
    user = register(cluster.a, name)
    # Someone present, so the rooms table has a row.
    chat = ChatPage(open_page(cluster.b.base, "present"), cluster.b.base).open().register(unique("here"))
    chat.enter("general")
    # A non-admin signed in on the chat page gets no data: the server refuses, the page says so.
    page = open_page(cluster.a.base, "nosy")
    ChatPage(page, cluster.a.base).open().login(name)
    page.goto(cluster.a.base + "/console")
    expect(page.locator("#console-denied")).to_be_visible()
    expect(page.locator("#console-denied")).to_contain_text("Admins only")
    assert page.locator("#workers tr[data-worker-id]").count() == 0
    r = cluster.a.call("GET", "/api/console/overview", user=user)
    assert r.status_code == 403 and r.json() == {"error": "Forbidden"}
    assert cluster.a.call("GET", "/api/console/overview").status_code == 401
    # A customer waits in a support ticket with no agent: the console's support queue shows it.
    assert cluster.b.call("POST", "/support/WQ-1/join", user=user, json={}).status_code == 200
    # The admin sees both workers, the occupied room, the support queue, Redis, and the plots.
    boss = admin(cluster.a)
    overview = cluster.a.call("GET", "/api/console/overview", user=boss).json()
    assert {w["port"] for w in overview["workers"]} == {cluster.a.proc.port, cluster.b.proc.port}
    console = open_page(cluster.a.base, "console", viewport={"width": 1280, "height": 900})
    ConsolePage(console, cluster.a.base).open(ADMIN_NAME, ADMIN_PASSWORD)
    expect(console.locator("#workers tr[data-worker-id]")).to_have_count(2, timeout=10_000)
    expect(console.locator("#rooms-table")).to_contain_text("general", timeout=10_000)
    expect(console.locator("#redis-nodes")).to_contain_text("standalone")
    expect(console.locator("#queue-table tr[data-ticket-id='WQ-1']")).to_contain_text(name, timeout=10_000)
    expect(console.locator("#queue-empty")).to_be_hidden()
    for canvas in ("#plot-rps", "#plot-p99"):
        painted = console.evaluate(f"""() => {{
            const c = document.querySelector('{canvas}'); const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
            let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++; return n; }}""")
        assert painted > 100, f"{canvas} looks blank ({painted} painted pixels)"
        assert console.locator(canvas).get_attribute("aria-label")
    # The live tail of chats-public shows a room's count changing.
    console.fill("#tail-channel", "chats-public")
    console.click("#tail-start")
    console.wait_for_timeout(500)
    chat.leave()
    expect(console.locator("#tail-events li").filter(has_text="room-updated").first).to_be_visible(timeout=5_000)
    screenshot(console, "console.png")


def test_ryo_answers_and_the_page_shows_the_limiter_state(make_cluster, open_page):
    c = make_cluster(1, AI_RATE_LIMIT=2)
    page = open_page(c.a.base, "ryo")
    chat = ChatPage(page, c.a.base).open().register(unique("asker"))
    chat.enter("general")
    for remaining in ("1", "0"):
        page.fill("#message-input", "hello ryo, what is presence?")
        page.click("#ask-ryo-button")
        expect(page.locator("#ryo-status")).to_have_attribute("data-remaining", remaining, timeout=10_000)
    expect(page.locator("#messages li.message.ai")).to_have_count(2, timeout=10_000)
    expect(page.locator("#ask-ryo-button")).to_be_disabled()
    reset = int(page.locator("#ryo-status").get_attribute("data-reset"))
    assert 0 < reset <= 60
    expect(page.locator("#ryo-status")).to_contain_text("try again in")


def test_search_as_you_type_then_a_private_room_appears_live_for_the_other(cluster, open_page):
    ana, ben = unique("sa"), unique("sb")
    register(cluster.b, ben)
    a = ChatPage(open_page(cluster.a.base, "ana"), cluster.a.base).open().register(ana)
    b = ChatPage(open_page(cluster.b.base, "ben"), cluster.b.base).open().login(ben)
    a.page.locator("#user-search").press_sequentially(ben[:5])
    hit = a.page.locator(f'#search-results li[data-username="{ben}"]')
    expect(hit).to_have_count(1)
    hit.locator(".start-private").click()
    expect(a.page.locator("#room-view")).to_have_attribute("data-room-id", re.compile(r"."))
    room_id = a.page.locator("#room-view").get_attribute("data-room-id")
    assert room_id not in ("general", "random")
    # Ben's room list gets the room without a reload (private-chats-<ben>), and the two talk in it.
    expect(b.room(room_id)).to_have_count(1, timeout=5_000)
    b.enter(room_id)
    a.wait_member(ben, True)
    text = unique("private ")
    b.post(text)
    expect(a.message(text)).to_have_count(1)
    # A third user cannot read it.
    outsider = register(cluster.a, unique("out"))
    assert cluster.a.call("GET", f"/api/rooms/{room_id}/messages", user=outsider).status_code == 403


def test_a_support_ticket_between_a_customer_and_an_agent(cluster, open_page):
    ticket = unique("t")
    customer = unique("cust")
    customer_user = register(cluster.a, customer)
    cpage = open_page(cluster.a.base, "customer")
    ChatPage(cpage, cluster.a.base).open().login(customer)
    apage = open_page(cluster.b.base, "agent")
    ChatPage(apage, cluster.b.base).open().login(ADMIN_NAME, ADMIN_PASSWORD)
    cpage.fill("#ticket-id", ticket)
    cpage.select_option("#ticket-role", "customer")
    cpage.click("#ticket-join")
    expect(cpage.locator(f'#ticket-members li[data-username="{customer}"]')).to_have_attribute("data-role", "customer")
    apage.fill("#ticket-id", ticket)
    apage.select_option("#ticket-role", "agent")
    apage.click("#ticket-join")
    for page in (cpage, apage):
        expect(page.locator(f'#ticket-members li[data-username="{ADMIN_NAME}"]')).to_have_attribute("data-role", "agent")
        expect(page.locator(f'#ticket-members li[data-username="{customer}"]')).to_have_attribute("data-role", "customer")
    cpage.locator("#ticket-input").press_sequentially("my order")
    expect(apage.locator("#ticket-typing")).to_have_attribute("data-users", customer)
    text = unique("where is my order ")
    cpage.fill("#ticket-input", text)
    cpage.click("#ticket-send")
    expect(apage.locator("#ticket-messages")).to_contain_text(text)
    apage.fill("#meta-priority", "high")
    apage.fill("#meta-assigned", ADMIN_NAME)
    apage.click("#meta-save")
    expect(cpage.locator("#meta-priority")).to_have_value("high")
    # The customer cannot close; the agent can, and the transcript stays readable.
    assert cluster.a.call("POST", f"/support/{ticket}/close", user=customer_user, json={}).status_code == 403
    apage.click("#ticket-close")
    expect(cpage.locator("#ticket-view")).to_contain_text("closed", ignore_case=True, timeout=5_000)
    expect(cpage.locator("#ticket-messages")).to_contain_text(text)


def test_a_phone_sized_page_used_by_keyboard_only(cluster, open_page):
    name = unique("kb")
    register(cluster.a, name)
    page = open_page(cluster.a.base, "phone", viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    page.goto(cluster.a.base + "/")
    page.focus("#auth-username")
    page.keyboard.type(name)
    page.keyboard.press("Tab")
    page.keyboard.type("password123")
    for _ in range(6):
        if page.evaluate("document.activeElement && document.activeElement.id") == "login-button":
            break
        page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    expect(page.locator("#whoami")).to_have_text(name)
    chat = ChatPage(page, cluster.a.base)
    chat.wait_connected()
    # Enter a room by keyboard: focus its button, press Enter; focus moves to the room's title.
    page.locator('#room-list li[data-room-id="general"] .room-enter').focus()
    page.keyboard.press("Enter")
    expect(page.locator("#room-view")).to_have_attribute("data-room-id", "general")
    page.focus("#message-input")
    page.keyboard.type("typed on a phone")
    page.keyboard.press("Enter")
    expect(chat.message("typed on a phone")).to_have_count(1)
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"the page is {overflow}px wider than a 390px viewport"
    unlabelled = page.evaluate("""() => [...document.querySelectorAll('input, select, textarea, button')]
        .filter(el => !(el.labels && el.labels.length) && !el.getAttribute('aria-label') && !el.getAttribute('aria-labelledby')
                      && !(el.tagName === 'BUTTON' && el.textContent.trim()))
        .map(el => el.outerHTML.slice(0, 80))""")
    assert unlabelled == [], unlabelled
    # One main landmark and one banner in view (the sign-in view, hidden now, has its own).
    assert page.locator("main:visible").count() == 1 and page.locator("header.topbar:visible").count() == 1
    assert page.locator("nav:visible").count() >= 1
    screenshot(page, "web-client-phone.png")


def test_the_session_lives_in_session_storage_and_sign_out_revokes_it(cluster, open_page):
    name = unique("ses")
    page = open_page(cluster.a.base, "session")
    chat = ChatPage(page, cluster.a.base).open().register(name)
    stored = page.evaluate("sessionStorage.getItem('presence.session')")
    assert stored and name in stored
    assert page.evaluate("localStorage.length") == 0
    assert "token" not in page.url
    token = json.loads(stored)["token"]
    page.reload()
    expect(page.locator("#whoami")).to_have_text(name)
    chat.wait_connected()
    page.click("#signout-button")
    expect(page.locator("#auth-view")).to_be_visible()
    assert page.evaluate("sessionStorage.getItem('presence.session')") is None
    r = requests.get(cluster.a.base + "/api/rooms", headers={"Authorization": f"Bearer {token}", "X-Username": name}, timeout=5)
    assert r.status_code == 401


def test_the_console_drops_a_killed_worker_within_its_ttl_and_a_stopped_one_at_once(make_cluster):
    c = make_cluster(3)
    boss = admin(c.a)

    def ports():
        return {w["port"] for w in c.a.call("GET", "/api/console/overview", user=boss).json()["workers"]}

    every = {w.proc.port for w in c.workers}
    assert wait_until(lambda: ports() == every, 10), ports()
    killed, stopped = c.workers[1], c.workers[2]
    killed.proc.stop(signal.SIGKILL)
    start = time.monotonic()
    assert wait_until(lambda: killed.proc.port not in ports(), 20, 0.25), "a killed worker stays listed"
    lapsed = time.monotonic() - start
    assert lapsed <= 15 + 3, lapsed  # three missed 5 s announcements (and a busy machine's slack)
    stopped.proc.stop(signal.SIGTERM)
    assert ports() == {c.a.proc.port}  # retired on its way out, not left to lapse
    print(f"a SIGKILLed worker left the console after {lapsed:.1f} s; a stopped one at once")
