"""Post to X and check an account, over tweepy's v2 client; typed outcomes, no raising.

Every call is blocking and meant for an executor thread. tweepy passes no timeout to
requests, so without one a call can hang forever: an adapter on the client's session
gives every request a default timeout.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
import logging
from typing import Any, Literal

import requests
from requests.adapters import HTTPAdapter
import tweepy

# tweepy's hard-coded origin. Requests for it go to this module attribute's value, read
# at send time, so tests point it at a local fake X API.
X_API_ORIGIN = "https://api.twitter.com"
TWEEPY_ORIGIN = "https://api.twitter.com"
DEFAULT_RATE_LIMIT_WAIT = timedelta(minutes=15)
# These loggers print the OAuth base string and Authorization header at DEBUG, which
# contain the API key and access token.
OAUTH_LOGGERS = (
    "requests_oauthlib.oauth1_auth",
    "oauthlib.oauth1.rfc5849",
    "oauthlib.oauth1.rfc5849.signature",
)


class _DropSigningDetails(logging.Filter):
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

    def __init__(self, reason: VerifyFailure) -> None:
        """Say why, as a config-flow error key."""
        super().__init__(reason)
        self.reason: VerifyFailure = reason


class PostResult(StrEnum):
    """What X made of a post."""

    POSTED = "posted"
    DUPLICATE = "duplicate"
    AUTH_FAILED = "auth_failed"
    READ_ONLY = "read_only"
    NOT_ENROLLED = "not_enrolled"
    NO_CREDITS = "no_credits"
    RATE_LIMITED = "rate_limited"
    TRANSIENT = "transient"
    REJECTED = "rejected"


@dataclass(frozen=True, slots=True, kw_only=True)
class PostOutcome:
    """X's answer to a post."""

    result: PostResult
    tweet_id: str | None = None
    url: str | None = None
    retry_at: datetime | None = None
    detail: str = ""


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
            kwargs["proxies"] = {}
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self._timeout
        return super().send(request, **kwargs)


class XClient:
    """One account's connection to the X API."""

    def __init__(self, credentials: XCredentials, *, timeout: float = 20.0) -> None:
        """Prepare the client; no request is made yet."""
        # wait_on_rate_limit would sleep this thread until the reset (and retry at once
        # without the header); the outbox decides when to try again instead.
        self._client = tweepy.Client(
            consumer_key=credentials.api_key,
            consumer_secret=credentials.api_secret,
            access_token=credentials.access_token,
            access_token_secret=credentials.access_token_secret,
            return_type=requests.Response,
            wait_on_rate_limit=False,
        )
        self._client.session.mount(TWEEPY_ORIGIN, _ApiAdapter(timeout))

    def close(self) -> None:
        """Release the HTTP connections."""
        self._client.session.close()

    def verify(self) -> XAccount:
        """Confirm the keys and find the account and its permission."""
        try:
            response: requests.Response = self._client.get_me(user_auth=True)
        except tweepy.Unauthorized as error:
            raise VerifyError("invalid_auth") from error
        except tweepy.TooManyRequests as error:
            raise VerifyError("rate_limited") from error
        except (tweepy.TwitterServerError, requests.RequestException) as error:
            raise VerifyError("cannot_connect") from error
        except tweepy.TweepyException as error:
            raise VerifyError("unknown") from error
        try:
            user = response.json()["data"]
            account = XAccount(
                user_id=str(user["id"]),
                username=str(user["username"]),
                can_post=response.headers.get("x-access-level", "read-write") != "read",
            )
        except (ValueError, KeyError, TypeError) as error:
            raise VerifyError("unknown") from error
        return account

    def post(self, text: str) -> PostOutcome:
        """Publish a post; every answer and failure becomes a PostOutcome."""
        try:
            response: requests.Response = self._client.create_tweet(
                text=text, user_auth=True
            )
        except requests.RequestException as error:
            return PostOutcome(
                result=PostResult.TRANSIENT,
                detail=f"no answer from X ({type(error).__name__})",
            )
        except tweepy.HTTPException as error:
            return _outcome_of_error(error)
        try:
            tweet_id = str(response.json()["data"]["id"])
        except ValueError, KeyError, TypeError:
            return PostOutcome(result=PostResult.POSTED, detail="X accepted the post")
        return PostOutcome(
            result=PostResult.POSTED,
            tweet_id=tweet_id,
            url=f"https://x.com/i/web/status/{tweet_id}",
            detail="posted",
        )


def _outcome_of_error(error: tweepy.HTTPException) -> PostOutcome:
    response = error.response
    status = response.status_code
    try:
        parsed: Any = response.json()
    except ValueError:
        parsed = None
    body: dict[str, Any] = parsed if isinstance(parsed, dict) else {}
    detail = str(body.get("detail") or body.get("title") or f"HTTP {status}")
    problem = f"{body.get('type', '')} {body.get('reason', '')}"
    if status == 401:
        return PostOutcome(result=PostResult.AUTH_FAILED, detail=detail)
    if status == 402:
        return PostOutcome(result=PostResult.NO_CREDITS, detail=detail)
    if status == 403:
        if "duplicate content" in detail.lower():
            return PostOutcome(result=PostResult.DUPLICATE, detail=detail)
        if "oauth1-permissions" in problem:
            return PostOutcome(result=PostResult.READ_ONLY, detail=detail)
        if "client-not-enrolled" in problem or "client-forbidden" in problem:
            return PostOutcome(result=PostResult.NOT_ENROLLED, detail=detail)
        return PostOutcome(result=PostResult.REJECTED, detail=detail)
    if status == 429:
        return PostOutcome(
            result=PostResult.RATE_LIMITED,
            retry_at=_retry_at(response.headers),
            detail=detail,
        )
    if status >= 500:
        return PostOutcome(result=PostResult.TRANSIENT, detail=detail)
    return PostOutcome(result=PostResult.REJECTED, detail=detail)


def _retry_at(headers: Any) -> datetime:
    """When a rate limit lifts: the 15-minute window, or the 24-hour cap if spent."""
    resets: list[int] = []
    if (reset := headers.get("x-rate-limit-reset")) is not None:
        resets.append(int(reset))
    if headers.get("x-user-limit-24hour-remaining") == "0" and (
        daily := headers.get("x-user-limit-24hour-reset")
    ):
        resets.append(int(daily))
    if not resets:
        return datetime.now(UTC) + DEFAULT_RATE_LIMIT_WAIT
    return datetime.fromtimestamp(max(resets), UTC)
