"""Schemathesis hooks for ops/schemathesis (loaded through SCHEMATHESIS_HOOKS; not a module of the service).

- Signs Pusher HTTP API requests (`/apps/...`, and `/users/{userId}/terminate_connections`, the path the official
  Python library uses) as a Pusher backend library would, so their success paths get fuzzed
  too. A case whose query parameters were generated invalid on purpose (negative testing) goes out unsigned, as
  generated, and must be refused.
- Leaves out valid `/apps/.../channels` cases asking `info=user_count` of a channel that is not a presence channel.
- Joins the ticket room first for half of the valid `heartbeat` and `typing` cases (those need the caller present).
- Names the fuzz user as `customerId` in three of four valid `metadata` cases that set one (it must be a registered
  user, which generated names almost never are).
- Gives every `POST /api/auth/logout` a fresh token of the fuzz user, and every `POST /api/auth/logout-all` a fresh
  throwaway user's session, so logging out never revokes the token the rest of the run authenticates with.
- Has half of the valid `POST /api/auth/token/verify` cases ask about the fuzz user's own token, so its success path
  gets fuzzed too.
- Counts a stateful case as invalid (negative) when a link put a value its parameter's schema does not admit into a
  path or query parameter, e.g. a support room id `ticket_<ticketId>` (from a support response's `roomId`) into the
  `{id}` of `/api/rooms/{id}...` or into `roomIds`: the contract refuses those with 400, but schemathesis would still
  hold the linked case to the positive checks.
- Keeps no cookies on its own requests (sign-ins answer with the `ryos_auth` session cookie, which would otherwise
  ride along on later ones).
- Replaces schemathesis' `ignored_auth` and `missing_required_header` checks (for this API they only ever probe the
  credentials) with `auth_is_enforced`, which holds the server to this service's own contract: neither credential →
  401, only one of the two → 400, a wrong token or another user's name → 401, and instead of the headers a session
  cookie with a wrong token → 401. (`ignored_auth` probes with one credential at a time and expects 401/403,
  `missing_required_header` drops `Authorization` alone and expects 401: both contradict the documented 400.) The
  probes carry no `Cookie` but their own: a generated `ryos_auth` cookie would stand in for missing headers.

Settings come from the environment that ops/schemathesis sets: PRESENCE_URL, PRESENCE_FUZZ_USER,
PRESENCE_FUZZ_PASSWORD, PRESENCE_FUZZ_TOKEN, PUSHER_APP_ID, PUSHER_KEY, PUSHER_SECRET.
"""

from __future__ import annotations

import hashlib
import hmac
import http.cookiejar
import os
import secrets
import threading
import time
import zlib
from collections.abc import MutableMapping
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import requests

import schemathesis
from schemathesis.core.parameters import ParameterLocation
from schemathesis.generation import GenerationMode
from schemathesis.generation.meta import TestPhase

BASE_URL = os.environ["PRESENCE_URL"].rstrip("/")
FUZZ_USER = os.environ["PRESENCE_FUZZ_USER"]
FUZZ_PASSWORD = os.environ["PRESENCE_FUZZ_PASSWORD"]
FUZZ_TOKEN = os.environ["PRESENCE_FUZZ_TOKEN"]
APP_ID = os.environ.get("PUSHER_APP_ID", "presence")
APP_KEY = os.environ.get("PUSHER_KEY", "presence-key")
APP_SECRET = os.environ.get("PUSHER_SECRET", "presence-secret")

PUSHER_AUTH_PARAMS = {"auth_key", "auth_timestamp", "auth_version", "body_md5", "auth_signature"}
LOGOUT = ("POST", "/api/auth/logout")
LOGOUT_ALL = ("POST", "/api/auth/logout-all")
VERIFY = ("POST", "/api/auth/token/verify")
PRESENT_ONLY = ("/support/{ticketId}/heartbeat", "/support/{ticketId}/typing")
METADATA = ("POST", "/support/{ticketId}/metadata")

_session = threading.local()


def _http() -> requests.Session:
    if not hasattr(_session, "value"):
        session = requests.Session()
        session.cookies.set_policy(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))
        _session.value = session
    return _session.value


def _is_negative(case, location: ParameterLocation) -> bool:
    meta = case.meta
    if meta is None:
        return False
    component = meta.components.get(location)
    return component is not None and component.mode.is_negative


# --- Pusher HTTP API signatures -------------------------------------------------------------------------------------


class PusherSignature(requests.auth.AuthBase):
    """Signs the prepared request: the server checks HMAC-SHA256(secret, METHOD\\nPATH\\nQUERY), where QUERY is every
    other query parameter, key lowercased and value percent-decoded (a '+' stays a '+'), sorted by key."""

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        parts = urlsplit(request.url)
        kept = [piece for piece in parts.query.split("&") if piece and _query_key(piece).lower() not in PUSHER_AUTH_PARAMS]
        body = request.body or b""
        if isinstance(body, str):
            body = body.encode()
        added = [("auth_key", APP_KEY), ("auth_timestamp", str(int(time.time()))), ("auth_version", "1.0")]
        if body:
            added.append(("body_md5", hashlib.md5(body).hexdigest()))
        pairs = [(_query_key(piece).lower(), _query_value(piece)) for piece in kept] + added
        text = "&".join(f"{key}={value}" for key, value in sorted(pairs, key=lambda pair: pair[0]))
        signature = hmac.new(APP_SECRET.encode(), f"{request.method}\n{parts.path}\n{text}".encode(), hashlib.sha256)
        added.append(("auth_signature", signature.hexdigest()))
        query = "&".join(kept + [f"{key}={quote(value, safe='')}" for key, value in added])
        request.url = urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))
        return request


def _has_inadmissible_parameter(case) -> bool:
    """Whether a path or query parameter holds a value its own schema does not admit (only links put those there)."""
    operation = case.operation
    validator_cls = operation.schema.adapter.jsonschema_validator_cls
    for parameters, values in ((operation.path_parameters, case.path_parameters), (operation.query, case.query)):
        if not isinstance(values, MutableMapping):
            continue
        for parameter in parameters:
            value = values.get(parameter.name)
            if isinstance(value, str) and not parameter.admits(value, validator_cls):
                return True
    return False


def _query_key(piece: str) -> str:
    return unquote(piece.split("=", 1)[0])


def _query_value(piece: str) -> str:
    return unquote(piece.split("=", 1)[1]) if "=" in piece else ""


@schemathesis.hook
def before_call(context, case, kwargs):
    path = case.operation.path
    if case.meta is not None and case.meta.phase.name == TestPhase.STATEFUL and case.meta.generation.mode.is_positive \
            and _has_inadmissible_parameter(case):
        case.meta.generation.mode = GenerationMode.NEGATIVE
    if path.startswith("/apps/") or path == "/users/{userId}/terminate_connections":
        if not _is_negative(case, ParameterLocation.PATH) and isinstance(case.path_parameters, MutableMapping):
            app = case.path_parameters.get("appId")
            # Most valid cases go to the real app, so the routes behind the app check get exercised; the rest keep
            # the generated id and must get 404 Unknown app.
            if isinstance(app, str) and app != APP_ID and zlib.crc32(app.encode()) % 4 != 0:
                case.path_parameters["appId"] = APP_ID
        # Only valid cases are signed. A negative case goes out unsigned and must be refused (401), whichever part
        # was made invalid: schemathesis does not always name the component it mutated (seen with a path parameter
        # that percent-decodes to a valid channel while the case as a whole was negative).
        negative = case.meta is not None and case.meta.generation.mode.is_negative
        if not negative and not _is_negative(case, ParameterLocation.QUERY):
            kwargs["auth"] = PusherSignature()
    elif (case.method.upper(), path) == LOGOUT and isinstance(case.headers, MutableMapping):
        authorization = case.headers.get("Authorization")
        if authorization == f"Bearer {FUZZ_TOKEN}":
            case.headers["Authorization"] = f"Bearer {_fresh_token()}"
    elif (case.method.upper(), path) == LOGOUT_ALL and isinstance(case.headers, MutableMapping):
        # Every session of whoever asks ends: never the fuzz user's.
        if case.headers.get("Authorization") == f"Bearer {FUZZ_TOKEN}":
            user, token = _throwaway_session()
            case.headers["Authorization"] = f"Bearer {token}"
            for name in [key for key in case.headers if key.lower() == "x-username"]:
                case.headers[name] = user
    elif (case.method.upper(), path) == VERIFY and case.meta is not None \
            and not case.meta.generation.mode.is_negative and isinstance(case.body, MutableMapping):
        token = case.body.get("token")
        if isinstance(token, str) and zlib.crc32(token.encode()) % 2 == 0:
            case.body["username"] = FUZZ_USER
            case.body["token"] = FUZZ_TOKEN
    elif (case.method.upper(), path) == METADATA and case.meta is not None \
            and not case.meta.generation.mode.is_negative and isinstance(case.body, MutableMapping):
        # Most valid cases name a registered user, so the success path of `customerId` gets exercised too.
        customer = case.body.get("customerId")
        if isinstance(customer, str) and zlib.crc32(customer.encode()) % 4 != 0:
            case.body["customerId"] = FUZZ_USER
    elif path in PRESENT_ONLY and case.method.upper() == "POST" and case.meta is not None \
            and not case.meta.generation.mode.is_negative and isinstance(case.path_parameters, MutableMapping):
        # Half of the valid cases first join the ticket room, so these routes get past `Not in room` too.
        ticket = case.path_parameters.get("ticketId")
        if isinstance(ticket, str) and zlib.crc32(ticket.encode()) % 2 == 0:
            _http().post(
                f"{BASE_URL}/support/{quote(ticket, safe='')}/join",
                headers={"Authorization": f"Bearer {FUZZ_TOKEN}", "X-Username": FUZZ_USER}, timeout=10,
            )


@schemathesis.hook
def filter_case(context, case):
    """`info=user_count` needs a presence channel (or `filter_by_prefix=presence-...`): a dependency between
    parameters that OpenAPI cannot state, so valid cases that break it are not generated."""
    path = case.operation.path
    if path not in ("/apps/{appId}/channels", "/apps/{appId}/channels/{channel}") or _is_negative(case, ParameterLocation.QUERY):
        return True
    query = case.query if isinstance(case.query, MutableMapping) else {}
    info = query.get("info")
    if not isinstance(info, str) or "user_count" not in info.split(","):
        return True
    if path.endswith("{channel}"):
        subject = case.path_parameters.get("channel") if isinstance(case.path_parameters, MutableMapping) else None
    else:
        subject = query.get("filter_by_prefix")
    return isinstance(subject, str) and subject.startswith("presence-")


def _fresh_token() -> str:
    response = _http().post(
        f"{BASE_URL}/api/auth/login", json={"username": FUZZ_USER, "password": FUZZ_PASSWORD}, timeout=10
    )
    response.raise_for_status()
    return response.json()["token"]


# Users the hooks registered (their sessions stand in for the fuzz user's where that one must survive).
_throwaway_users: set[str] = set()
_throwaway_lock = threading.Lock()


def _throwaway_session() -> tuple[str, str]:
    user = "fuzzthrow" + secrets.token_hex(6)
    response = _http().post(
        f"{BASE_URL}/api/auth/register", json={"username": user, "password": secrets.token_hex(16)}, timeout=10
    )
    response.raise_for_status()
    with _throwaway_lock:
        _throwaway_users.add(user)
    return user, response.json()["token"]


# --- Authentication is enforced as documented ----------------------------------------------------------------------

_checked: set[str] = set()
_checked_lock = threading.Lock()


def _security(case) -> tuple[bool, bool]:
    """(declares the bearer + X-Username requirement, credentials are optional)."""
    operation = case.operation
    security = operation.definition.raw.get("security")
    if security is None:
        security = operation.schema.raw_schema.get("security", [])
    requires = any("bearerToken" in requirement for requirement in security)
    optional = any(requirement == {} for requirement in security)
    return requires, optional


@schemathesis.check
def auth_is_enforced(ctx, response, case):
    """Authenticated operations refuse requests without valid credentials exactly as documented."""
    if not 200 <= response.status_code < 300 or case.method.upper() != case.operation.method.upper():
        return None
    requires, optional = _security(case)
    if not requires:
        return None
    sent = {name.lower(): value for name, value in response.request.headers.items()}
    user = sent.get("x-username", "").lower()
    with _throwaway_lock:
        known = user == FUZZ_USER or user in _throwaway_users
    if not known or not sent.get("authorization", "").startswith("Bearer "):
        return None
    label = case.operation.label
    with _checked_lock:
        if label in _checked:
            return None
        _checked.add(label)
    probes = [
        ("only Authorization", {"X-Username": None}, {400}),
        ("only X-Username", {"Authorization": None}, {400}),
        ("a wrong token", {"Authorization": "Bearer " + "0" * 64}, {401}),
        ("another user's name", {"X-Username": user + "x"}, {401}),
    ]
    if not optional:
        probes.insert(0, ("no credentials", {"Authorization": None, "X-Username": None}, {401}))
        probes.append((
            "a session cookie with a wrong token",
            {"Authorization": None, "X-Username": None, "Cookie": f"ryos_auth={user}:{'0' * 64}"},
            {401},
        ))
    for scenario, changes, expected in probes:
        probe = response.request.copy()
        changes = {"Cookie": None, **changes}
        for name, value in changes.items():
            for existing in [key for key in probe.headers if key.lower() == name.lower()]:
                del probe.headers[existing]
            if value is not None:
                probe.headers[name] = value
        answer = _http().send(probe, timeout=30, allow_redirects=False)
        if answer.status_code not in expected:
            raise AssertionError(
                f"With {scenario}, {case.method.upper()} {response.request.path_url} answered {answer.status_code} "
                f"{answer.text[:200]!r}; the contract says {sorted(expected)}"
            )
    return None
