"""Unattended support tickets (#32) through two worker processes: a ticket whose customer is present with no agent
present for SUPPORT_UNATTENDED_AFTER seconds gets `ticket-unattended` on its channel and on `private-support-queue`,
and one `ticket_unattended` webhook, once per episode; an agent's join sends `ticket-attended` with the wait; the agent
leaving while the customer stays starts a new episode. `GET /api/support/queue` lists the waiting tickets, longest
first. Runs on one Redis and, in ./ops/test's cluster pass, on a Redis Cluster."""
import time

from conftest import Subscription, register, wait_until
from test_support_api import setup_people
from test_webhooks import PUSHER_ENV, Receiver

AFTER = 2  # SUPPORT_UNATTENDED_AFTER in the tests (s)


def join(worker, ticket, user, role=None):
    r = worker.call("POST", f"/support/{ticket}/join", user=user, json={"role": role} if role else {})
    assert r.status_code == 200, r.text
    return r.json()["member"]


def leave(worker, ticket, user):
    assert worker.call("POST", f"/support/{ticket}/leave", user=user).json() == {"success": True}


def queue(worker, user):
    r = worker.call("GET", "/api/support/queue", user=user)
    assert r.status_code == 200, r.text
    tickets = r.json()["tickets"]
    for t in tickets:
        assert set(t) == {"ticketId", "customer", "waitingSinceMs", "waitMs", "assignedAgentId", "unattended"}, t
    return tickets


def gauge(worker, name):
    import re
    m = re.search(rf"^{name}(?:{{[^}}]*}})? ([0-9.e+-]+)$", worker.metrics(), re.M)
    return float(m.group(1)) if m else None


def named(events, name, channel=None):
    return [e for e in events if e["event"] == name and (channel is None or e["channel"] == channel)]


def data(event):
    import json
    return json.loads(event["data"]) if isinstance(event["data"], str) else event["data"]


def test_unattended_once_per_episode_attended_with_the_wait(make_cluster):
    everything, only, other = Receiver(), Receiver(), Receiver()
    try:
        urls = f"{everything.url},{only.url}|ticket_unattended,{other.url}|channel_occupied"
        c = make_cluster(2, **PUSHER_ENV, WEBHOOK_URLS=urls, SUPPORT_UNATTENDED_AFTER=AFTER, SWEEP_INTERVAL_MS=200)
        a, b, r = c.a, c.b, c.redis()
        boss, agent, cust, _ = setup_people(c)
        ticket, channel = "UA-1", "private-room-ticket_UA-1"
        sub = Subscription(r, [channel, "private-support-queue"])
        assert a.call("POST", f"/support/{ticket}/metadata", user=boss, json={"assignedAgentId": "agent1"}).status_code == 200

        # The customer joins; no agent does. The queue shows the ticket at once, not unattended yet.
        join(a, ticket, cust)
        started = time.time()
        q = queue(b, agent)
        assert [(t["ticketId"], t["customer"], t["assignedAgentId"], t["unattended"]) for t in q] == \
            [(ticket, "cust1", "agent1", False)]
        assert r.hget(f"room:{{ticket_{ticket}}}:waiting", "notified") == "0"

        # ticket-unattended once, after AFTER seconds, on both channels.
        seen = []
        assert wait_until(lambda: seen.extend(sub.events(0.2)) or named(seen, "ticket-unattended"), AFTER + 8, 0.05)
        elapsed = time.time() - started
        assert elapsed >= AFTER - 0.3, elapsed
        seen += sub.events(AFTER + 1.5)  # nothing more comes while the episode goes on
        unattended = named(seen, "ticket-unattended")
        assert sorted(e["channel"] for e in unattended) == sorted([channel, "private-support-queue"]), unattended
        first = data(unattended[0])
        assert set(first) == {"ticketId", "customer", "waitingSinceMs", "waitMs", "assignedAgentId"}
        assert (first["ticketId"], first["customer"], first["assignedAgentId"]) == (ticket, "cust1", "agent1")
        assert first["waitMs"] >= AFTER * 1000
        assert data(unattended[1]) == first
        q = queue(a, boss)
        assert [(t["ticketId"], t["unattended"], t["waitingSinceMs"]) for t in q] == [(ticket, True, first["waitingSinceMs"])]
        assert q[0]["waitMs"] >= first["waitMs"]
        # The gauges, on every worker: one ticket unattended now, the longest wait at least AFTER.
        for w in (a, b):
            assert wait_until(lambda: gauge(w, "support_tickets_unattended") == 1
                              and (gauge(w, "support_longest_wait_seconds") or 0) >= AFTER, 5, 0.1), w.metrics()

        # An agent joins: ticket-attended with the wait, on both channels; the queue is empty.
        join(b, ticket, agent, "agent")
        seen = sub.events(1.5)
        attended = named(seen, "ticket-attended")
        assert sorted(e["channel"] for e in attended) == sorted([channel, "private-support-queue"]), seen
        wait = data(attended[0])
        assert (wait["ticketId"], wait["waitingSinceMs"], wait["wasUnattended"]) == (ticket, first["waitingSinceMs"], True)
        assert wait["waitMs"] >= first["waitMs"]
        assert queue(b, agent) == []
        assert not r.exists(f"room:{{ticket_{ticket}}}:waiting")
        assert wait_until(lambda: gauge(a, "support_tickets_unattended") == 0
                          and gauge(a, "support_longest_wait_seconds") == 0, 5, 0.1), a.metrics()
        assert not named(sub.events(AFTER + 1), "ticket-unattended")  # attended: no notice

        # The agent leaves while the customer stays: a new episode, and its own notice.
        leave(b, ticket, agent)
        q = queue(a, agent)
        assert [(t["ticketId"], t["unattended"]) for t in q] == [(ticket, False)]
        assert q[0]["waitingSinceMs"] > first["waitingSinceMs"]
        seen = []
        assert wait_until(lambda: seen.extend(sub.events(0.2)) or named(seen, "ticket-unattended"), AFTER + 8, 0.05)
        seen += sub.events(AFTER + 1)
        second = named(seen, "ticket-unattended")
        assert len(second) == 2, second
        assert data(second[0])["waitingSinceMs"] == q[0]["waitingSinceMs"]

        # The customer leaves: the episode ends with no ticket-attended, the queue is empty, nothing more is sent.
        leave(a, ticket, cust)
        seen = sub.events(AFTER + 1.5)
        assert not named(seen, "ticket-attended") and not named(seen, "ticket-unattended"), seen
        assert queue(a, boss) == []

        # The customer comes back and the ticket closes before AFTER: no notice for that episode.
        join(b, ticket, cust)
        assert len(queue(a, agent)) == 1
        assert a.call("POST", f"/support/{ticket}/close", user=agent, json={}).status_code == 200
        assert queue(a, agent) == []
        assert not named(sub.events(AFTER + 1.5), "ticket-unattended")

        # The webhook: once per notified episode (two), whatever the number of workers; a filter selects it.
        def hooks(rx):
            return [e for e in rx.all() if e["name"] == "ticket_unattended"]
        assert wait_until(lambda: len(hooks(everything)) >= 2 and len(hooks(only)) >= 2, 15, 0.1)
        everything.settle(quiet=1.5)
        only.settle(quiet=0.5)
        for rx in (everything, only):
            got = hooks(rx)
            assert len(got) == 2, got
            for hook, notice in zip(got, [first, data(second[0])]):
                assert hook["channel"] == channel
                assert {k: hook[k] for k in notice} == notice, (hook, notice)
        assert [e["name"] for e in only.all()] == ["ticket_unattended"] * 2
        assert not hooks(other)
        for rx in (everything, only, other):
            rx.assert_clean()
        sub.close()
    finally:
        for rx in (everything, only, other):
            rx.stop()


def test_queue_longest_first_and_who_may_see_it(make_cluster):
    c = make_cluster(2, SUPPORT_UNATTENDED_AFTER=60)
    a, b = c.a, c.b
    boss, agent, cust, other = setup_people(c)
    cust2 = register(a, "cust2")
    join(a, "Q-1", cust)
    time.sleep(0.05)
    join(b, "Q-2", cust2)
    time.sleep(0.05)
    join(a, "Q-3", agent, "agent")  # an agent alone: nobody waits
    join(b, "Q-4", other)
    join(a, "Q-4", agent, "observer")  # observers do not count
    q = queue(a, boss)
    assert [t["ticketId"] for t in q] == ["Q-1", "Q-2", "Q-4"]
    assert q[0]["waitMs"] >= q[1]["waitMs"] >= q[2]["waitMs"]
    assert all(t["unattended"] is False and t["assignedAgentId"] is None for t in q)
    assert [t["customer"] for t in q] == ["cust1", "cust2", "other1"]
    # An admin joining counts as an agent.
    join(b, "Q-2", boss, "agent")
    assert [t["ticketId"] for t in queue(b, agent)] == ["Q-1", "Q-4"]

    # Agents and admins only: 403 for a customer and a stranger, 401 without a token.
    for user in (cust, other):
        r = a.call("GET", "/api/support/queue", user=user)
        assert r.status_code == 403 and r.json() == {"error": "Forbidden"}, r.text
    assert a.call("GET", "/api/support/queue").status_code == 401

    # private-support-queue: signed for agents and admins, refused to everyone else.
    for user, ok in ((agent, True), (boss, True), (cust, False), (other, False)):
        r = a.call("POST", "/pusher/auth", user=user, data={"socket_id": "1.1", "channel_name": "private-support-queue"})
        assert (r.status_code == 200) == ok, (user, r.status_code, r.text)
        if ok:
            assert "auth" in r.json()
        else:
            assert r.status_code == 403, r.text
    assert a.call("POST", "/pusher/auth", data={"socket_id": "1.1", "channel_name": "private-support-queue"}).status_code == 401


def test_the_queue_channel_over_a_socket_and_its_end_when_the_agent_is_removed(make_cluster):
    """An agent's socket on worker b, signed through worker a, gets ticket-unattended on private-support-queue; once an
    admin removes the agent, the subscription ends (AccessRevoked) on every worker, and a fresh signature is refused."""
    from test_security_model import PUSHER, REVOKED, SUB_ERROR, Socket, channel_auth, data_of, join_channel
    c = make_cluster(2, **PUSHER, SUPPORT_UNATTENDED_AFTER=1, SWEEP_INTERVAL_MS=200)
    a, b = c.a, c.b
    boss, agent, cust, _ = setup_people(c)
    queue_channel = "private-support-queue"
    agent_ws, cust_ws = Socket(b), Socket(b)
    join_channel(a, agent, agent_ws, queue_channel)
    # The customer's own socket cannot hold it.
    assert channel_auth(a, cust, cust_ws, queue_channel).status_code == 403
    join(a, "SQ-1", cust)
    notice = agent_ws.wait_for(lambda m: m["event"] == "ticket-unattended" and m.get("channel") == queue_channel, 10)
    assert data_of(notice)["ticketId"] == "SQ-1" and data_of(notice)["customer"] == "cust1"
    assert a.call("DELETE", "/api/admin/agents/agent1", user=boss).json() == {"success": True}
    err = agent_ws.wait_for(lambda m: m["event"] == SUB_ERROR and m.get("channel") == queue_channel, 5)
    assert data_of(err) == REVOKED, err
    for w in (a, b):
        assert channel_auth(w, agent, agent_ws, queue_channel).status_code == 403
    agent_ws.close()
    cust_ws.close()
