"""Support ticket attendance (#32) through two worker processes: every presence in a ticket kept as an interval with
its role and reason (left, expired, closed) in Redis (`room:{ticket_<id>}:attendance`), written by the step that ends
the presence; `GET /support/{ticketId}/attendance` for agents and admins; the close snapshot's firstAgentAfterMs and
agentPresentMs. Runs on one Redis and, in ./ops/test's cluster pass, on a Redis Cluster."""
import time

from conftest import register, wait_until
from test_support_api import setup_people

TICKET = "AT-1"
ROOM = f"ticket_{TICKET}"
KEY = f"room:{{{ROOM}}}:attendance"


def attendance(worker, user, ticket=TICKET):
    r = worker.call("GET", f"/support/{ticket}/attendance", user=user)
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"ticketId", "intervals"} and body["ticketId"] == ticket
    for interval in body["intervals"]:
        assert set(interval) == {"user", "role", "from", "to", "reason"}, interval
        assert (interval["to"] is None) == (interval["reason"] is None), interval
        assert interval["to"] is None or interval["to"] >= interval["from"], interval
    return body["intervals"]


def summary(intervals):
    return [(x["user"], x["role"], x["reason"]) for x in intervals]


def agent_union(intervals):
    """The length of the union of the agent intervals (ms), as the snapshot's agentPresentMs means it."""
    spans = sorted((x["from"], x["to"]) for x in intervals if x["role"] == "agent")
    total, current = 0, None
    for start, end in spans:
        if current and start <= current[1]:
            current = (current[0], max(current[1], end))
        else:
            if current:
                total += current[1] - current[0]
            current = (start, end)
    return total + (current[1] - current[0] if current else 0)


def join(worker, user, role=None):
    r = worker.call("POST", f"/support/{TICKET}/join", user=user, json={"role": role} if role else {})
    assert r.status_code == 200, r.text
    time.sleep(0.01)  # distinct join times, so the expected order is the only one
    return r.json()["member"]


def test_attendance_after_close_and_reopen_lists_every_interval(make_cluster):
    c = make_cluster(2, SUPPORT_PRESENCE_TTL=2, SWEEP_INTERVAL_MS=200)
    a, b, r = c.a, c.b, c.redis()
    boss, agent1, cust, other = setup_people(c)
    agent2 = register(a, "agent2")
    assert a.call("PUT", "/api/admin/agents/agent2", user=boss).status_code == 200

    # The customer opens the ticket; two agents come; agent1 leaves; agent2 stops its heartbeats and expires.
    join(a, cust)
    join(b, agent1, "agent")
    join(a, agent2, "agent")
    assert b.call("POST", f"/support/{TICKET}/leave", user=agent1).json() == {"success": True}
    now = attendance(a, agent2)
    assert summary(now) == [("agent1", "agent", "left"), ("cust1", "customer", None), ("agent2", "agent", None)]

    def agent2_expired():
        b.call("POST", f"/support/{TICKET}/heartbeat", user=cust)  # the customer stays
        return [x for x in attendance(b, agent1) if x["user"] == "agent2" and x["reason"] == "expired"]
    expired = wait_until(agent2_expired, 10, 0.4)
    assert expired, "agent2's presence did not expire"
    # An expired presence ends at its deadline (its join plus SUPPORT_PRESENCE_TTL: it never sent a heartbeat), not
    # when the sweeper got to it.
    joined2 = next(x for x in now if x["user"] == "agent2")["from"]
    assert expired[0]["to"] == joined2 + 2000

    # agent1 comes back; the ticket closes with the customer and agent1 present.
    join(b, agent1, "agent")
    assert summary(attendance(a, boss)) == [
        ("agent1", "agent", "left"), ("agent2", "agent", "expired"), ("cust1", "customer", None), ("agent1", "agent", None),
    ]
    assert a.call("POST", f"/support/{TICKET}/close", user=agent1, json={}).json()["closed"] is True
    first = attendance(b, agent1)
    assert summary(first) == [
        ("cust1", "customer", "closed"), ("agent1", "agent", "left"), ("agent2", "agent", "expired"),
        ("agent1", "agent", "closed"),
    ]
    snapshot = a.call("GET", f"/support/{TICKET}/snapshot", user=agent1).json()["snapshot"]
    assert all(x["to"] == snapshot["closedAt"] for x in first if x["reason"] == "closed")
    assert snapshot["firstAgentAfterMs"] == first[1]["from"] - snapshot["createdAt"] > 0
    assert snapshot["agentPresentMs"] == agent_union(first) > 0
    # The snapshot's other fields are as before.
    assert sorted((m["username"], m["role"]) for m in snapshot["members"]) == [("agent1", "agent"), ("cust1", "customer")]
    assert snapshot["closedBy"] == "agent1" and snapshot["messageCount"] == 0
    # Kept in Redis after the close, with the transcript, under the ticket's hash tag.
    assert r.llen(KEY) == 4 and r.exists(f"room:{{{ROOM}}}:meta")
    assert not r.exists(f"room:{{{ROOM}}}:members", f"room:{{{ROOM}}}:joined")

    # Reopened: the customer comes and goes, agent2 joins as an observer, and the ticket closes again.
    assert b.call("POST", f"/support/{TICKET}/reopen", user=boss).status_code == 200
    join(a, cust)
    join(b, agent2, "observer")
    assert a.call("POST", f"/support/{TICKET}/leave", user=cust).json() == {"success": True}
    assert b.call("POST", f"/support/{TICKET}/close", user=boss, json={}).json()["closed"] is True
    everything = attendance(a, agent2)
    assert summary(everything) == [
        ("cust1", "customer", "closed"), ("agent1", "agent", "left"), ("agent2", "agent", "expired"),
        ("agent1", "agent", "closed"), ("cust1", "customer", "left"), ("agent2", "observer", "closed"),
    ]
    assert everything[:4] == first, "the first period's intervals are unchanged"
    assert all(x["from"] > snapshot["closedAt"] for x in everything[4:])
    again = a.call("GET", f"/support/{TICKET}/snapshot", user=boss).json()["snapshot"]
    assert everything[-1]["to"] == again["closedAt"]
    # Over the ticket's whole life: the first agent is the same, and an observer adds no agent time.
    assert again["firstAgentAfterMs"] == snapshot["firstAgentAfterMs"]
    assert again["agentPresentMs"] == snapshot["agentPresentMs"] == agent_union(everything)
    assert r.llen(KEY) == 6


def test_only_agents_and_admins_read_it_and_bad_ids_are_refused(cluster):
    a, b = cluster.a, cluster.b
    boss, agent, cust, other = setup_people(cluster)
    assert a.call("POST", f"/support/{TICKET}/join", user=cust, json={}).status_code == 200
    # The customer of the ticket and a stranger: 403, on an existing ticket and on one that does not exist.
    for user in (cust, other):
        for ticket in (TICKET, "NOPE"):
            res = b.call("GET", f"/support/{ticket}/attendance", user=user)
            assert res.status_code == 403 and res.json() == {"error": "Forbidden"}, (user.name, ticket)
    for bad in ("bad%20id", "x" * 65, "semi;colon"):
        res = b.call("GET", f"/support/{bad}/attendance", user=agent)
        assert res.status_code == 400 and res.json() == {"error": "Invalid ticket ID format"}, bad
    res = b.call("GET", "/support/NOPE/attendance", user=agent)
    assert res.status_code == 404 and res.json() == {"error": "Room not found"}
    assert b.call("GET", f"/support/{TICKET}/attendance").status_code == 401
    # Agents and admins: the customer present now, as an open interval.
    for user in (agent, boss):
        assert summary(attendance(b, user)) == [("cust1", "customer", None)]
    # A chat room's id is not a ticket.
    assert b.call("GET", "/support/general/attendance", user=agent).status_code == 404


def test_the_attendance_goes_only_with_the_history(cluster):
    a, r = cluster.a, cluster.redis()
    boss, agent, cust, other = setup_people(cluster)
    for ticket, delete in (("AT-2", False), ("AT-3", True)):
        assert a.call("POST", f"/support/{ticket}/join", user=cust, json={}).status_code == 200
        assert a.call("POST", f"/support/{ticket}/messages", user=cust, json={"content": "hello"}).status_code == 201
        res = a.call("POST", f"/support/{ticket}/close", user=agent, json={"deleteHistory": delete})
        assert res.json()["historyKept"] is (not delete)
        kept = attendance(a, agent, ticket)
        assert summary(kept) == ([] if delete else [("cust1", "customer", "closed")])
        assert bool(r.exists(f"room:{{ticket_{ticket}}}:attendance")) is (not delete)
        assert bool(r.exists(f"room:{{ticket_{ticket}}}:history")) is (not delete)
