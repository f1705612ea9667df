"""Post to X and check an account, over tweepy's v2 client; typed outcomes, no raising.

Every call is blocking and meant for an executor thread. tweepy passes no timeout to
requests, so without one a call can hang forever: an adapter mounted on the client's
session gives every request a default timeout, and sends the requests tweepy makes to
``https://api.twitter.com`` to ``X_API_ORIGIN`` instead, which is where tests point the
client at a local fake X API. The OAuth 1.0a signature stays the one tweepy computed for
the public URL, as it would behind a proxy.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
import logging
from typing import Any, Literal

import requests
from requests.adapters import HTTPAdapter
import tweepy

from .models import PostOutcome, PostResult

# tweepy's hard-coded origin. Requests for it go to this module attribute's value, read
# at send time, so tests point it at a local fake X API.
X_API_ORIGIN = "https://api.twitter.com"
TWEEPY_ORIGIN = "https://api.twitter.com"
# A 429 without a reset header: the length of X's shortest rate-limit window.
DEFAULT_RATE_LIMIT_WAIT = timedelta(minutes=15)
LONGEST_RATE_LIMIT_WINDOW = timedelta(hours=24)
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


class _ApiAdapter(HTTPAdapter):
    """Adds a timeout to every request, and sends them to X_API_ORIGIN."""

    def __init__(self, timeout: float) -> None:
        super().__init__()
        self._timeout = timeout

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
        return super().send(request, **kwargs)


class XClient:
    """One account's connection to the X API."""

    def __init__(
        self,
        credentials: XCredentials,
        *,
        timeout: float = 20.0,
        username: str | None = None,
    ) -> None:
        """Prepare the client; no request is made yet.

        Args:
            credentials: The app's keys and the account's access token.
            timeout: Seconds to wait for a connection, and then for each read.
            username: The account's handle, if known, for links to posts; verify()
                learns it too.
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
        self._client.session.mount(TWEEPY_ORIGIN, _ApiAdapter(timeout))
        self._username = username

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
        except tweepy.Unauthorized as error:
            raise VerifyError("invalid_auth", _detail(error.response)) from error
        except tweepy.TooManyRequests as error:
            raise VerifyError("rate_limited", _detail(error.response)) from error
        except tweepy.TwitterServerError as error:
            raise VerifyError("cannot_connect", _detail(error.response)) from error
        except requests.RequestException as error:
            raise VerifyError("cannot_connect", type(error).__name__) from error
        except tweepy.HTTPException as error:
            raise VerifyError("unknown", _detail(error.response)) from error
        except ValueError as error:
            # tweepy reads a 429's reset header as an integer and fails on garbage.
            raise VerifyError("unknown", "unreadable answer") from error
        try:
            user = response.json()["data"]
            account = XAccount(
                user_id=str(user["id"]),
                username=str(user["username"]),
                # A read-only app passes this check and fails only when posting; the
                # header tells them apart now. Without it, the first post will tell.
                can_post=response.headers.get("x-access-level", "read-write")
                in WRITE_ACCESS_LEVELS,
            )
        except (ValueError, KeyError, TypeError) as error:
            raise VerifyError("unknown", "unreadable answer") from error
        self._username = account.username
        return account

    def post(self, text: str) -> PostOutcome:
        """Publish a post; every answer and failure becomes a PostOutcome."""
        try:
            response: requests.Response = self._client.create_tweet(
                text=text, user_auth=True
            )
        except requests.RequestException as error:
            # A post that timed out may still have been created; the retry then gets
            # the duplicate answer, which counts as posted.
            return PostOutcome(
                result=PostResult.TRANSIENT,
                detail=f"no answer from X ({type(error).__name__})",
            )
        except tweepy.HTTPException as error:
            return _outcome_of_error(error.response)
        except ValueError:
            return PostOutcome(
                result=PostResult.TRANSIENT, detail="unreadable answer from X"
            )
        try:
            tweet_id = str(response.json()["data"]["id"])
        except ValueError, KeyError, TypeError:
            return PostOutcome(result=PostResult.POSTED, detail="X accepted the post")
        return PostOutcome(
            result=PostResult.POSTED,
            tweet_id=tweet_id,
            url=self._url(tweet_id),
            detail="posted",
        )

    def _url(self, tweet_id: str) -> str:
        if self._username:
            return f"https://x.com/{self._username}/status/{tweet_id}"
        # X redirects this form to the post whatever the account's name.
        return f"https://x.com/i/web/status/{tweet_id}"


def _problem(response: requests.Response) -> dict[str, Any]:
    """The JSON body of an error answer, or an empty one."""
    try:
        parsed: Any = response.json()
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def _detail(response: requests.Response) -> str:
    """X's own short words for an error, safe for logs."""
    body = _problem(response)
    # The first error's message is the most specific ("Tweet text is too long."),
    # then the problem's detail, then its title.
    errors = body.get("errors")
    first = errors[0] if isinstance(errors, list) and errors else None
    if isinstance(first, dict) and first.get("message"):
        text = first["message"]
    else:
        text = body.get("detail") or body.get("title") or f"HTTP {response.status_code}"
    return str(text)[:200]


def _outcome_of_error(response: requests.Response) -> PostOutcome:
    status = response.status_code
    body = _problem(response)
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
    if status >= 500 or status == HTTPStatus.REQUEST_TIMEOUT:
        return PostOutcome(result=PostResult.TRANSIENT, detail=detail)
    return PostOutcome(result=PostResult.REJECTED, detail=detail)


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
