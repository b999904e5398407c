"""The web client and the console driven in a real browser: Playwright for Python on Debian's chromium.

Shared by the system tests (two workers, straight at them) and the multi-instance tests (through nginx). A page opened
with `open_page` records every uncaught exception and every console error of the page; `ErrorLog.check()` fails the
test on any. Chrome also logs each HTTP answer of 400 or more as a console error ("Failed to load resource"): 4xx
answers are expected (a refused console, a 429), so those are let through; a 5xx never is. WebSocket connection
failures, network errors and nginx's 502 for a request under way on a dying worker are let through only where a test
kills a worker or takes the network away on purpose.
"""
import os
import re
import time

from playwright.sync_api import Page, expect, sync_playwright

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
# Screenshots of each run (not committed; ops/screenshots makes the two in docs/).
ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SCREENSHOTS = os.environ.get("SCREENSHOT_DIR", os.path.join(ROOT, ".data", "screenshots"))

HTTP_4XX = re.compile(r"^Failed to load resource: the server responded with a status of 4\d\d")
WS_FAILED = re.compile(r"^WebSocket connection to '.*' failed")
# What nginx answers for a request that was under way on a worker that died (POSTs are not retried elsewhere).
BAD_GATEWAY = re.compile(r"^Failed to load resource: (the server responded with a status of 502|net::ERR_)")


def launch(playwright):
    args = ["--no-sandbox"] if os.geteuid() == 0 else []
    return playwright.chromium.launch(executable_path=CHROMIUM, args=args)


class ErrorLog:
    def __init__(self, allow_socket_failures: bool = False):
        self.errors = []
        self.allow_socket_failures = allow_socket_failures

    def attach(self, page: Page, label: str):
        page.on("pageerror", lambda error: self.errors.append(f"{label}: uncaught {error}"))
        page.on("console", lambda message: self._console(label, message))

    def _console(self, label, message):
        if message.type != "error":
            return
        text = message.text
        if HTTP_4XX.match(text) or (self.allow_socket_failures and (WS_FAILED.match(text) or BAD_GATEWAY.match(text))):
            return
        self.errors.append(f"{label}: console error {text!r} at {message.location}")

    def check(self):
        assert not self.errors, "JavaScript errors in the browser:\n" + "\n".join(self.errors)


def screenshot(page: Page, name: str):
    os.makedirs(SCREENSHOTS, exist_ok=True)
    page.screenshot(path=os.path.join(SCREENSHOTS, name), full_page=False)


class ChatPage:
    """The chat client at `/`, by the element ids it promises."""

    def __init__(self, page: Page, base: str):
        self.page = page
        self.base = base

    def open(self):
        self.page.goto(self.base + "/")
        expect(self.page.locator("#auth-view, #app-view").first).to_be_visible()
        return self

    def register(self, name: str, password: str = "password123"):
        self.page.fill("#auth-username", name)
        self.page.fill("#auth-password", password)
        self.page.click("#register-button")
        expect(self.page.locator("#whoami")).to_have_text(name)
        self.wait_connected()
        return self

    def login(self, name: str, password: str = "password123"):
        self.page.fill("#auth-username", name)
        self.page.fill("#auth-password", password)
        self.page.click("#login-button")
        expect(self.page.locator("#whoami")).to_have_text(name)
        self.wait_connected()
        return self

    def record_states(self):
        """Starts recording every change of the connection state (window.__states), so a short reconnect is seen."""
        self.page.evaluate("""() => { window.__states = []; const el = document.querySelector('#connection-status');
            new MutationObserver(() => window.__states.push(el.getAttribute('data-state')))
                .observe(el, {attributes: true, attributeFilter: ['data-state']}); }""")

    def states(self):
        return self.page.evaluate("window.__states || []")

    def wait_connected(self, timeout: float = 10):
        expect(self.page.locator("#connection-status")).to_have_attribute("data-state", "connected", timeout=timeout * 1000)

    def room(self, room_id: str):
        return self.page.locator(f'#room-list li[data-room-id="{room_id}"]')

    def enter(self, room_id: str):
        self.room(room_id).locator(".room-enter").click()
        expect(self.page.locator("#room-view")).to_have_attribute("data-room-id", room_id)
        self.wait_member(self.name, True)

    @property
    def name(self) -> str:
        return self.page.locator("#whoami").inner_text()

    def member(self, name: str):
        return self.page.locator(f'#members li[data-username="{name}"]')

    def wait_member(self, name: str, present: bool, timeout: float = 10) -> float:
        """Waits until `name` is (or is not) in the member list; returns the seconds it took."""
        start = time.monotonic()
        if present:
            expect(self.member(name)).to_have_count(1, timeout=timeout * 1000)
        else:
            expect(self.member(name)).to_have_count(0, timeout=timeout * 1000)
        return time.monotonic() - start

    def message(self, text: str):
        return self.page.locator("#messages li.message .message-text", has_text=text)

    def post(self, text: str):
        self.page.fill("#message-input", text)
        self.page.click("#send-button")

    def start_typing(self, text: str = "hello"):
        self.page.locator("#message-input").press_sequentially(text)

    def typing_users(self) -> str:
        return self.page.locator("#typing").get_attribute("data-users") or ""

    def leave(self):
        self.page.click("#leave-room")


class ConsolePage:
    def __init__(self, page: Page, base: str):
        self.page = page
        self.base = base

    def open(self, name: str, password: str):
        self.page.goto(self.base + "/console")
        form = self.page.locator("#console-auth-form")
        if form.is_visible():
            self.page.fill("#console-username", name)
            self.page.fill("#console-password", password)
            self.page.click("#console-login")
        return self


def measured(action, wait) -> float:
    """Runs `action`, then `wait`; returns the seconds from the start of the action until `wait` returned."""
    start = time.monotonic()
    action()
    wait()
    return time.monotonic() - start


__all__ = ["sync_playwright", "expect", "launch", "ErrorLog", "ChatPage", "ConsolePage", "screenshot", "measured"]
