"""WebSocket conformance cases for this service's own frame layer, after Autobahn|Testsuite's fuzzing-client sections
1-7 (framing, pings and pongs, reserved bits, opcodes, fragmentation, UTF-8, closing).

Autobahn's `wstest` is Python 2 and cannot run here, so this is our own code: a small raw client (handshake, masking,
frame building, reading frames and the close) and the cases, written from Autobahn's published case descriptions
(github.com/crossbario/autobahn-testsuite, autobahntestsuite/case/case1_*.py ... case7_*.py). Each case sends frames,
observes what comes back and how the connection ends, and is judged as Autobahn judges it:

- the events received (echoed messages, pongs, and `timeout` markers where a case waits and the connection is still
  open) must equal the case's OK list, else its NON-STRICT list (if any), else the case FAILED;
- the close must be what the case expects: initiated by the right side, clean (both close frames, then the server
  closes TCP) where required, with an allowed code, and the TCP connection closed by the server, not dropped by us.
  A close that is wrong in any of these fails the case.

Cases "L.*" are this service's own (limits and rules the Autobahn client cannot exercise).

Run against a worker started with WEBSOCKET_ECHO_PATH (Tests/system/test_websocket_conformance.py does), or by hand:
    python3 Tests/system/websocket_conformance.py --port 8080 [--echo /echo] [--key presence-key] [--markdown]
"""
import argparse
import base64
import hashlib
import os
import select
import socket
import struct
import sys
import time
from dataclasses import dataclass
from typing import Callable, Optional

OK, NON_STRICT, FAILED = "OK", "NON-STRICT", "FAILED"
GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
CONTINUATION, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
# How long a case waits where Autobahn's waits 1 s (the server under test answers within milliseconds).
SETTLE = 0.4


def mask_bytes(payload: bytes, key: bytes) -> bytes:
    if not payload:
        return b""
    n = len(payload)
    stream = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(stream, "big")).to_bytes(n, "big")


def frame_header(opcode: int, length: int, fin: bool = True, rsv: int = 0, key: Optional[bytes] = None) -> bytes:
    first = (0x80 if fin else 0) | (rsv & 7) << 4 | (opcode & 0xF)
    mask_bit = 0x80 if key is not None else 0
    if length < 126:
        head = struct.pack("!BB", first, mask_bit | length)
    elif length < 1 << 16:
        head = struct.pack("!BBH", first, mask_bit | 126, length)
    else:
        head = struct.pack("!BBQ", first, mask_bit | 127, length)
    return head + (key or b"")


def build_frame(opcode: int, payload: bytes = b"", fin: bool = True, rsv: int = 0, masked: bool = True) -> bytes:
    key = os.urandom(4) if masked else None
    body = mask_bytes(payload, key) if key else payload
    return frame_header(opcode, len(payload), fin, rsv, key) + body


def close_payload(code: Optional[int] = None, reason: bytes = b"") -> bytes:
    return b"" if code is None else struct.pack("!H", code) + reason


class Peer:
    """One raw WebSocket client connection. Reads frames as they come (answering pings and the server's close, as a
    client does) and records what it saw: `events`, the server's close, who closed first and how TCP ended."""

    def __init__(self, host: str, port: int, path: str, timeout: float = 5.0):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buffer = b""
        self.events = []
        self.partial = None  # (opcode, [payloads]) of a fragmented message being received
        self.close_sent = False
        self.closed_by_me = False  # our close frame went out before the server's arrived
        self.remote_close = None  # (code or None, reason bytes) of the server's close frame
        self.tcp_closed = False  # the server closed (or reset) the TCP connection
        self.reset = False
        self.dropped_by_me = False  # we gave up waiting and closed TCP ourselves
        self.write_failed = False
        self.violations = []  # what the server sent that RFC 6455 forbids
        self._handshake(host, port, path)
        self._parse()  # frames that came with the handshake's answer

    # -- opening handshake

    def _handshake(self, host: str, port: int, path: str):
        key = base64.b64encode(os.urandom(16))
        request = (f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                   f"Sec-WebSocket-Key: {key.decode()}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode()
        self.sock.sendall(request)
        data = b""
        deadline = time.monotonic() + 5
        while b"\r\n\r\n" not in data:
            if time.monotonic() > deadline:
                raise AssertionError(f"no handshake answer: {data!r}")
            chunk = self.sock.recv(4096)
            if not chunk:
                raise ConnectionError(f"closed during the handshake: {data!r}")
            data += chunk
        head, self.buffer = data.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        self.status = int(lines[0].split(" ")[1])
        headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:] if ":" in line)}
        if self.status != 101:
            raise HandshakeRefused(self.status)
        expected = base64.b64encode(hashlib.sha1(key + GUID).digest()).decode()
        assert headers.get("sec-websocket-accept") == expected, headers
        assert headers.get("upgrade", "").lower() == "websocket", headers

    # -- sending

    def write(self, data: bytes, chop: Optional[int] = None, gap: float = 0.001):
        """Sends `data` whole, or in `chop`-byte writes (each its own TCP segment). A failed write (the server may
        have failed the connection already) is noted, not raised."""
        if self.write_failed or self.tcp_closed:
            return
        try:
            if chop:
                for i in range(0, len(data), chop):
                    self.sock.sendall(data[i:i + chop])
                    time.sleep(gap)
            else:
                self.sock.sendall(data)
        except OSError:
            self.write_failed = True

    def send(self, opcode: int, payload: bytes = b"", fin: bool = True, rsv: int = 0, chop: Optional[int] = None,
             sync: bool = False, masked: bool = True):
        """One frame. `chop`: written in pieces of that many bytes; `sync`: the frame is its own TCP segment."""
        self.write(build_frame(opcode, payload, fin, rsv, masked), chop)
        if sync:
            time.sleep(0.005)

    def send_close(self, code: Optional[int] = 1000, reason: bytes = b"", payload: Optional[bytes] = None):
        """Starts (or answers) the closing handshake; `payload`: the frame's whole payload instead of code and reason."""
        self.send(CLOSE, close_payload(code, reason) if payload is None else payload)
        if self.write_failed:
            return
        if self.remote_close is None and not self.close_sent:
            self.closed_by_me = True
        self.close_sent = True

    # -- receiving

    @property
    def is_open(self) -> bool:
        return self.remote_close is None and not self.tcp_closed

    def pump(self, until: Optional[Callable[[], bool]] = None, timeout: float = 1.0) -> bool:
        """Reads and handles frames until `until()` holds, the server closes TCP, or `timeout` passes."""
        deadline = time.monotonic() + timeout
        while True:
            if until is not None and until():
                return True
            if self.tcp_closed:
                return False
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            ready, _, _ = select.select([self.sock], [], [], remaining)
            if not ready:
                continue
            try:
                chunk = self.sock.recv(1 << 16)
            except (ConnectionResetError, BrokenPipeError):
                self.tcp_closed = self.reset = True
                continue
            if not chunk:
                self.tcp_closed = True
                continue
            self.buffer += chunk
            self._parse()

    def _parse(self):
        while len(self.buffer) >= 2:
            first, second = self.buffer[0], self.buffer[1]
            length, offset = second & 0x7F, 2
            if length == 126:
                if len(self.buffer) < 4:
                    return
                length, offset = struct.unpack("!H", self.buffer[2:4])[0], 4
            elif length == 127:
                if len(self.buffer) < 10:
                    return
                length, offset = struct.unpack("!Q", self.buffer[2:10])[0], 10
            key = None
            if second & 0x80:
                self.violations.append("the server masked a frame")
                if len(self.buffer) < offset + 4:
                    return
                key, offset = self.buffer[offset:offset + 4], offset + 4
            if len(self.buffer) < offset + length:
                return
            payload = self.buffer[offset:offset + length]
            self.buffer = self.buffer[offset + length:]
            if key:
                payload = mask_bytes(payload, key)
            self._frame(bool(first & 0x80), (first >> 4) & 7, first & 0xF, payload)

    def _frame(self, fin: bool, rsv: int, opcode: int, payload: bytes):
        if self.remote_close is not None:
            self.violations.append(f"opcode {opcode} after the server's close frame")
            return
        if rsv:
            self.violations.append(f"RSV {rsv} on a server frame")
        if opcode in (TEXT, BINARY):
            if self.partial is not None:
                self.violations.append("a new message inside a fragmented one")
            if fin:
                self.events.append(("message", payload, opcode == BINARY))
            else:
                self.partial = (opcode, [payload])
        elif opcode == CONTINUATION:
            if self.partial is None:
                self.violations.append("a continuation frame with nothing to continue")
                return
            self.partial[1].append(payload)
            if fin:
                first_opcode, parts = self.partial
                self.partial = None
                self.events.append(("message", b"".join(parts), first_opcode == BINARY))
        elif opcode == PING:
            self.events.append(("ping", payload))
            if not self.close_sent:
                self.send(PONG, payload)
        elif opcode == PONG:
            self.events.append(("pong", payload))
        elif opcode == CLOSE:
            code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
            self.remote_close = (code, payload[2:])
            if not self.close_sent:
                # Answer as a client does: the code echoed (none if none), then wait for the server to close TCP.
                self.close_sent = True
                self.send(CLOSE, close_payload(code))
        else:
            self.violations.append(f"reserved opcode {opcode} from the server")

    def wait_closed(self, timeout: float = 3.0):
        """Waits for the server to close TCP; past `timeout`, drops the connection ourselves."""
        self.pump(timeout=timeout)
        if not self.tcp_closed:
            self.dropped_by_me = True
        self.sock.close()

    @property
    def clean(self) -> bool:
        """The closing handshake completed: both close frames, then the server closed TCP."""
        return self.close_sent and self.remote_close is not None and self.tcp_closed and not self.dropped_by_me


class HandshakeRefused(Exception):
    def __init__(self, status: int):
        super().__init__(f"upgrade answered {status}")
        self.status = status


@dataclass
class CloseExpectation:
    by_me: bool  # the client starts the closing handshake (else the server fails the connection)
    codes: tuple  # close codes the server may send
    clean: bool  # the closing handshake must complete
    fatal: bool = False  # closing by the wrong endpoint fails the case outright (the UTF-8 cases)


NORMAL = CloseExpectation(by_me=True, codes=(1000,), clean=True)


def failed_with(*codes: int, fatal: bool = False) -> CloseExpectation:
    return CloseExpectation(by_me=False, codes=codes, clean=False, fatal=fatal)


@dataclass
class Case:
    id: str
    description: str
    expectation: str
    steps: Callable[["Peer"], None]
    expected: dict  # verdict (OK, NON-STRICT) -> the list of events it stands for
    close: CloseExpectation
    # Why this server's outcome is NON-STRICT (the case passes so, with this reason), or a remark for the table.
    note: str = ""
    accepts_non_strict: bool = False
    # A judgement of its own, for the cases Autobahn only reports (7.1.6): (peer) -> (verdict, detail).
    judge: Optional[Callable[["Peer"], tuple]] = None

    @property
    def needs_echo(self) -> bool:
        """The case expects echoed messages: it runs on the echo socket only."""
        return any(event[0] == "message" for events in self.expected.values() for event in events)


@dataclass
class Result:
    case: Case
    face: str
    verdict: str
    detail: str
    events: list

    @property
    def passed(self) -> bool:
        return self.verdict == OK or (self.verdict == NON_STRICT and self.case.accepts_non_strict)


# -- the cases ------------------------------------------------------------------------------------------------------

def message(payload: bytes, binary: bool = False):
    return ("message", payload, binary)


def pong(payload: bytes = b""):
    return ("pong", payload)


def echo_case(cid, description, steps, payload, binary=False, expectation=None, note=""):
    return Case(cid, description, expectation or "The message is echoed back unchanged; clean close with 1000.",
                steps, {OK: [message(payload, binary)]}, NORMAL, note=note)


def fail_case(cid, description, steps, code=1002, expectation=None, ok=None, note=""):
    """The server fails the connection with `code`; with `ok`, what it must have answered before (else nothing, as
    NON-STRICT)."""
    expected = {OK: ok or []}
    if ok:
        expected[NON_STRICT] = []
    return Case(cid, description, expectation or f"The connection is failed at once ({code}).", steps, expected,
                failed_with(code), note=note)


def section1():
    cases = []
    sizes = [0, 125, 126, 127, 128, 65535, 65536]
    for kind, opcode, fill, binary in [("1.1", TEXT, b"*", False), ("1.2", BINARY, b"\xfe", True)]:
        name = "binary" if binary else "text"
        for i, size in enumerate(sizes, 1):
            payload = fill * size
            cases.append(echo_case(f"{kind}.{i}", f"Send a {name} message of {size} bytes.",
                                   lambda p, o=opcode, d=payload: p.send(o, d), payload, binary,
                                   note="64 KiB (65536 bytes) is the largest message; one byte more closes with 1009 "
                                        "(L.1, L.2)" if size == 65536 else ""))
        payload = fill * 65536
        cases.append(echo_case(f"{kind}.8", f"Send a {name} message of 65536 bytes, written in 997-byte pieces.",
                               lambda p, o=opcode, d=payload: p.send(o, d, chop=997), payload, binary))
    return cases


def section2():
    def pings(p, chop=None):
        for i in range(10):
            p.send(PING, f"payload-{i}".encode(), chop=chop)

    ten = [pong(f"payload-{i}".encode()) for i in range(10)]
    pong_expectation = "A pong with the ping's payload; clean close with 1000."
    return [
        Case("2.1", "Send a ping without payload.", pong_expectation, lambda p: p.send(PING), {OK: [pong()]}, NORMAL),
        Case("2.2", "Send a ping with a small text payload.", pong_expectation,
             lambda p: p.send(PING, b"Hello, world!"), {OK: [pong(b"Hello, world!")]}, NORMAL),
        Case("2.3", "Send a ping with a small binary (not UTF-8) payload.", pong_expectation,
             lambda p: p.send(PING, b"\x00\xff\xfe\xfd\xfc\xfb\x00\xff"),
             {OK: [pong(b"\x00\xff\xfe\xfd\xfc\xfb\x00\xff")]}, NORMAL),
        Case("2.4", "Send a ping with a binary payload of 125 bytes.", pong_expectation,
             lambda p: p.send(PING, b"\xfe" * 125), {OK: [pong(b"\xfe" * 125)]}, NORMAL),
        fail_case("2.5", "Send a ping with a binary payload of 126 bytes.", lambda p: p.send(PING, b"\xfe" * 126),
                  expectation="The connection is failed at once (1002): control frames carry at most 125 bytes."),
        Case("2.6", "Send a ping with a payload of 125 bytes, written one byte at a time.", pong_expectation,
             lambda p: p.send(PING, b"\xfe" * 125, chop=1), {OK: [pong(b"\xfe" * 125)]}, NORMAL),
        Case("2.7", "Send an unsolicited pong without payload, then a close.", "Nothing in answer to the pong.",
             lambda p: (p.send(PONG), p.send_close()), {OK: []}, NORMAL),
        Case("2.8", "Send an unsolicited pong with a payload, then a close.", "Nothing in answer to the pong.",
             lambda p: (p.send(PONG, b"unsolicited pong payload"), p.send_close()), {OK: []}, NORMAL),
        Case("2.9", "Send an unsolicited pong with a payload, then a ping with a payload.",
             "Nothing in answer to the pong; a pong with the ping's payload.",
             lambda p: (p.send(PONG, b"unsolicited pong payload"), p.send(PING, b"ping payload")),
             {OK: [pong(b"ping payload")]}, NORMAL),
        Case("2.10", "Send 10 pings with payloads.", "10 pongs with the payloads, in order (not required by the RFC).",
             pings, {OK: ten}, NORMAL),
        Case("2.11", "Send 10 pings with payloads, written one byte at a time.",
             "10 pongs with the payloads, in order (not required by the RFC).", lambda p: pings(p, chop=1), {OK: ten},
             NORMAL),
    ]


def section3():
    hello = b"Hello, world!"
    after_echo = "The echo of the first message, then the connection is failed (1002); no pong."
    return [
        fail_case("3.1", "Send a small text message with RSV = 1.", lambda p: p.send(TEXT, hello, rsv=1),
                  expectation="The connection is failed at once (1002): no extension gives RSV bits a meaning."),
        fail_case("3.2", "Send a small text message, then again with RSV = 2, then a ping.",
                  lambda p: (p.send(TEXT, hello), p.send(TEXT, hello, rsv=2), p.send(PING)),
                  expectation=after_echo, ok=[message(hello)]),
        fail_case("3.3", "As 3.2 with RSV = 3, each frame its own TCP segment.",
                  lambda p: (p.send(TEXT, hello, sync=True), p.send(TEXT, hello, rsv=3, sync=True),
                             p.send(PING, sync=True)), expectation=after_echo, ok=[message(hello)]),
        fail_case("3.4", "As 3.2 with RSV = 4, written one byte at a time.",
                  lambda p: (p.send(TEXT, hello, chop=1), p.send(TEXT, hello, rsv=4, chop=1), p.send(PING, chop=1)),
                  expectation=after_echo, ok=[message(hello)]),
        fail_case("3.5", "Send a small binary message with RSV = 5.",
                  lambda p: p.send(BINARY, b"\x00\xff\xfe\xfd\xfc\xfb\x00\xff", rsv=5)),
        fail_case("3.6", "Send a ping with RSV = 6.", lambda p: p.send(PING, hello, rsv=6)),
        fail_case("3.7", "Send a close frame with RSV = 7.", lambda p: p.send(CLOSE, rsv=7)),
    ]


def section4():
    hello = b"Hello, world!"
    cases = []
    for group, base in [("4.1", 3), ("4.2", 11)]:
        kind = "non-control" if base == 3 else "control"
        cases += [
            fail_case(f"{group}.1", f"Send a frame with the reserved {kind} opcode {base}.", lambda p, o=base: p.send(o)),
            fail_case(f"{group}.2", f"Send a frame with the reserved {kind} opcode {base + 1} and a payload.",
                      lambda p, o=base + 1: p.send(o, b"reserved opcode payload")),
            fail_case(f"{group}.3", f"Send a small text message, a frame with the reserved {kind} opcode {base + 2}, "
                                    "then a ping.",
                      lambda p, o=base + 2: (p.send(TEXT, hello), p.send(o), p.send(PING)),
                      expectation="The echo of the message, then the connection is failed (1002); no pong.",
                      ok=[message(hello)]),
            fail_case(f"{group}.4", f"Send a small text message, a frame with the reserved {kind} opcode {base + 3} "
                                    "and a payload, then a ping.",
                      lambda p, o=base + 3: (p.send(TEXT, hello), p.send(o, hello), p.send(PING)),
                      expectation="The echo of the message, then the connection is failed (1002); no pong.",
                      ok=[message(hello)]),
            fail_case(f"{group}.5", f"As {group}.4 with opcode {base + 4}, written one byte at a time.",
                      lambda p, o=base + 4: (p.send(TEXT, hello, chop=1), p.send(o, hello, chop=1),
                                             p.send(PING, chop=1)),
                      expectation="The echo of the message, then the connection is failed (1002); no pong.",
                      ok=[message(hello)]),
        ]
    return cases


def section5():
    f = [f"fragment{i}".encode() for i in range(1, 6)]
    ping_payload = b"ping payload"
    hello = b"Hello, world!"
    nothing_to_continue = "The connection is failed at once (1002): there is no message to continue."

    def fragmented(sync=False, chop=None):
        return lambda p: (p.send(TEXT, f[0], fin=False, sync=sync, chop=chop),
                          p.send(CONTINUATION, f[1], sync=sync, chop=chop))

    def with_ping(sync=False, chop=None):
        return lambda p: (p.send(TEXT, f[0], fin=False, sync=sync, chop=chop),
                          p.send(PING, ping_payload, sync=sync, chop=chop),
                          p.send(CONTINUATION, f[1], sync=sync, chop=chop))

    def orphan(fin, sync=False, chop=None):
        return lambda p: (p.send(CONTINUATION, b"non-continuation payload", fin=fin, sync=sync, chop=chop),
                          p.send(TEXT, hello, sync=sync, chop=chop))

    def twice(first_fin):
        def steps(p):
            for _ in range(2):
                p.send(CONTINUATION, f[0], fin=first_fin)
                p.send(TEXT, f[1], fin=False)
                p.send(CONTINUATION, f[2])
        return steps

    def long_message(sync):
        def steps(p):
            p.send(TEXT, f[0], fin=False, sync=sync)
            p.send(CONTINUATION, f[1], fin=False, sync=sync)
            p.send(PING, b"pongme 1!", sync=sync)
            p.pump(lambda: len(p.events) >= 1, timeout=1.0)  # the pong comes before the message is complete
            p.send(CONTINUATION, f[2], fin=False, sync=sync)
            p.send(CONTINUATION, f[3], fin=False, sync=sync)
            p.send(PING, b"pongme 2!", sync=sync)
            p.send(CONTINUATION, f[4], sync=sync)
        return steps

    whole = [message(f[0] + f[1])]
    pong_then_echo = "A pong, then the whole message echoed."
    long_expected = {OK: [pong(b"pongme 1!"), pong(b"pongme 2!"), message(b"".join(f))]}
    return [
        fail_case("5.1", "Send a ping in 2 fragments.", lambda p: (p.send(PING, f[0], fin=False), p.send(CONTINUATION, f[1])),
                  expectation="The connection is failed at once (1002): control frames are never fragmented."),
        fail_case("5.2", "Send a pong in 2 fragments.", lambda p: (p.send(PONG, f[0], fin=False), p.send(CONTINUATION, f[1])),
                  expectation="The connection is failed at once (1002): control frames are never fragmented."),
        Case("5.3", "Send a text message in 2 fragments.", "The whole message echoed.", fragmented(), {OK: whole}, NORMAL),
        Case("5.4", "As 5.3, each frame its own TCP segment.", "The whole message echoed.", fragmented(sync=True),
             {OK: whole}, NORMAL),
        Case("5.5", "As 5.3, written one byte at a time.", "The whole message echoed.", fragmented(chop=1),
             {OK: whole}, NORMAL),
        Case("5.6", "Send a text message in 2 fragments with a ping between them.", pong_then_echo, with_ping(),
             {OK: [pong(ping_payload)] + whole}, NORMAL),
        Case("5.7", "As 5.6, each frame its own TCP segment.", pong_then_echo, with_ping(sync=True),
             {OK: [pong(ping_payload)] + whole}, NORMAL),
        Case("5.8", "As 5.6, written one byte at a time.", pong_then_echo, with_ping(chop=1),
             {OK: [pong(ping_payload)] + whole}, NORMAL),
        fail_case("5.9", "Send a continuation frame (FIN set) with nothing to continue, then a text message.",
                  orphan(True), expectation=nothing_to_continue),
        fail_case("5.10", "As 5.9, each frame its own TCP segment.", orphan(True, sync=True), expectation=nothing_to_continue),
        fail_case("5.11", "As 5.9, written one byte at a time.", orphan(True, chop=1), expectation=nothing_to_continue),
        fail_case("5.12", "Send a continuation frame (FIN clear) with nothing to continue, then a text message.",
                  orphan(False), expectation=nothing_to_continue),
        fail_case("5.13", "As 5.12, each frame its own TCP segment.", orphan(False, sync=True),
                  expectation=nothing_to_continue),
        fail_case("5.14", "As 5.12, written one byte at a time.", orphan(False, chop=1), expectation=nothing_to_continue),
        fail_case("5.15", "Send a text message in 2 fragments, then a continuation frame (FIN clear) with nothing to "
                          "continue, then a text message.",
                  lambda p: (p.send(TEXT, f[0], fin=False), p.send(CONTINUATION, f[1]),
                             p.send(CONTINUATION, f[2], fin=False), p.send(TEXT, f[3])),
                  expectation="The first message echoed, then the connection is failed (1002).", ok=whole),
        fail_case("5.16", "Twice: a continuation frame (FIN clear) with nothing to continue, then a text message in "
                          "2 fragments.", twice(False), expectation=nothing_to_continue),
        fail_case("5.17", "Twice: a continuation frame (FIN set) with nothing to continue, then a text message in "
                          "2 fragments.", twice(True), expectation=nothing_to_continue),
        fail_case("5.18", "Send a text message in 2 fragments, both with the text opcode.",
                  lambda p: (p.send(TEXT, f[0], fin=False), p.send(TEXT, f[1])),
                  expectation="The connection is failed at once (1002): later fragments must be continuation frames."),
        Case("5.19", "A text message in 5 fragments: 2 fragments, a ping, a pause, 2 fragments, a ping, the last "
                     "fragment.", "Each ping answered at once (before the message ends), then the whole message "
                                  "echoed.", long_message(False), long_expected, NORMAL),
        Case("5.20", "As 5.19, each frame its own TCP segment.", "As 5.19.", long_message(True), long_expected, NORMAL),
    ]


KOSME = bytes.fromhex("cebae1bdb9cf83cebcceb5")  # κόσμε
VALID_TEXT = "Hello-µ@ßöäüàá-UTF-8!!".encode()
# Invalid at byte 12: a UTF-16 surrogate (U+D800) encoded as UTF-8.
INVALID_SURROGATE = KOSME + b"\xed\xa0\x80" + b"edited"
# Invalid at byte 12: past U+10FFFF.
INVALID_RANGE = KOSME + b"\xf4\x90\x80\x80" + b"edited"


def utf8_valid(data: bytes) -> bool:
    try:
        data.decode("utf-8")  # strict: no surrogates, no overlong forms, nothing past U+10FFFF
        return True
    except UnicodeDecodeError:
        return False


def surrogate(unit: int) -> bytes:
    """A UTF-16 surrogate code unit in UTF-8's three-byte form (never valid UTF-8)."""
    return bytes([0xE0 | unit >> 12, 0x80 | (unit >> 6) & 0x3F, 0x80 | unit & 0x3F])


def utf8_groups():
    """Autobahn's 6.5-6.23: sequences from Markus Kuhn's UTF-8 decoder stress test, and more."""
    missing_last = [b"\xc0", b"\xe0\x80", b"\xf0\x80\x80", b"\xf8\x80\x80\x80", b"\xfc\x80\x80\x80\x80",
                    b"\xdf", b"\xef\xbf", b"\xf7\xbf\xbf", b"\xfb\xbf\xbf\xbf", b"\xfd\xbf\xbf\xbf\xbf"]
    high, low = [0xD800, 0xDB7F, 0xDB80, 0xDBFF], [0xDC00, 0xDFFF]
    return [
        ("Some valid UTF-8 sequences", [b"hello\x24world", b"hello\xc2\xa2world", b"hello\xe2\x82\xacworld",
                                        b"hello\xf0\xa4\xad\xa2world", KOSME]),
        ("All prefixes of a valid UTF-8 string with multi-byte code points",
         [KOSME[:n] for n in range(1, len(KOSME) + 1)]),
        ("First possible sequence of each length", [b"\x00", b"\xc2\x80", b"\xe0\xa0\x80", b"\xf0\x90\x80\x80"]),
        ("First possible sequence of length 5 and 6 (invalid code points)",
         [b"\xf8\x88\x80\x80\x80", b"\xfc\x84\x80\x80\x80\x80"]),
        ("Last possible sequence of each length", [b"\x7f", b"\xdf\xbf", b"\xef\xbf\xbf", b"\xf4\x8f\xbf\xbf"]),
        ("Last possible sequence of length 4, 5 and 6 (invalid code points)",
         [b"\xf7\xbf\xbf\xbf", b"\xfb\xbf\xbf\xbf\xbf", b"\xfd\xbf\xbf\xbf\xbf\xbf"]),
        ("Other boundary conditions", [b"\xed\x9f\xbf", b"\xee\x80\x80", b"\xef\xbf\xbd", b"\xf4\x8f\xbf\xbf",
                                       b"\xf4\x90\x80\x80"]),
        ("Unexpected continuation bytes", [b"\x80", b"\xbf", b"\x80\xbf", b"\x80\xbf\x80", b"\x80\xbf\x80\xbf",
                                           b"\x80\xbf\x80\xbf\x80", b"\x80\xbf\x80\xbf\x80\xbf",
                                           bytes(range(0x80, 0xBF))]),
        ("Lonely start characters", [b"".join(bytes([lead, 0x20]) for lead in range(first, last))
                                     for first, last in [(0xC0, 0xDF), (0xE0, 0xEF), (0xF0, 0xF7), (0xF8, 0xFB),
                                                         (0xFC, 0xFD)]]),
        ("Sequences with the last continuation byte missing", missing_last),
        ("Concatenation of incomplete sequences", [b"".join(missing_last)]),
        ("Impossible bytes", [b"\xfe", b"\xff", b"\xfe\xfe\xff\xff"]),
        ("Overlong forms of an ASCII character", [b"\xc0\xaf", b"\xe0\x80\xaf", b"\xf0\x80\x80\xaf",
                                                  b"\xf8\x80\x80\x80\xaf", b"\xfc\x80\x80\x80\x80\xaf"]),
        ("Maximum overlong sequences", [b"\xc1\xbf", b"\xe0\x9f\xbf", b"\xf0\x8f\xbf\xbf", b"\xf8\x87\xbf\xbf\xbf",
                                        b"\xfc\x83\xbf\xbf\xbf\xbf"]),
        ("Overlong forms of NUL", [b"\xc0\x80", b"\xe0\x80\x80", b"\xf0\x80\x80\x80", b"\xf8\x80\x80\x80\x80",
                                   b"\xfc\x80\x80\x80\x80\x80"]),
        ("Single UTF-16 surrogates", [surrogate(u) for u in [0xD800, 0xDB7F, 0xDB80, 0xDBFF, 0xDC00, 0xDF80, 0xDFFF]]),
        ("Paired UTF-16 surrogates", [surrogate(h) + surrogate(l) for h in high for l in low]),
        ("Non-characters (valid UTF-8)", [b"\xef\xbf\xbe", b"\xef\xbf\xbf"]
         + [chr(plane << 16 | 0xFFFE | last).encode() for plane in range(1, 17) for last in (0, 1)]),
        ("Unicode specials, e.g. the replacement character (valid UTF-8)",
         [chr(code).encode() for code in range(0xFFF9, 0x10000)]),
    ]


def section6():
    def fragments(data: bytes, size: int):
        def steps(p):
            pieces = [data[i:i + size] for i in range(0, len(data), size)] or [b""]
            for i, piece in enumerate(pieces):
                p.send(TEXT if i == 0 else CONTINUATION, piece, fin=i == len(pieces) - 1)
        return steps

    def staged(parts, one_frame: bool):
        """Parts of one invalid message: each after a pause in which the connection must stay open (a `timeout`
        event), as separate fragments or as pieces of one frame."""
        def steps(p):
            key = os.urandom(4)
            whole = b"".join(parts)
            masked = mask_bytes(whole, key)
            offset = 0
            for i, part in enumerate(parts):
                if one_frame:
                    head = frame_header(TEXT, len(whole), True, 0, key) if i == 0 else b""
                    p.write(head + masked[offset:offset + len(part)])
                    offset += len(part)
                else:
                    p.send(TEXT if i == 0 else CONTINUATION, part, fin=i == len(parts) - 1)
                if i < len(parts) - 1:
                    p.pump(timeout=SETTLE)
                    if not p.is_open:
                        return
                    p.events.append(("timeout", "AB"[i]))
        return steps

    utf8_fail = failed_with(1007, fatal=True)
    early = {OK: [("timeout", "A")], NON_STRICT: [("timeout", "A"), ("timeout", "B")]}
    staged_expectation = ("The first part is accepted; the part that makes the message invalid fails the connection "
                          "at once (1007), or, NON-STRICT, the whole message does.")
    whole_frame_note = ("NIO's frame decoder hands over whole frames only, so an invalid frame is refused (1007) once "
                        "it has all arrived, not at its first invalid byte")
    cases = [
        echo_case("6.1.1", "Send a text message of length 0.", lambda p: p.send(TEXT, b""), b""),
        echo_case("6.1.2", "Send a text message in 3 fragments, each of length 0.",
                  lambda p: (p.send(TEXT, b"", fin=False), p.send(CONTINUATION, b"", fin=False), p.send(CONTINUATION)),
                  b""),
        echo_case("6.1.3", "Send a text message in 3 fragments, the first and last of length 0.",
                  lambda p: (p.send(TEXT, b"", fin=False), p.send(CONTINUATION, b"middle frame payload", fin=False),
                             p.send(CONTINUATION)), b"middle frame payload"),
        echo_case("6.2.1", "Send a valid UTF-8 text message in one frame.", lambda p: p.send(TEXT, VALID_TEXT),
                  VALID_TEXT),
        echo_case("6.2.2", "Send a valid UTF-8 text message in 2 fragments split on a code point boundary.",
                  lambda p: (p.send(TEXT, "Hello-µ@ßöä".encode(), fin=False), p.send(CONTINUATION, "üàá-UTF-8!!".encode())),
                  VALID_TEXT),
        echo_case("6.2.3", "Send a valid UTF-8 text message in 1-byte fragments (splitting code points).",
                  fragments(VALID_TEXT, 1), VALID_TEXT),
        echo_case("6.2.4", "Send a valid UTF-8 text message (κόσμε) in 1-byte fragments.", fragments(KOSME, 1), KOSME),
        Case("6.3.1", "Send an invalid UTF-8 text message in one frame.",
             "The connection is failed at once (1007).", lambda p: p.send(TEXT, INVALID_SURROGATE), {OK: []}, utf8_fail),
        Case("6.3.2", "Send an invalid UTF-8 text message in 1-byte fragments.",
             "The connection is failed at once (1007).", fragments(INVALID_SURROGATE, 1), {OK: []}, utf8_fail),
        Case("6.4.1", "Send an invalid UTF-8 text message in 3 fragments with pauses; the second makes it invalid "
                      "(a code point past U+10FFFF).", staged_expectation,
             staged([KOSME, b"\xf4\x90\x80\x80", b"edited"], False), early, utf8_fail),
        Case("6.4.2", "As 6.4.1, the second fragment being only the byte that makes the message invalid.",
             staged_expectation, staged([INVALID_RANGE[:12], INVALID_RANGE[12:13], INVALID_RANGE[13:]], False), early,
             utf8_fail),
        Case("6.4.3", "As 6.4.1, the 3 parts being pieces of one frame.", staged_expectation,
             staged([KOSME, b"\xf4\x90\x80\x80", b"edited"], True), early, utf8_fail, note=whole_frame_note,
             accepts_non_strict=True),
        Case("6.4.4", "As 6.4.2, the 3 parts being pieces of one frame.", staged_expectation,
             staged([INVALID_RANGE[:12], INVALID_RANGE[12:13], INVALID_RANGE[13:]], True), early, utf8_fail,
             note=whole_frame_note, accepts_non_strict=True),
    ]
    for group, (title, sequences) in enumerate(utf8_groups(), 5):
        for item, data in enumerate(sequences, 1):
            cid = f"6.{group}.{item}"
            if utf8_valid(data):
                cases.append(echo_case(cid, f"{title}: a text message of 0x{data.hex()} in one frame (valid).",
                                       lambda p, d=data: p.send(TEXT, d), data))
            else:
                cases.append(Case(cid, f"{title}: a text message of 0x{data.hex()} in one frame (invalid).",
                                  "The connection is failed at once (1007).", lambda p, d=data: p.send(TEXT, d),
                                  {OK: []}, utf8_fail))
    return cases


def judge_7_1_6(peer: Peer):
    """Autobahn only reports this case (informational). Here the 256 KiB message is over the 64 KiB cap: the server
    fails the connection with 1009 on reading its header (or drops TCP while the client is still sending it)."""
    code = peer.remote_close[0] if peer.remote_close else None
    if peer.events == [] and (code == 1009 or (code is None and peer.tcp_closed)) and not peer.dropped_by_me:
        return NON_STRICT, f"closed with {code or 'a dropped connection'} before the message (over the 64 KiB cap)"
    if peer.events == [message(b"Hello World!")] and peer.clean:
        return OK, "the message was processed before the close"
    return FAILED, f"events {summary(peer.events)}, close {peer.remote_close}"


def section7():
    hello = b"Hello World!"
    nothing = "Clean close with 1000; what follows the close is ignored."

    def big_then_close(p):
        p.write(build_frame(TEXT, (b"BAsd7&jh23" * 26215)[:256 * 1024]))
        p.send(TEXT, hello)
        p.send_close()
        p.send(PING)

    cases = [
        echo_case("7.1.1", "Send a message, then a close frame.", lambda p: p.send(TEXT, hello), hello,
                  expectation="The message echoed, then a clean close with 1000."),
        Case("7.1.2", "Send two close frames.", nothing, lambda p: (p.send_close(), p.send(CLOSE)), {OK: []}, NORMAL),
        Case("7.1.3", "Send a ping after the close frame.", nothing + " No pong.",
             lambda p: (p.send_close(), p.send(PING)), {OK: []}, NORMAL),
        Case("7.1.4", "Send a text message after the close frame.", nothing,
             lambda p: (p.send_close(), p.send(TEXT, hello)), {OK: []}, NORMAL),
        Case("7.1.5", "Send the first fragment of a message, the close frame, then the last fragment.", nothing,
             lambda p: (p.send(TEXT, b"fragment1", fin=False), p.send_close(), p.send(CONTINUATION, b"fragment2")),
             {OK: []}, NORMAL),
        Case("7.1.6", "Send a 256 KiB message, a small message, a close frame, then a ping.",
             "Informational in Autobahn (depends on the server): the small message echoed before the close, or not.",
             big_then_close, {OK: [message(hello)], NON_STRICT: []}, NORMAL, judge=judge_7_1_6,
             note="The 256 KiB message is over the 64 KiB cap: closed with 1009", accepts_non_strict=True),
        Case("7.3.1", "Send a close frame with no payload (no code, no reason).", "Clean close with 1000.",
             lambda p: p.send_close(None), {OK: []}, NORMAL),
        Case("7.3.2", "Send a close frame with a payload of 1 byte.",
             "Close with 1002 (or the TCP connection dropped).", lambda p: p.send_close(payload=b"a"),
             {OK: []}, CloseExpectation(True, (1002,), False)),
        Case("7.3.3", "Send a close frame with code 1000.", "Clean close with 1000.", lambda p: p.send_close(1000),
             {OK: []}, NORMAL),
        Case("7.3.4", "Send a close frame with code 1000 and a reason.", "Clean close with 1000.",
             lambda p: p.send_close(1000, b"Hello World!"), {OK: []}, NORMAL),
        Case("7.3.5", "Send a close frame with code 1000 and a reason of 123 bytes (the most that fits).",
             "Clean close with 1000.", lambda p: p.send_close(1000, b"*" * 123), {OK: []}, NORMAL),
        Case("7.3.6", "Send a close frame with code 1000 and a reason of 124 bytes (a 126-byte control frame).",
             "Close with 1002 (or the TCP connection dropped).", lambda p: p.send_close(1000, b"*" * 124), {OK: []},
             CloseExpectation(True, (1002,), False)),
        Case("7.5.1", "Send a close frame with code 1000 and a reason that is not UTF-8.",
             "Close with 1002 or 1007 (or the TCP connection dropped).",
             lambda p: p.send_close(1000, INVALID_SURROGATE), {OK: []}, CloseExpectation(True, (1002, 1007), False)),
    ]
    for i, code in enumerate([1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999], 1):
        cases.append(Case(f"7.7.{i}", f"Send a close frame with the valid code {code}.",
                          "Clean close with 1000 or the code echoed.", lambda p, c=code: p.send_close(c), {OK: []},
                          CloseExpectation(True, (1000, code), True)))
    for i, code in enumerate([0, 999, 1004, 1005, 1006, 1016, 1100, 2000, 2999], 1):
        cases.append(Case(f"7.9.{i}", f"Send a close frame with the invalid code {code}.",
                          "Close with 1002 (or the TCP connection dropped).", lambda p, c=code: p.send_close(c),
                          {OK: []}, CloseExpectation(True, (1002,), False)))
    for i, code in enumerate([5000, 65535], 1):
        cases.append(Case(f"7.13.{i}", f"Send a close frame with the code {code}.",
                          "Undefined by the RFC (informational in Autobahn): close with 1000, the code echoed or 1002.",
                          lambda p, c=code: p.send_close(c), {OK: []}, CloseExpectation(True, (1000, code, 1002), False),
                          note="answered with 1002: only 1000-1003, 1007-1014 and 3000-4999 are accepted"))
    return cases


def own_cases():
    def fragments(opcode, data, count):
        size = -(-len(data) // count)
        def steps(p):
            for i in range(count):
                p.send(opcode if i == 0 else CONTINUATION, data[i * size:(i + 1) * size], fin=i == count - 1)
        return steps

    return [
        fail_case("L.1", "Send a text message of 65537 bytes in one frame.",
                  lambda p: p.send(TEXT, b"*" * 65537), code=1009,
                  expectation="The connection is failed (1009): a message (and frame) is at most 64 KiB."),
        fail_case("L.2", "Send a binary message of 65537 bytes in 2 fragments.",
                  fragments(BINARY, b"\xfe" * 65537, 2), code=1009,
                  expectation="The connection is failed (1009): a message is at most 64 KiB, fragments included."),
        echo_case("L.3", "Send a text message in 64 fragments.", fragments(TEXT, b"x" * 640, 64), b"x" * 640,
                  expectation="The whole message echoed: 64 fragments is the most a message may have."),
        fail_case("L.4", "Send a text message in 65 fragments.", fragments(TEXT, b"x" * 650, 65), code=1009,
                  expectation="The connection is failed (1009): a message has at most 64 fragments."),
        fail_case("L.5", "Send a text frame the client did not mask.", lambda p: p.send(TEXT, b"hello", masked=False),
                  expectation="The connection is failed at once (1002): client frames must be masked (RFC 6455 5.1)."),
        Case("L.6", "Send a close frame with the code 1015 (TLS handshake failure, never sent in a frame).",
             "Close with 1002.", lambda p: p.send_close(1015), {OK: []}, CloseExpectation(True, (1002,), False)),
    ]


def all_cases():
    return section1() + section2() + section3() + section4() + section5() + section6() + section7() + own_cases()


# -- running and judging --------------------------------------------------------------------------------------------

def summary(events) -> str:
    out = []
    for event in events:
        if event[0] == "message":
            kind = "binary" if event[2] else "text"
            out.append(f"{kind}({len(event[1])}B)")
        elif event[0] == "timeout":
            out.append(f"timeout {event[1]}")
        else:
            out.append(f"{event[0]}({event[1][:16]!r})")
    return "[" + ", ".join(out) + "]"


def judge(case: Case, peer: Peer) -> tuple:
    if case.judge:
        return case.judge(peer)
    behaviour = next((v for v in (OK, NON_STRICT) if v in case.expected and peer.events == case.expected[v]), FAILED)
    expect = case.close
    code = peer.remote_close[0] if peer.remote_close else None
    problem = None
    if expect.by_me != peer.closed_by_me:
        problem = "closed by the wrong endpoint"
    elif expect.clean and not peer.clean:
        problem = "the closing handshake did not complete"
    elif code is not None and code not in expect.codes:
        problem = f"close code {code}, expected {' or '.join(map(str, expect.codes))}"
    elif peer.dropped_by_me:
        problem = "the server never closed the TCP connection"
    elif peer.violations:
        problem = "; ".join(peer.violations)
    if problem:
        return FAILED, f"{problem}; events {summary(peer.events)}"
    if behaviour == FAILED:
        return FAILED, f"events {summary(peer.events)}, expected {summary(case.expected[OK])}"
    how = f"closed with {code}" if code is not None else "TCP dropped by the server"
    return behaviour, f"{how}; events {summary(peer.events)}"


def run_case(case: Case, host: str, port: int, path: str, pusher: bool = False) -> tuple:
    """Runs one case on a new connection to `path`; returns (verdict, detail, events)."""
    peer = Peer(host, port, path)
    if pusher:
        # The Pusher face greets first: pusher:connection_established, not part of the case.
        peer.pump(lambda: peer.events, timeout=5)
        assert peer.events and b"pusher:connection_established" in peer.events[0][1], peer.events
        peer.events.clear()
    case.steps(peer)
    if case.close.by_me and not peer.close_sent:
        # As Autobahn's client: close once what the case expects has arrived (or after a while).
        peer.pump(lambda: peer.events == case.expected[OK] or not peer.is_open, timeout=2.0)
        if peer.is_open:
            peer.send_close(1000)
    peer.wait_closed()
    verdict, detail = judge(case, peer)
    return verdict, detail, peer.events


def faces_for(case: Case) -> list:
    """The echo socket runs every case; the Pusher socket (`/app/<key>`) those that need no echo."""
    return ["echo"] if case.needs_echo or case.judge else ["echo", "pusher"]


def markdown(results: dict) -> str:
    """The case table of docs/websocket-conformance.md; `results`: case id -> {face: verdict}."""
    lines = ["| Case | Description | Expectation | Result (echo / Pusher) | Note |", "|---|---|---|---|---|"]
    for case in all_cases():
        faces = results.get(case.id, {})
        result = " / ".join(faces.get(face, "-") for face in ("echo", "pusher"))
        cells = [case.id, case.description, case.expectation, result, case.note]
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--echo", default="/echo", help="WEBSOCKET_ECHO_PATH of the worker")
    parser.add_argument("--key", default="presence-key", help="PUSHER_KEY of the worker")
    parser.add_argument("--no-pusher", action="store_true", help="the echo socket only (a server with no Pusher face)")
    parser.add_argument("--markdown", action="store_true", help="print the docs table")
    parser.add_argument("cases", nargs="*", help="case ids (default: all)")
    args = parser.parse_args()
    results, counts = {}, {}
    for case in all_cases():
        if args.cases and case.id not in args.cases:
            continue
        for face in faces_for(case):
            if face == "pusher" and args.no_pusher:
                continue
            path = args.echo if face == "echo" else f"/app/{args.key}?protocol=7"
            verdict, detail, _ = run_case(case, args.host, args.port, path, pusher=face == "pusher")
            results.setdefault(case.id, {})[face] = verdict
            counts[verdict] = counts.get(verdict, 0) + 1
            if not args.markdown:
                print(f"{case.id:8} {face:6} {verdict:10} {detail}")
    if args.markdown:
        print(markdown(results))
    print(" ".join(f"{k}: {v}" for k, v in sorted(counts.items())), file=sys.stderr)


if __name__ == "__main__":
    main()
