"""A local X API v2 that checks OAuth 1.0a signatures and answers like the real one.

It serves ``POST /2/tweets`` and ``GET /2/users/me`` on 127.0.0.1, verifies each
request's HMAC-SHA1 signature (RFC 5849) against the consumer and token secrets it was
given, refuses a text it has already published with X's duplicate-content 403, and
answers with the real JSON shapes, error bodies and headers (``x-access-level``, the
rate-limit headers). Every request is recorded, signed correctly or not, with the text
it carried.

Tests script faults with ``fail_next(kind)``, answered in order, one per request:
``401``, ``402``, ``403-duplicate``, ``403-read-only``, ``403-not-enrolled``, ``400``,
``429`` (reset times of the 15-minute window and of the 24-hour user cap chosen per
fault, or a reset header that is not a number), ``500``, ``502`` (an HTML page, as from
a proxy in front), ``503``, ``stall`` (hold the request without answering until the
fake stops, longer than any client timeout), ``stall-after-posting`` (publish the post,
then stall: the client times out on a post that exists, as happens for real),
``trickle`` (answer normally, post published, but send the body one byte at a time,
each byte well within a read timeout), ``trickle-headers`` (the same for the status
line and headers), ``reset`` (drop the connection with a TCP reset) and ``raw`` (any
status, body and content type: the odd answers a server in the way, or a broken one,
gives). Clearing ``answering`` holds every answer until it is set again.
``stop()`` refuses connections; ``start()`` listens again on the same port.

How tests point tweepy at it: tweepy always calls ``https://api.twitter.com``. The X
client mounts an adapter on tweepy's session that sends those requests to
``x_client.X_API_ORIGIN``; the ``fake_x_api`` fixture sets that attribute to this
server's ``http://127.0.0.1:<port>`` with ``monkeypatch`` and starts the fake with
``TEST_CREDENTIALS``. tweepy computes the signature for the public URL, so this server
checks it against ``https://api.twitter.com`` + path, as a server behind a proxy knows
its public address.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import UTC, datetime
import hashlib
import hmac
from http import HTTPStatus
import json
import socket
import struct
import threading
import time
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlsplit

from custom_components.isp_watch.x_client import XCredentials
from fakes.loopback import LoopbackServer, QuietHandler

PUBLIC_ORIGIN = "https://api.twitter.com"
TEST_CREDENTIALS = XCredentials(
    api_key="test-consumer-key-4f1c",
    api_secret="test-consumer-secret-9b2e",
    access_token="1234567890-test-access-token-77ad",
    access_token_secret="test-access-token-secret-c3d0",
)
ACCOUNT_ID = "1234567890"
ACCOUNT_USERNAME = "isp_watch_home"

DUPLICATE_BODY = {
    "detail": "You are not allowed to create a Tweet with duplicate content.",
    "type": "about:blank",
    "title": "Forbidden",
    "status": 403,
}
UNAUTHORIZED_BODY = {
    "title": "Unauthorized",
    "type": "about:blank",
    "status": 401,
    "detail": "Unauthorized",
}
READ_ONLY_BODY = {
    "title": "Forbidden",
    "status": 403,
    "detail": (
        "Your client app is not configured with the appropriate oauth1 app "
        "permissions for this endpoint."
    ),
    "type": "https://api.twitter.com/2/problems/oauth1-permissions",
}
NOT_ENROLLED_BODY = {
    "client_id": "29411232",
    "detail": (
        "When authenticating requests to the Twitter API v2 endpoints, you must use "
        "keys and tokens from a Twitter developer App that is attached to a Project."
    ),
    "registration_url": "https://developer.x.com/en/portal/projects-and-apps",
    "title": "Client Forbidden",
    "required_enrollment": "Appropriate Level of API Access",
    "reason": "client-not-enrolled",
    "type": "https://api.twitter.com/2/problems/client-forbidden",
}
# X documents the 402 but no body for it; this follows its other problem bodies.
NO_CREDITS_BODY = {
    "title": "Payment Required",
    "detail": "Your account does not have enough credits for this request.",
    "type": "about:blank",
    "status": 402,
}
INVALID_REQUEST_BODY = {
    "errors": [
        {
            "parameters": {"text": ["Tweet text is too long."]},
            "message": "Tweet text is too long.",
        }
    ],
    "title": "Invalid Request",
    "detail": "One or more parameters to your request was invalid.",
    "type": "https://api.twitter.com/2/problems/invalid-request",
}
RATE_LIMIT_BODY = {"errors": [{"code": 88, "message": "Rate limit exceeded"}]}
SERVER_ERROR_BODY = {
    "title": "Service Unavailable",
    "detail": "Service Unavailable",
    "type": "about:blank",
    "status": 503,
}

BAD_GATEWAY_PAGE = b"<html><body><h1>502 Bad Gateway</h1></body></html>"


@dataclass(frozen=True)
class ReceivedRequest:
    """One request as the fake saw it."""

    method: str
    path: str
    signature_valid: bool
    text: str | None


FAULT_KINDS = frozenset(
    {
        "400",
        "401",
        "402",
        "403-duplicate",
        "403-read-only",
        "403-not-enrolled",
        "429",
        "500",
        "502",
        "503",
        "stall",
        "stall-after-posting",
        "trickle",
        "trickle-headers",
        "reset",
        "raw",
    }
)


@dataclass
class Fault:
    """An answer the fake gives instead of the normal one.

    For ``429``: ``rate_limit_reset`` is the 15-minute window's reset (Unix seconds;
    15 minutes from now unless given, left out when ``reset_header`` is false), and
    ``daily_reset`` makes it the 24-hour user cap that ran out, with requests still
    left in the 15-minute window. A text ``rate_limit_reset`` is sent as it is.

    For ``raw``: the answer's ``status``, ``body`` and ``content_type``.
    """

    kind: str
    rate_limit_reset: int | str | None = None
    daily_reset: int | None = None
    reset_header: bool = True
    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"


def _encode(value: str) -> str:
    return quote(value, safe="~-._")


def signature_is_valid(
    method: str,
    path: str,
    query: str,
    authorization: str,
    credentials: XCredentials,
) -> bool:
    """Check an OAuth 1.0a HMAC-SHA1 signature as RFC 5849 section 3.4 describes."""
    if not authorization.startswith("OAuth "):
        return False
    oauth: dict[str, str] = {}
    for part in authorization[len("OAuth ") :].split(","):
        key, _, value = part.strip().partition("=")
        oauth[unquote(key)] = unquote(value.strip('"'))
    timestamp = oauth.get("oauth_timestamp", "")
    if (
        oauth.get("oauth_signature_method") != "HMAC-SHA1"
        or oauth.get("oauth_consumer_key") != credentials.api_key
        or oauth.get("oauth_token") != credentials.access_token
        or not timestamp.isdigit()
        # X refuses requests signed more than a few minutes off its clock.
        or abs(time.time() - int(timestamp)) > 300
    ):
        return False
    params = [
        (key, value)
        for key, value in oauth.items()
        if key not in {"oauth_signature", "realm"}
    ]
    params += parse_qsl(query, keep_blank_values=True)
    normalized = "&".join(
        f"{key}={value}"
        for key, value in sorted((_encode(k), _encode(v)) for k, v in params)
    )
    base = "&".join(
        [method.upper(), _encode(PUBLIC_ORIGIN + path), _encode(normalized)]
    )
    key = (
        f"{_encode(credentials.api_secret)}&{_encode(credentials.access_token_secret)}"
    )
    expected = base64.b64encode(
        hmac.new(key.encode(), base.encode(), hashlib.sha1).digest()
    ).decode()
    return hmac.compare_digest(expected, oauth.get("oauth_signature", ""))


class FakeXApi(LoopbackServer):
    """The fake service."""

    def __init__(self, credentials: XCredentials = TEST_CREDENTIALS) -> None:
        """Accept these keys."""
        super().__init__()
        self.credentials = credentials
        self.access_level = "read-write"
        # A stalled request is held until the fake stops, or this long at most.
        self.stall_seconds = 30.0
        # A trickled answer sends one byte this often: each well within a read timeout,
        # the whole far beyond one.
        self.trickle_interval = 0.2
        # Requests held by a stall right now: a client that gave up left them here.
        self.holding = 0
        # Cleared, every request waits for its answer until it is set again (or the
        # fake stops): a post that is certainly still on its way.
        self.answering = threading.Event()
        self.answering.set()
        self.faults: list[Fault] = []
        self.requests: list[ReceivedRequest] = []
        self.posts: list[str] = []
        # When each post was published, in the order of `posts`.
        self.post_times: list[datetime] = []
        self._lock = threading.Lock()
        self._next_id = 1860000000000000000

    @property
    def origin(self) -> str:
        """Where the fake listens."""
        return f"http://127.0.0.1:{self.port}"

    def fail_next(self, kind: str, **extra: Any) -> None:
        """Answer the next request that has no fault yet with this one."""
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {kind!r}")
        with self._lock:
            self.faults.append(Fault(kind, **extra))

    def take_fault(self) -> Fault | None:
        """The next queued fault, if any."""
        with self._lock:
            return self.faults.pop(0) if self.faults else None

    def record(self, request: ReceivedRequest) -> None:
        """Remember a request."""
        with self._lock:
            self.requests.append(request)

    def hold(self) -> None:
        """Keep a request waiting, without an answer, until the fake stops."""
        with self._lock:
            self.holding += 1
        try:
            self.release.wait(self.stall_seconds)
        finally:
            with self._lock:
                self.holding -= 1

    def wait_until_answering(self) -> None:
        """Hold a request while answers are held, at most until the fake stops."""
        deadline = time.monotonic() + self.stall_seconds
        while not self.answering.wait(0.05):
            if self.release.is_set() or time.monotonic() > deadline:
                return

    def publish(self, text: str) -> str | None:
        """Store a post; None when the same text was posted before."""
        with self._lock:
            if text in self.posts:
                return None
            self.posts.append(text)
            self.post_times.append(datetime.now(UTC))
            self._next_id += 1
            return str(self._next_id)


class _Handler(QuietHandler):
    owner: FakeXApi
    # Which part of the answer goes out one byte at a time, if any.
    trickle: str | None = None

    def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
        self._handle(None)

    def do_POST(self) -> None:  # noqa: N802 - the name http.server calls
        length = int(self.headers.get("Content-Length", "0"))
        body = json.loads(self.rfile.read(length) or b"{}")
        self._handle(body)

    def _handle(self, body: dict[str, Any] | None) -> None:
        parts = urlsplit(self.path)
        valid = signature_is_valid(
            self.command,
            parts.path,
            parts.query,
            self.headers.get("Authorization", ""),
            self.owner.credentials,
        )
        text = body.get("text") if body else None
        self.owner.record(ReceivedRequest(self.command, parts.path, valid, text))
        self.owner.wait_until_answering()
        if (fault := self.owner.take_fault()) is not None:
            if fault.kind in {"trickle", "trickle-headers"}:
                # The normal answer, slowly.
                self.trickle = fault.kind
            else:
                self._fault(fault, text)
                return
        if not valid:
            self._json(401, UNAUTHORIZED_BODY)
            return
        if self.command == "GET" and parts.path == "/2/users/me":
            self._json(
                200,
                {
                    "data": {
                        "id": ACCOUNT_ID,
                        "name": "ISP Watch at home",
                        "username": ACCOUNT_USERNAME,
                    }
                },
            )
        elif self.command == "POST" and parts.path == "/2/tweets" and text:
            tweet_id = self.owner.publish(text)
            if tweet_id is None:
                self._json(403, DUPLICATE_BODY)
            else:
                self._json(
                    201,
                    {
                        "data": {
                            "id": tweet_id,
                            "text": text,
                            "edit_history_tweet_ids": [tweet_id],
                        }
                    },
                )
        else:
            self._json(404, {"title": "Not Found Error", "status": 404})

    def _fault(self, fault: Fault, text: str | None) -> None:
        if fault.kind in {"stall", "stall-after-posting"}:
            if fault.kind == "stall-after-posting" and text:
                self.owner.publish(text)
            self.owner.hold()
            self.close_connection = True
            return
        if fault.kind == "reset":
            # Closing with a zero linger sends RST, where a normal close sends FIN.
            self.connection.setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
            )
            self.connection.close()
            self.close_connection = True
            return
        if fault.kind == "502":
            self._send(502, BAD_GATEWAY_PAGE, "text/html")
            return
        if fault.kind == "raw":
            self._send(fault.status, fault.body, fault.content_type)
            return
        if fault.kind == "429":
            now = int(time.time())
            headers = {"x-rate-limit-limit": "100", "x-rate-limit-remaining": "0"}
            if fault.reset_header:
                headers["x-rate-limit-reset"] = str(fault.rate_limit_reset or now + 900)
            if fault.daily_reset is not None:
                headers |= {
                    "x-rate-limit-remaining": "40",
                    "x-user-limit-24hour-limit": "17",
                    "x-user-limit-24hour-remaining": "0",
                    "x-user-limit-24hour-reset": str(fault.daily_reset),
                }
            self._json(429, RATE_LIMIT_BODY, headers)
            return
        bodies = {
            "401": (401, UNAUTHORIZED_BODY),
            "402": (402, NO_CREDITS_BODY),
            "403-duplicate": (403, DUPLICATE_BODY),
            "403-read-only": (403, READ_ONLY_BODY),
            "403-not-enrolled": (403, NOT_ENROLLED_BODY),
            "400": (400, INVALID_REQUEST_BODY),
            "500": (500, {"title": "Internal Server Error", "status": 500}),
            "503": (503, SERVER_ERROR_BODY),
        }
        status, body = bodies[fault.kind]
        self._json(status, body)

    def _json(
        self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None
    ) -> None:
        self._send(status, json.dumps(body).encode(), "application/json", headers)

    def _send(
        self,
        status: int,
        payload: bytes,
        content_type: str,
        headers: dict[str, str] | None = None,
    ) -> None:
        reason = HTTPStatus(status).phrase if status in HTTPStatus else "Unknown"
        lines = [
            f"HTTP/1.1 {status} {reason}",
            f"Content-Type: {content_type}; charset=utf-8",
            f"Content-Length: {len(payload)}",
            f"x-access-level: {self.owner.access_level}",
            # One request per connection, so stop() refuses the next request at once.
            "Connection: close",
            *(f"{name}: {value}" for name, value in (headers or {}).items()),
        ]
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        self.close_connection = True
        if self.trickle == "trickle-headers":
            self._trickle(head)
            self.wfile.write(payload)
        elif self.trickle == "trickle":
            self.wfile.write(head)
            self._trickle(payload)
        else:
            self.wfile.write(head + payload)

    def _trickle(self, data: bytes) -> None:
        """Send one byte at a time, until done, the fake stops or the client leaves."""
        for index in range(len(data)):
            if self.owner.release.wait(self.owner.trickle_interval):
                return
            try:
                self.wfile.write(data[index : index + 1])
            except OSError:
                return


FakeXApi.handler = _Handler
