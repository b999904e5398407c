"""WebSocket conformance: Autobahn|Testsuite's sections 1-7 (framing, pings and pongs, reserved bits, opcodes,
fragmentation, UTF-8, closing) and this service's own limits, as raw frames over TCP (websocket_conformance.py).

Every case runs against the test-only echo socket (WEBSOCKET_ECHO_PATH) of one worker; those that need no echo run
against the Pusher socket (/app/<key>) too. Each passes (OK), or is NON-STRICT with its reason stated in the case and in
docs/websocket-conformance.md, whose table must show the verdicts this run found.
"""
import os
import re

import pytest

from conftest import ROOT, RedisProcess, ServerProcess, default_settings, free_port
from websocket_conformance import NON_STRICT, OK, HandshakeRefused, Peer, all_cases, faces_for, run_case

KEY = "conformance-key"
ECHO = "/echo"
CASES = all_cases()
RUNS = [(case, face) for case in CASES for face in faces_for(case)]
VERDICTS = {}  # case id -> {face: verdict}, filled as the cases run


@pytest.fixture(scope="module")
def worker(server_binary):
    """One worker with the echo socket on, for every case (the cases share nothing: each has its own connection)."""
    redis_proc = RedisProcess()
    redis_proc.start()
    settings = dict(default_settings(redis_proc.url), PUSHER_KEY=KEY, WEBSOCKET_ECHO_PATH=ECHO,
                    MAX_CONNECTIONS_PER_ADDRESS=10000)
    proc = ServerProcess(server_binary, {k: str(v) for k, v in settings.items()}, free_port())
    yield proc
    proc.cleanup()
    redis_proc.cleanup()


@pytest.mark.parametrize("case,face", RUNS, ids=[f"{case.id}-{face}" for case, face in RUNS])
def test_case(worker, case, face):
    path = ECHO if face == "echo" else f"/app/{KEY}?protocol=7"
    verdict, detail, _ = run_case(case, "127.0.0.1", worker.port, path, pusher=face == "pusher")
    VERDICTS.setdefault(case.id, {})[face] = verdict
    if verdict == NON_STRICT:
        assert case.accepts_non_strict and case.note, f"{case.id} ({face}): NON-STRICT with no stated reason: {detail}"
    else:
        assert verdict == OK, f"{case.id} ({face}): {verdict}: {detail}"
    assert worker.proc.poll() is None, "the worker died"


def test_the_worker_still_serves(worker):
    assert worker.get("/health").status_code == 200


def test_docs_table_shows_every_case_and_its_verdict():
    """docs/websocket-conformance.md lists every case, with the verdicts of this run (when the cases ran)."""
    with open(os.path.join(ROOT, "docs", "websocket-conformance.md")) as f:
        rows = {}
        for line in f:
            cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
            if line.startswith("| ") and len(cells) >= 4 and re.fullmatch(r"(\d+(\.\d+)+|L\.\d+)", cells[0]):
                rows[cells[0]] = cells[3]
    assert [c.id for c in CASES if c.id not in rows] == [], "cases missing from the docs table"
    assert sorted(set(rows) - {c.id for c in CASES}) == [], "cases in the docs table that do not exist"
    if len(VERDICTS) < len(CASES):
        pytest.skip("not every case ran in this session")
    for case in CASES:
        found = " / ".join(VERDICTS[case.id].get(face, "-") for face in ("echo", "pusher"))
        assert rows[case.id] == found, f"{case.id}: the docs say {rows[case.id]}, this run found {found}"


def test_echo_socket_is_off_by_default(start_server):
    """Without WEBSOCKET_ECHO_PATH no path echoes: the upgrade is refused (the Pusher socket still opens)."""
    redis_proc = RedisProcess()
    redis_proc.start()
    try:
        proc = start_server(**{k: str(v) for k, v in default_settings(redis_proc.url).items()}, PUSHER_KEY=KEY)
        with pytest.raises(HandshakeRefused) as refused:
            Peer("127.0.0.1", proc.port, ECHO)
        assert refused.value.status == 400
        Peer("127.0.0.1", proc.port, f"/app/{KEY}?protocol=7").sock.close()
    finally:
        redis_proc.cleanup()


def test_echo_path_must_not_shadow_the_realtime_sockets(server_binary):
    """A WEBSOCKET_ECHO_PATH that would take /ws or /app/<key> stops start-up with one line naming the setting."""
    import subprocess
    for value in ["/ws", "/app/x", "echo"]:
        out = subprocess.run([server_binary], env=dict(os.environ, WEBSOCKET_ECHO_PATH=value, PORT=str(free_port())),
                             capture_output=True, text=True, timeout=30)
        assert out.returncode != 0 and "WEBSOCKET_ECHO_PATH" in out.stdout + out.stderr, (value, out)
