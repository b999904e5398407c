"""Takes the two screenshots the README shows (docs/web-client.png, docs/console.png) from a live `ops/cluster`:
three users chatting in a room, then the console after a couple of minutes of traffic, so its plots have something
to draw. Run through ops/screenshots, which starts and stops the cluster."""
import os
import random
import threading
import time

import requests
from playwright.sync_api import expect, sync_playwright

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
URL = os.environ["CLUSTER_URL"]
ADMIN, ADMIN_PASSWORD = os.environ["ADMIN_USERS"], os.environ["ADMIN_PASSWORD"]
TRAFFIC_SECONDS = float(os.environ.get("TRAFFIC_SECONDS", "120"))


def account(name):
    r = requests.post(URL + "/api/auth/register", json={"username": name, "password": "password123"}, timeout=10)
    if r.status_code == 409:
        r = requests.post(URL + "/api/auth/login", json={"username": name, "password": "password123"}, timeout=10)
    r.raise_for_status()
    return {"Authorization": f"Bearer {r.json()['token']}", "X-Username": name}


def traffic(stop):
    """Readers and a few switching users, so the plots show a request rate and a p99 per worker."""
    users = [(f"visitor{i}", account(f"visitor{i}")) for i in range(6)]
    session = requests.Session()
    for name, auth in users:
        session.post(URL + "/api/presence/switch", json={"nextRoomId": "general", "username": name}, headers=auth, timeout=10)
    while not stop.is_set():
        name, auth = random.choice(users)
        room = random.choice(["general", "random"])
        if random.random() < 0.02:  # within PRESENCE_RATE_LIMIT
            session.post(URL + "/api/presence/switch", json={"nextRoomId": room, "username": name}, headers=auth, timeout=10)
        for path in ("/api/rooms", f"/api/rooms/{room}/users", f"/api/rooms/{room}/messages?limit=20"):
            session.get(URL + path, timeout=10)
        time.sleep(0.02)


def sign_in(page, name):
    page.goto(URL + "/")
    page.fill("#auth-username", name)
    page.fill("#auth-password", "password123")
    page.click("#login-button")
    expect(page.locator("#connection-status")).to_have_attribute("data-state", "connected", timeout=15_000)


def main():
    for name in ("maya", "jonas", "lina"):
        account(name)
    stop = threading.Event()
    thread = threading.Thread(target=traffic, args=(stop,), daemon=True)
    thread.start()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"] if os.geteuid() == 0 else [])
        pages = {}
        for name in ("maya", "jonas", "lina"):
            pages[name] = browser.new_context(viewport={"width": 1280, "height": 760}).new_page()
            sign_in(pages[name], name)
            pages[name].locator('#room-list li[data-room-id="general"] .room-enter').click()
        lines = [("jonas", "Morning! Is the deploy still on for 11?"), ("lina", "Yes, all three workers are green."),
                 ("maya", "I'll watch the console while it rolls."), ("jonas", "Ping me if the p99 moves.")]
        for name, text in lines:
            pages[name].fill("#message-input", text)
            pages[name].click("#send-button")
            time.sleep(0.3)
        pages["maya"].fill("#message-input", "What does presence mean here?")
        pages["maya"].click("#ask-ryo-button")
        expect(pages["maya"].locator("#messages li.message.ai")).to_have_count(1, timeout=15_000)
        pages["lina"].locator("#message-input").press_sequentially("On it", delay=50)
        expect(pages["maya"].locator("#typing")).to_have_attribute("data-users", "lina", timeout=5_000)
        pages["maya"].screenshot(path=os.path.join(ROOT, "docs", "web-client.png"))
        console = browser.new_context(viewport={"width": 1280, "height": 1000}).new_page()
        console.goto(URL + "/console")
        console.fill("#console-username", ADMIN)
        console.fill("#console-password", ADMIN_PASSWORD)
        console.click("#console-login")
        expect(console.locator("#workers tr[data-worker-id]").first).to_be_visible(timeout=15_000)
        time.sleep(TRAFFIC_SECONDS)
        console.evaluate("window.scrollTo(0, 0)")
        console.wait_for_timeout(2500)
        console.screenshot(path=os.path.join(ROOT, "docs", "console.png"))
        browser.close()
    stop.set()
    thread.join()
    print("wrote docs/web-client.png and docs/console.png")


if __name__ == "__main__":
    main()
