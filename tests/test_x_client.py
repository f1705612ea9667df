"""The X client against the fake X API v2: signed posts, typed answers, no leaks."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
import logging
import time

import pytest

from custom_components.isp_watch import x_client
from custom_components.isp_watch.x_client import (
    PostOutcome,
    PostResult,
    VerifyError,
    XAccount,
    XClient,
    XCredentials,
)
from fakes.x_api import (
    ACCOUNT_ID,
    ACCOUNT_USERNAME,
    DUPLICATE_BODY,
    NO_CREDITS_BODY,
    NOT_ENROLLED_BODY,
    READ_ONLY_BODY,
    TEST_CREDENTIALS,
    UNAUTHORIZED_BODY,
    FakeXApi,
    ReceivedRequest,
)

# Short, so a stalled X ends a test quickly; the fake holds a stall far longer.
TIMEOUT = 1.0
SECRETS = (
    TEST_CREDENTIALS.api_key,
    TEST_CREDENTIALS.api_secret,
    TEST_CREDENTIALS.access_token,
    TEST_CREDENTIALS.access_token_secret,
)
# The libraries that do the HTTP work and the signing, and ours.
LOGGERS = (
    "custom_components.isp_watch",
    "tweepy",
    "requests",
    "urllib3",
    "oauthlib",
    "requests_oauthlib",
)


@pytest.fixture
def client(fake_x_api: FakeXApi) -> Iterator[XClient]:
    """A client with the fake's keys and a short timeout."""
    client = XClient(TEST_CREDENTIALS, timeout=TIMEOUT)
    yield client
    client.close()


def _with(**changes: str) -> XCredentials:
    keys = {
        "api_key": TEST_CREDENTIALS.api_key,
        "api_secret": TEST_CREDENTIALS.api_secret,
        "access_token": TEST_CREDENTIALS.access_token,
        "access_token_secret": TEST_CREDENTIALS.access_token_secret,
    }
    return XCredentials(**(keys | changes))


def test_post_arrives_signed(client: XClient, fake_x_api: FakeXApi) -> None:
    """The text reaches X once, with a valid OAuth 1.0a signature, and links back."""
    text = "@ExampleISPHelp Download 12.3 Mbit/s of 100 since 08:15."
    outcome = client.post(text)

    assert fake_x_api.requests == [
        ReceivedRequest("POST", "/2/tweets", signature_valid=True, text=text)
    ]
    assert fake_x_api.posts == [text]
    assert outcome.result is PostResult.POSTED
    assert outcome.tweet_id is not None
    assert outcome.url == f"https://x.com/i/web/status/{outcome.tweet_id}"
    assert outcome.retry_at is None


def test_link_names_the_account_once_known(
    client: XClient, fake_x_api: FakeXApi
) -> None:
    """After verify(), or when told the handle, links use the account's name."""
    client.verify()
    outcome = client.post("First post.")
    assert outcome.url == f"https://x.com/{ACCOUNT_USERNAME}/status/{outcome.tweet_id}"

    named = XClient(TEST_CREDENTIALS, timeout=TIMEOUT, username="someone")
    try:
        outcome = named.post("Second post.")
    finally:
        named.close()
    assert outcome.url == f"https://x.com/someone/status/{outcome.tweet_id}"


@pytest.mark.parametrize(
    "wrong",
    [
        {"api_secret": "not-the-consumer-secret"},
        {"access_token_secret": "not-the-token-secret"},
    ],
)
def test_wrong_secret_fails_auth(fake_x_api: FakeXApi, wrong: dict[str, str]) -> None:
    """A wrong secret signs wrongly: X answers 401 and nothing is published."""
    client = XClient(_with(**wrong), timeout=TIMEOUT)
    try:
        outcome = client.post("Signed with the wrong secret.")
    finally:
        client.close()

    assert outcome.result is PostResult.AUTH_FAILED
    assert outcome.detail == "Unauthorized"
    assert [request.signature_valid for request in fake_x_api.requests] == [False]
    assert fake_x_api.posts == []


@pytest.mark.parametrize(
    ("fault", "result", "detail"),
    [
        pytest.param(fault, result, detail, id=fault)
        for fault, result, detail in [
            ("401", PostResult.AUTH_FAILED, UNAUTHORIZED_BODY["detail"]),
            ("402", PostResult.NO_CREDITS, NO_CREDITS_BODY["detail"]),
            ("403-duplicate", PostResult.DUPLICATE, DUPLICATE_BODY["detail"]),
            ("403-read-only", PostResult.READ_ONLY, READ_ONLY_BODY["detail"]),
            ("403-not-enrolled", PostResult.NOT_ENROLLED, NOT_ENROLLED_BODY["detail"]),
            ("400", PostResult.REJECTED, "Tweet text is too long."),
            ("500", PostResult.TRANSIENT, "Internal Server Error"),
            ("502", PostResult.TRANSIENT, "HTTP 502"),
            ("503", PostResult.TRANSIENT, "Service Unavailable"),
        ]
    ],
)
def test_each_answer_maps_to_a_result(
    client: XClient,
    fake_x_api: FakeXApi,
    fault: str,
    result: PostResult,
    detail: str,
) -> None:
    """Each of X's error answers becomes the result the outbox acts on."""
    fake_x_api.fail_next(fault)
    outcome = client.post("Automated test: an error.")

    assert outcome == PostOutcome(result=result, detail=detail)
    assert [request.signature_valid for request in fake_x_api.requests] == [True]
    assert fake_x_api.posts == []


def test_same_text_twice_is_a_duplicate(client: XClient, fake_x_api: FakeXApi) -> None:
    """X refuses identical text; the second attempt reads as already posted."""
    first = client.post("Still slow.")
    second = client.post("Still slow.")
    assert first.result is PostResult.POSTED
    assert second.result is PostResult.DUPLICATE
    assert fake_x_api.posts == ["Still slow."]


def test_rate_limit_retries_at_the_window_reset(
    client: XClient, fake_x_api: FakeXApi
) -> None:
    """A 429 says when to try again: the 15-minute window's reset."""
    reset = int(time.time()) + 600
    fake_x_api.fail_next("429", rate_limit_reset=reset)
    outcome = client.post("Automated test: rate limited.")

    assert outcome.result is PostResult.RATE_LIMITED
    assert outcome.retry_at == datetime.fromtimestamp(reset, UTC)
    assert outcome.detail == "Rate limit exceeded"
    assert fake_x_api.posts == []


def test_rate_limit_of_the_day_waits_for_the_later_reset(
    client: XClient, fake_x_api: FakeXApi
) -> None:
    """With the 24-hour user cap spent, the window's reset would only fail again."""
    now = int(time.time())
    window_reset, daily_reset = now + 300, now + 20 * 3600
    fake_x_api.fail_next("429", rate_limit_reset=window_reset, daily_reset=daily_reset)
    outcome = client.post("Automated test: daily cap.")

    assert outcome.result is PostResult.RATE_LIMITED
    assert outcome.retry_at == datetime.fromtimestamp(daily_reset, UTC)


def test_rate_limit_without_reset_waits_a_window(
    client: XClient, fake_x_api: FakeXApi
) -> None:
    """A 429 that does not say when waits the length of X's 15-minute window."""
    fake_x_api.fail_next("429", reset_header=False)
    before = datetime.now(UTC)
    outcome = client.post("Automated test: no reset header.")
    after = datetime.now(UTC)

    assert outcome.result is PostResult.RATE_LIMITED
    assert outcome.retry_at is not None
    window = timedelta(minutes=15)
    assert before + window <= outcome.retry_at <= after + window


def test_rate_limit_reset_beyond_a_day_is_capped(
    client: XClient, fake_x_api: FakeXApi
) -> None:
    """A garbled reset years ahead waits no longer than X's longest window, a day."""
    fake_x_api.fail_next("429", rate_limit_reset=10**12)
    before = datetime.now(UTC)
    outcome = client.post("Automated test: garbled reset.")
    after = datetime.now(UTC)

    assert outcome.result is PostResult.RATE_LIMITED
    assert outcome.retry_at is not None
    day = timedelta(hours=24)
    assert before + day - timedelta(seconds=1) <= outcome.retry_at <= after + day


def test_stall_gives_up_at_the_timeout(client: XClient, fake_x_api: FakeXApi) -> None:
    """X holding a post without answering ends as transient while X still holds it."""
    fake_x_api.fail_next("stall")
    outcome = client.post("Automated test: stalled.")

    assert outcome.result is PostResult.TRANSIENT
    assert outcome.detail == "no answer from X (ReadTimeout)"
    # The client gave up on its own: the fake never answered that request.
    assert fake_x_api.holding == 1


def test_timed_out_post_that_went_out_counts_on_retry(
    client: XClient, fake_x_api: FakeXApi
) -> None:
    """X may create a post and then fail to answer; the retry is its duplicate."""
    fake_x_api.fail_next("stall-after-posting")
    first = client.post("Automated test: created, then silence.")
    retry = client.post("Automated test: created, then silence.")

    assert first.result is PostResult.TRANSIENT
    assert retry.result is PostResult.DUPLICATE
    assert fake_x_api.posts == ["Automated test: created, then silence."]


def test_reset_and_refused_connections_are_transient(
    client: XClient, fake_x_api: FakeXApi
) -> None:
    """A reset or refused connection is worth another try, and the next one works."""
    fake_x_api.fail_next("reset")
    reset = client.post("Automated test: reset.")
    fake_x_api.stop()
    refused = client.post("Automated test: refused.")
    fake_x_api.start()
    recovered = client.post("Automated test: back.")

    assert reset.result is PostResult.TRANSIENT
    assert refused.result is PostResult.TRANSIENT
    assert recovered.result is PostResult.POSTED
    assert fake_x_api.posts == ["Automated test: back."]
    # The refused attempt never reached the fake.
    assert [request.text for request in fake_x_api.requests] == [
        "Automated test: reset.",
        "Automated test: back.",
    ]


def test_origin_is_read_when_sending(
    client: XClient, fake_x_api: FakeXApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The client follows X_API_ORIGIN as it is at send time, not at creation."""
    other = FakeXApi()
    other.start()
    try:
        monkeypatch.setattr(x_client, "X_API_ORIGIN", other.origin)
        outcome = client.post("Automated test: elsewhere.")
    finally:
        other.stop()

    assert outcome.result is PostResult.POSTED
    assert other.posts == ["Automated test: elsewhere."]
    assert fake_x_api.requests == []


@pytest.mark.parametrize(
    ("access_level", "can_post"),
    [("read-write", True), ("read-write-directmessages", True), ("read", False)],
)
def test_verify_finds_the_account_and_its_permission(
    client: XClient, fake_x_api: FakeXApi, access_level: str, can_post: bool
) -> None:
    """verify() names the account; a read-only app is told apart before any post."""
    fake_x_api.access_level = access_level
    account = client.verify()

    assert account == XAccount(
        user_id=ACCOUNT_ID, username=ACCOUNT_USERNAME, can_post=can_post
    )
    assert fake_x_api.requests == [
        ReceivedRequest("GET", "/2/users/me", signature_valid=True, text=None)
    ]


@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        ("401", "invalid_auth"),
        ("429", "rate_limited"),
        ("503", "cannot_connect"),
        ("stall", "cannot_connect"),
        ("reset", "cannot_connect"),
        ("403-not-enrolled", "unknown"),
    ],
)
def test_verify_errors(
    client: XClient, fake_x_api: FakeXApi, fault: str, reason: str
) -> None:
    """Each failure becomes the config flow's error key."""
    fake_x_api.fail_next(fault)
    with pytest.raises(VerifyError) as caught:
        client.verify()
    assert caught.value.reason == reason


def test_verify_wrong_secret_and_refused(fake_x_api: FakeXApi) -> None:
    """A wrong secret is invalid_auth; X out of reach is cannot_connect."""
    wrong = XClient(_with(api_secret="not-the-consumer-secret"), timeout=TIMEOUT)
    try:
        with pytest.raises(VerifyError) as caught:
            wrong.verify()
        assert caught.value.reason == "invalid_auth"
        assert fake_x_api.requests[-1].signature_valid is False

        fake_x_api.stop()
        with pytest.raises(VerifyError) as caught:
            wrong.verify()
        assert caught.value.reason == "cannot_connect"
    finally:
        wrong.close()


def test_no_secret_in_logs_or_reprs(
    client: XClient, fake_x_api: FakeXApi, caplog: pytest.LogCaptureFixture
) -> None:
    """Keys and tokens reach no log line at DEBUG, no repr and no error message."""
    caplog.set_level(logging.DEBUG)
    for name in LOGGERS:
        caplog.set_level(logging.DEBUG, logger=name)

    seen: list[object] = [TEST_CREDENTIALS, client.verify()]
    seen.append(client.post("Automated test: logging."))
    for fault in ("401", "403-read-only", "429", "503", "stall", "reset"):
        fake_x_api.fail_next(fault)
        seen.append(client.post(f"Automated test: logging {fault}."))
    for fault in ("401", "429"):
        fake_x_api.fail_next(fault)
        with pytest.raises(VerifyError) as caught:
            client.verify()
        seen.append(caught.value)
    fake_x_api.stop()
    seen.append(client.post("Automated test: logging refused."))

    # The libraries did log at DEBUG, requests and answers included.
    loggers = {record.name for record in caplog.records}
    assert {"tweepy.client", "urllib3.connectionpool"} <= loggers
    lines = [caplog.text, *(record.getMessage() for record in caplog.records)]
    lines += [repr(thing) for thing in seen] + [str(thing) for thing in seen]
    for secret in SECRETS:
        assert not [line for line in lines if secret in line]
