"""Post to X and check an account, over tweepy's v2 client; typed outcomes, no raising.

Every call is blocking and meant for an executor thread. tweepy passes no timeout to
requests, so without one a call can hang forever: an adapter mounted on the client's
session gives every request a timeout for each wait and a deadline for the whole, and
sends the requests tweepy makes to ``https://api.twitter.com`` to ``X_API_ORIGIN``
instead, which is where tests point the client at a local fake X API. The OAuth 1.0a
signature stays the one tweepy computed for the public URL, as it would behind a proxy.

tweepy signs and sends; the answers are read here. Whatever a server sends (any status,
any body, any header) ends in a PostOutcome or a VerifyError, never in another
exception.
"""

from __future__ import annotations

from collections.abc import Mapping
import contextlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
import logging
import re
import socket
import threading
from typing import Any, Literal, Self, TypeGuard

import requests
from requests.adapters import HTTPAdapter
import tweepy
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from .models import PostOutcome, PostResult

# tweepy's hard-coded origin. Requests for it go to this module attribute's value, read
# at send time, so tests point it at a local fake X API.
X_API_ORIGIN = "https://api.twitter.com"
TWEEPY_ORIGIN = "https://api.twitter.com"
# A 429 without a reset header: the length of X's shortest rate-limit window.
DEFAULT_RATE_LIMIT_WAIT = timedelta(minutes=15)
LONGEST_RATE_LIMIT_WINDOW = timedelta(hours=24)
# How long one request may take in all, however its answer trickles in. Shorter than
# the time the sender gives a post, so the request ends first and frees its thread.
REQUEST_DEADLINE = timedelta(seconds=45)
# What is kept of X's words about an error.
DETAIL_LENGTH = 200
# X handles: letters, digits and underscores, 15 at most; post ids are digits.
_USERNAME = re.compile(r"[A-Za-z0-9_]{1,15}")
_TWEET_ID = re.compile(r"[0-9]{1,20}")
# Access levels X sends in the x-access-level header that allow posting.
WRITE_ACCESS_LEVELS = frozenset({"read-write", "read-write-directmessages"})
# These loggers print the OAuth parameters, the base string and the Authorization
# header at DEBUG, which contain the API key and the access token.
OAUTH_LOGGERS = (
    "requests_oauthlib.oauth1_auth",
    "oauthlib.oauth1.rfc5849",
    "oauthlib.oauth1.rfc5849.signature",
)


class _DropSigningDetails(logging.Filter):
    """Keeps the OAuth libraries' DEBUG lines out of every log, whatever its level."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno > logging.DEBUG


for _name in OAUTH_LOGGERS:
    logging.getLogger(_name).addFilter(_DropSigningDetails())


@dataclass(frozen=True, slots=True, kw_only=True)
class XCredentials:
    """The four keys of an X developer app acting for one account."""

    api_key: str = field(repr=False)
    api_secret: str = field(repr=False)
    access_token: str = field(repr=False)
    access_token_secret: str = field(repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class XAccount:
    """The account the keys act for."""

    user_id: str
    username: str
    can_post: bool


type VerifyFailure = Literal[
    "invalid_auth", "cannot_connect", "rate_limited", "unknown"
]


class VerifyError(Exception):
    """The keys could not be confirmed."""

    def __init__(self, reason: VerifyFailure, detail: str = "") -> None:
        """Say why, as a config-flow error key, and what X said (safe for logs)."""
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason: VerifyFailure = reason
        self.detail = detail


class AnswerError(Exception):
    """X answered with something other than success.

    Raised by the transport before tweepy sees the answer: tweepy's own error parsing
    expects X's usual body and trips over any other shape (a list, a string, null, a
    reset header that is not a number), so the status and body are judged here.
    """

    def __init__(self, response: requests.Response) -> None:
        """Keep the whole answer."""
        super().__init__(f"HTTP {response.status_code}")
        self.response = response


class DeadlineExceeded(requests.Timeout):
    """The answer was not complete in time, though every single read was."""


class _Deadline:
    """Cuts off this thread's request when its time is up.

    Socket timeouts bound each wait, not the whole: an answer that trickles in one byte
    at a time never trips them. At the deadline this shuts down the sockets the request
    uses, which ends any wait on them at once.
    """

    _current = threading.local()

    def __init__(self, seconds: float) -> None:
        self._lock = threading.Lock()
        # A connection's socket changes while it connects (TLS wraps it), and a
        # connection that will close lets go of its socket before the body is read:
        # both are kept.
        self._connections: list[HTTPConnection] = []
        self._sockets: list[object] = []
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True
        self.expired = False

    def __enter__(self) -> Self:
        _Deadline._current.deadline = self
        self._timer.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._timer.cancel()
        _Deadline._current.deadline = None

    @classmethod
    def watch(cls, connection: HTTPConnection) -> None:
        """Let the running request's deadline, if any, cut this connection off."""
        if (deadline := getattr(cls._current, "deadline", None)) is not None:
            deadline.add(connection)

    def add(self, connection: HTTPConnection) -> None:
        """Cut this connection off at the deadline, or now if it has passed."""
        with self._lock:
            self._connections.append(connection)
            if connection.sock is not None:
                self._sockets.append(connection.sock)
            if self.expired:
                self._cut()

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            self._cut()

    def _cut(self) -> None:
        current = [c.sock for c in self._connections if c.sock is not None]
        for sock in (*self._sockets, *current):
            # The plain socket's shutdown, also under TLS: the TLS one drops its state
            # first, which the thread still reading would trip over.
            if isinstance(sock, socket.socket):
                with contextlib.suppress(OSError):
                    socket.socket.shutdown(sock, socket.SHUT_RDWR)


class _WatchedHTTPConnection(HTTPConnection):
    """A connection the running request's deadline can cut off."""

    def connect(self) -> None:
        _Deadline.watch(self)
        super().connect()
        _Deadline.watch(self)

    def request(self, *args: Any, **kwargs: Any) -> None:
        _Deadline.watch(self)
        super().request(*args, **kwargs)
        _Deadline.watch(self)


class _WatchedHTTPSConnection(_WatchedHTTPConnection, HTTPSConnection):
    """The same over TLS."""


class _WatchedHTTPConnectionPool(HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _WatchedHTTPSConnectionPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


_WATCHED_POOLS: dict[str, type[HTTPConnectionPool]] = {
    "http": _WatchedHTTPConnectionPool,
    "https": _WatchedHTTPSConnectionPool,
}


class _ApiAdapter(HTTPAdapter):
    """Sends tweepy's requests to X_API_ORIGIN, within a timeout and a deadline.

    The whole answer is read here, so the deadline covers it; an answer other than
    success is raised as AnswerError before tweepy parses it. Requests through a proxy
    from the environment use the proxy's connections, which keep only the timeout of
    each wait.
    """

    def __init__(self, timeout: float, deadline: float) -> None:
        self._timeout = timeout
        self._deadline = deadline
        super().__init__()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _WATCHED_POOLS

    def send(  # type: ignore[override]
        self, request: requests.PreparedRequest, **kwargs: Any
    ) -> requests.Response:
        origin = X_API_ORIGIN
        url = request.url or ""
        if origin != TWEEPY_ORIGIN and url.startswith(TWEEPY_ORIGIN):
            # The signature stays the one for the public URL, as behind a proxy.
            request.url = origin + url[len(TWEEPY_ORIGIN) :]
            # The stand-in origin is local; no proxy from the environment applies.
            kwargs["proxies"] = {}
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self._timeout
        with _Deadline(self._deadline) as deadline:
            try:
                response = super().send(request, **kwargs)
                # Read the body now, while the deadline watches.
                _ = response.content
            except Exception as error:
                # Whatever a cut-off read raised, the deadline is what happened.
                if deadline.expired:
                    raise DeadlineExceeded(request=request) from error
                raise
        if not HTTPStatus.OK <= response.status_code < HTTPStatus.MULTIPLE_CHOICES:
            raise AnswerError(response)
        return response


class XClient:
    """One account's connection to the X API."""

    def __init__(
        self,
        credentials: XCredentials,
        *,
        timeout: float = 20.0,
        deadline: float = REQUEST_DEADLINE.total_seconds(),
        username: str | None = None,
    ) -> None:
        """Prepare the client; no request is made yet.

        Args:
            credentials: The app's keys and the account's access token.
            timeout: Seconds to wait for a connection, and then for each read.
            deadline: Seconds a request may take in all, up to its answer's last byte.
            username: The account's handle, if known, for links to posts; verify()
                learns it too. One that is not a valid X handle is ignored.
        """
        # wait_on_rate_limit would sleep this executor thread until the reset, for up
        # to 24 hours, and retries at once when the header is missing; the outbox
        # decides when to try again instead.
        self._client = tweepy.Client(
            consumer_key=credentials.api_key,
            consumer_secret=credentials.api_secret,
            access_token=credentials.access_token,
            access_token_secret=credentials.access_token_secret,
            # The raw response keeps the headers (access level, rate limits), which
            # tweepy's own Response drops.
            return_type=requests.Response,
            wait_on_rate_limit=False,
        )
        self._client.session.mount(TWEEPY_ORIGIN, _ApiAdapter(timeout, deadline))
        self._username = username if _is_username(username) else None

    def close(self) -> None:
        """Release the HTTP connections."""
        self._client.session.close()

    def verify(self) -> XAccount:
        """Confirm the keys, and find the account and whether it may post.

        Raises:
            VerifyError: The keys were refused, X could not be reached, or its answer
                made no sense.
        """
        try:
            response: requests.Response = self._client.get_me(user_auth=True)
        except AnswerError as error:
            raise VerifyError(
                _verify_failure(error.response.status_code), _detail(error.response)
            ) from error
        except requests.RequestException as error:
            raise VerifyError("cannot_connect", type(error).__name__) from error
        user = _json(response).get("data")
        if not (
            isinstance(user, dict)
            and _is_tweet_id(user_id := user.get("id"))
            and _is_username(username := user.get("username"))
        ):
            raise VerifyError("unknown", "unreadable answer")
        account = XAccount(
            user_id=str(user_id),
            username=username,
            # A read-only app passes this check and fails only when posting; the
            # header tells them apart now. Without it, the first post will tell.
            can_post=response.headers.get("x-access-level", "read-write")
            in WRITE_ACCESS_LEVELS,
        )
        self._username = account.username
        return account

    def post(self, text: str) -> PostOutcome:
        """Publish a post; every answer and failure becomes a PostOutcome."""
        try:
            response: requests.Response = self._client.create_tweet(
                text=text, user_auth=True
            )
        except AnswerError as error:
            return _outcome_of_error(error.response)
        except requests.RequestException as error:
            # A post that timed out may still have been created; the retry then gets
            # the duplicate answer, which counts as posted.
            return PostOutcome(
                result=PostResult.TRANSIENT,
                detail=f"no answer from X ({type(error).__name__})",
            )
        data = _json(response).get("data")
        tweet_id = data.get("id") if isinstance(data, dict) else None
        if not _is_tweet_id(tweet_id):
            # Something answered success without X's confirmation: a proxy, a portal,
            # or X itself half-broken. Trying again is safe: if the post exists, X
            # refuses the same text as a duplicate, which counts as posted.
            return PostOutcome(
                result=PostResult.TRANSIENT,
                detail=f"no confirmation from X (HTTP {response.status_code})",
            )
        return PostOutcome(
            result=PostResult.POSTED,
            tweet_id=str(tweet_id),
            url=self._url(str(tweet_id)),
            detail="posted",
        )

    def _url(self, tweet_id: str) -> str:
        if self._username:
            return f"https://x.com/{self._username}/status/{tweet_id}"
        # X redirects this form to the post whatever the account's name.
        return f"https://x.com/i/web/status/{tweet_id}"


def _is_username(value: object) -> TypeGuard[str]:
    """An X handle: up to 15 letters, digits and underscores."""
    return isinstance(value, str) and _USERNAME.fullmatch(value) is not None


def _is_tweet_id(value: object) -> bool:
    """An id as X gives it: a string of digits (an integer, from older answers)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value > 0
    return isinstance(value, str) and _TWEET_ID.fullmatch(value) is not None


def _json(response: requests.Response) -> dict[str, Any]:
    """The JSON object of an answer; empty when the body is anything else."""
    try:
        parsed: Any = response.json()
    except ValueError, RecursionError:
        # Not JSON, or nested deeper than any answer of X's.
        return {}
    return parsed if isinstance(parsed, dict) else {}


def _printable(value: object) -> str:
    """A short single line, whatever the server sent: safe to log."""
    return "".join(
        character if character.isprintable() else " "
        for character in str(value)[:DETAIL_LENGTH]
    )


def _detail(response: requests.Response) -> str:
    """X's own short words for an error, safe for logs."""
    body = _json(response)
    # The first error's message is the most specific ("Tweet text is too long."),
    # then the problem's detail, then its title.
    errors = body.get("errors")
    first = errors[0] if isinstance(errors, list) and errors else None
    for text in (
        first.get("message") if isinstance(first, dict) else None,
        body.get("detail"),
        body.get("title"),
    ):
        if isinstance(text, str) and text:
            return _printable(text)
    return f"HTTP {response.status_code}"


def _verify_failure(status: int) -> VerifyFailure:
    if status == HTTPStatus.UNAUTHORIZED:
        return "invalid_auth"
    if status == HTTPStatus.TOO_MANY_REQUESTS:
        return "rate_limited"
    if _is_passing_failure(status):
        return "cannot_connect"
    return "unknown"


def _outcome_of_error(response: requests.Response) -> PostOutcome:
    status = response.status_code
    body = _json(response)
    detail = _detail(response)
    problem = f"{body.get('type', '')} {body.get('reason', '')}"
    if status == HTTPStatus.UNAUTHORIZED:
        return PostOutcome(result=PostResult.AUTH_FAILED, detail=detail)
    if status == HTTPStatus.PAYMENT_REQUIRED:
        return PostOutcome(result=PostResult.NO_CREDITS, detail=detail)
    if status == HTTPStatus.FORBIDDEN:
        # v2 says "duplicate content"; the older error shape "Status is a duplicate."
        if "duplicate" in detail.lower():
            return PostOutcome(result=PostResult.DUPLICATE, detail=detail)
        if "oauth1-permissions" in problem:
            return PostOutcome(result=PostResult.READ_ONLY, detail=detail)
        if "client-not-enrolled" in problem or "client-forbidden" in problem:
            return PostOutcome(result=PostResult.NOT_ENROLLED, detail=detail)
        # Too long or otherwise refused content: X answers some of these with 403.
        return PostOutcome(result=PostResult.REJECTED, detail=detail)
    if status == HTTPStatus.TOO_MANY_REQUESTS:
        return PostOutcome(
            result=PostResult.RATE_LIMITED,
            retry_at=_retry_at(response.headers, datetime.now(UTC)),
            detail=detail,
        )
    if _is_passing_failure(status):
        return PostOutcome(result=PostResult.TRANSIENT, detail=detail)
    return PostOutcome(result=PostResult.REJECTED, detail=detail)


def _is_passing_failure(status: int) -> bool:
    """X or something in the way failed, not the post: worth another try.

    A server error, a timeout, or a redirect, which X's API never sends (a portal or a
    proxy in the way does).
    """
    return (
        status >= 500
        or status == HTTPStatus.REQUEST_TIMEOUT
        or status < HTTPStatus.BAD_REQUEST
    )


def _header_int(headers: Mapping[str, str], name: str) -> int | None:
    try:
        return int(headers[name])
    except KeyError, ValueError:
        return None


def _retry_at(headers: Mapping[str, str], now: datetime) -> datetime:
    """When a rate limit lifts: the 15-minute window, or a 24-hour cap if spent.

    X counts per 15 minutes and per 24 hours (per user and per app). When a 24-hour
    cap is hit the 15-minute window can still show requests remaining, and waiting
    for its reset would only earn another 429.
    """
    resets: list[int] = []
    if (window_reset := _header_int(headers, "x-rate-limit-reset")) is not None:
        resets.append(window_reset)
    window_left = _header_int(headers, "x-rate-limit-remaining")
    for scope in ("user", "app"):
        daily_reset = _header_int(headers, f"x-{scope}-limit-24hour-reset")
        daily_left = _header_int(headers, f"x-{scope}-limit-24hour-remaining")
        # Without its remaining count, a 24-hour reset counts when the 15-minute
        # window is not what ran out.
        spent = daily_left == 0 or (
            daily_left is None and window_left is not None and window_left > 0
        )
        if daily_reset is not None and spent:
            resets.append(daily_reset)
    if not resets:
        return now + DEFAULT_RATE_LIMIT_WAIT
    # No limit of X's lasts longer than a day: a later reset is a garbled header.
    latest = int((now + LONGEST_RATE_LIMIT_WINDOW).timestamp())
    return datetime.fromtimestamp(max(min(max(resets), latest), 0), UTC)
