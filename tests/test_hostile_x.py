"""The X client against answers X would never give: every one ends in a typed outcome.

A proxy in front of X, a captive portal or a broken server can answer anything. Each
case here is scripted on the fake X API and goes through XClient's public calls, as a
post or a key check would in use.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
import json
from typing import Any

import pytest

from custom_components.isp_watch.x_client import (
    PostOutcome,
    PostResult,
    VerifyError,
    XClient,
)
from tests.fake_x_api import TEST_CREDENTIALS, FakeXApi

TIMEOUT = 1.0
# Bodies of odd shapes: valid JSON that is not an object, objects whose "errors" or
# "detail" are of the wrong type, HTML, nothing, and nesting deep enough to break a
# recursive parser.
ODD_BODIES = {
    "list": b'[{"message": "not an object"}]',
    "string": b'"Rate limit exceeded"',
    "number": b"42",
    "null": b"null",
    "errors-number": b'{"errors": 5}',
    "errors-null-item": b'{"errors": [null]}',
    "errors-number-item": b'{"errors": [7]}',
    "message-object": b'{"errors": [{"message": {"text": "nested"}}]}',
    "detail-number": b'{"detail": 5, "title": ["a"]}',
    "html": b"<html><body>Sign in to the hotel Wi-Fi</body></html>",
    "empty": b"",
    "deep": b"[" * 100_000 + b"]" * 100_000,
}


@pytest.fixture
def client(fake_x_api: FakeXApi) -> Iterator[XClient]:
    """A client with the fake's keys and a short timeout."""
    client = XClient(TEST_CREDENTIALS, timeout=TIMEOUT)
    yield client
    client.close()


def _window_from_now(outcome: PostOutcome, before: datetime, after: datetime) -> bool:
    window = timedelta(minutes=15)
    return (
        outcome.retry_at is not None
        and before + window - timedelta(seconds=1) <= outcome.retry_at <= after + window
    )


# Each odd body once, under each status in turn: the parsing does not depend on it.
POST_STATUSES = [
    (400, PostResult.REJECTED),
    (401, PostResult.AUTH_FAILED),
    (402, PostResult.NO_CREDITS),
    (403, PostResult.REJECTED),
    (500, PostResult.TRANSIENT),
    (503, PostResult.TRANSIENT),
]
VERIFY_STATUSES = [
    (400, "unknown"),
    (401, "invalid_auth"),
    (403, "unknown"),
    (429, "rate_limited"),
    (503, "cannot_connect"),
]


def _each_body_under_a_status(statuses: list[tuple[int, Any]]) -> list[Any]:
    cases = []
    for index, (name, body) in enumerate(ODD_BODIES.items()):
        status, expected = statuses[index % len(statuses)]
        cases.append(pytest.param(status, expected, body, id=f"{name}-{status}"))
    return cases


@pytest.mark.parametrize(
    ("status", "result", "body"), _each_body_under_a_status(POST_STATUSES)
)
def test_post_error_of_any_shape_has_an_outcome(
    client: XClient,
    fake_x_api: FakeXApi,
    status: int,
    result: PostResult,
    body: bytes,
) -> None:
    """An error answer is judged by its status when its body is not X's usual shape."""
    fake_x_api.fail_next("raw", status=status, body=body)
    outcome = client.post("Automated test: an odd error.")

    assert outcome == PostOutcome(result=result, detail=f"HTTP {status}")
    assert fake_x_api.posts == []


def test_redirect_is_worth_another_try(client: XClient, fake_x_api: FakeXApi) -> None:
    """X's API never redirects; a portal or proxy in the way does, for a while."""
    fake_x_api.fail_next("raw", status=302, body=b"<html>Moved</html>")
    fake_x_api.fail_next("raw", status=307, body=b"")
    assert client.post("Automated test: redirected.") == PostOutcome(
        result=PostResult.TRANSIENT, detail="HTTP 302"
    )
    with pytest.raises(VerifyError) as caught:
        client.verify()
    assert caught.value.reason == "cannot_connect"


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(ODD_BODIES[name], id=name)
        for name in ("list", "null", "errors-null-item", "deep")
    ],
)
def test_rate_limit_of_any_shape_waits_a_window(
    client: XClient, fake_x_api: FakeXApi, body: bytes
) -> None:
    """A 429 with an odd body and no reset header still waits X's 15-minute window."""
    fake_x_api.fail_next("raw", status=429, body=body)
    before = datetime.now(UTC)
    outcome = client.post("Automated test: an odd rate limit.")
    after = datetime.now(UTC)

    assert outcome.result is PostResult.RATE_LIMITED
    assert _window_from_now(outcome, before, after)


def test_error_detail_is_one_short_printable_line(
    client: XClient, fake_x_api: FakeXApi
) -> None:
    """X's words reach the logs as one short line, whatever the body holds."""
    message = "line one\nFAKE LOG LINE\r\x1b[31mred\x00" + "x" * 1000
    fake_x_api.fail_next(
        "raw", status=403, body=json.dumps({"detail": message}).encode()
    )
    outcome = client.post("Automated test: a noisy error.")

    assert outcome.result is PostResult.REJECTED
    assert outcome.detail.startswith("line one FAKE LOG LINE  [31mred x")
    assert outcome.detail.isprintable()
    assert len(outcome.detail) == 200


@pytest.mark.parametrize(
    ("status", "reason", "body"), _each_body_under_a_status(VERIFY_STATUSES)
)
def test_verify_error_of_any_shape_has_a_reason(
    client: XClient, fake_x_api: FakeXApi, status: int, reason: str, body: bytes
) -> None:
    """The key check ends in the config flow's error key, never in a traceback."""
    fake_x_api.fail_next("raw", status=status, body=body)
    with pytest.raises(VerifyError) as caught:
        client.verify()
    assert caught.value.reason == reason


SUCCESS_WITHOUT_CONFIRMATION = {
    "html": (b"<html><body>Welcome to the hotel Wi-Fi</body></html>", "text/html"),
    "empty": (b"", "application/json"),
    "object-without-data": (b'{"title": "ok"}', "application/json"),
    "data-null": (b'{"data": null}', "application/json"),
    "data-list": (b'{"data": ["1860000000000000001"]}', "application/json"),
    "id-missing": (b'{"data": {"text": "hello"}}', "application/json"),
    "id-null": (b'{"data": {"id": null}}', "application/json"),
    "id-object": (b'{"data": {"id": {"id": "1"}}}', "application/json"),
    "id-path": (b'{"data": {"id": "../../login"}}', "application/json"),
    "deep": (b"[" * 100_000 + b"]" * 100_000, "application/json"),
}


@pytest.mark.parametrize(
    ("body", "content_type"),
    SUCCESS_WITHOUT_CONFIRMATION.values(),
    ids=SUCCESS_WITHOUT_CONFIRMATION.keys(),
)
@pytest.mark.parametrize("status", [200, 201])
def test_success_without_an_id_is_not_posted(
    client: XClient,
    fake_x_api: FakeXApi,
    status: int,
    body: bytes,
    content_type: str,
) -> None:
    """A success that names no post is tried again: only X's id proves the post.

    Trying again is safe: had X created it, the same text comes back as a duplicate.
    """
    fake_x_api.fail_next("raw", status=status, body=body, content_type=content_type)
    outcome = client.post("Automated test: unconfirmed.")

    assert outcome == PostOutcome(
        result=PostResult.TRANSIENT, detail=f"no confirmation from X (HTTP {status})"
    )
    retry = client.post("Automated test: unconfirmed.")
    assert retry.result is PostResult.POSTED
    assert fake_x_api.posts == ["Automated test: unconfirmed."]


def test_numeric_id_of_older_answers_counts(
    client: XClient, fake_x_api: FakeXApi
) -> None:
    """An id given as a number, as older answers did, still names the post."""
    fake_x_api.fail_next(
        "raw", status=201, body=b'{"data": {"id": 1860000000000000042}}'
    )
    outcome = client.post("Automated test: numeric id.")

    assert outcome.result is PostResult.POSTED
    assert outcome.url == "https://x.com/i/web/status/1860000000000000042"


ACCOUNT_WITHOUT_SENSE = {
    "html": b"<html><body>Sign in</body></html>",
    "data-list": b'{"data": []}',
    "id-missing": b'{"data": {"username": "someone"}}',
    "username-object": b'{"data": {"id": "1", "username": {"name": "someone"}}}',
    "username-path": b'{"data": {"id": "1", "username": "../../login"}}',
    "username-too-long": b'{"data": {"id": "1", "username": "a_sixteen_chars_"}}',
    "username-empty": b'{"data": {"id": "1", "username": ""}}',
    "id-text": b'{"data": {"id": "me", "username": "someone"}}',
    "deep": b"[" * 100_000 + b"]" * 100_000,
}


@pytest.mark.parametrize(
    "body", ACCOUNT_WITHOUT_SENSE.values(), ids=ACCOUNT_WITHOUT_SENSE.keys()
)
def test_verify_success_without_an_account_is_unknown(
    client: XClient, fake_x_api: FakeXApi, body: bytes
) -> None:
    """A success that names no valid account fails the key check, never the flow."""
    fake_x_api.fail_next("raw", status=200, body=body)
    with pytest.raises(VerifyError) as caught:
        client.verify()
    assert caught.value.reason == "unknown"


@pytest.mark.parametrize("username", ["", "a/b", "evil.example", "a" * 16, "ä"])
def test_link_ignores_a_handle_x_would_not_give(
    fake_x_api: FakeXApi, username: str
) -> None:
    """A stored handle that is not a valid X handle never shapes a link."""
    client = XClient(TEST_CREDENTIALS, timeout=TIMEOUT, username=username)
    try:
        outcome = client.post(f"Automated test: handle {username!r}.")
    finally:
        client.close()
    assert outcome.url == f"https://x.com/i/web/status/{outcome.tweet_id}"


@pytest.mark.parametrize(
    "reset",
    ["soon", "1.7e9", " ", "-", "9" * 5000],
    ids=["word", "fraction", "blank", "dash", "5000-digits"],
)
def test_rate_limit_with_unreadable_reset_waits_a_window(
    client: XClient, fake_x_api: FakeXApi, reset: str
) -> None:
    """An unreadable reset counts as none: X's 15-minute window, not a quick retry.

    A retry after a minute would most likely meet the same limit, and X counts
    requests against a spent limit too.
    """
    fake_x_api.fail_next("429", rate_limit_reset=reset)
    before = datetime.now(UTC)
    outcome = client.post("Automated test: unreadable reset.")
    after = datetime.now(UTC)

    assert outcome.result is PostResult.RATE_LIMITED
    assert outcome.detail == "Rate limit exceeded"
    assert _window_from_now(outcome, before, after)


def test_verify_rate_limit_with_unreadable_reset(
    client: XClient, fake_x_api: FakeXApi
) -> None:
    """The key check says rate limited, whatever the reset header holds."""
    fake_x_api.fail_next("429", rate_limit_reset="soon")
    with pytest.raises(VerifyError) as caught:
        client.verify()
    assert caught.value.reason == "rate_limited"


@pytest.mark.parametrize("fault", ["trickle", "trickle-headers"])
def test_trickling_answer_ends_at_the_deadline(
    fake_x_api: FakeXApi, fault: str
) -> None:
    """An answer arriving a byte at a time ends at the deadline, as transient.

    Each byte comes well within the 1-second timeout and the whole answer would take
    far longer than the 2-second deadline. X did create the post, so the retry is
    its duplicate and counts as posted.
    """
    client = XClient(TEST_CREDENTIALS, timeout=TIMEOUT, deadline=2.0)
    try:
        fake_x_api.fail_next(fault)
        first = client.post("Automated test: trickled.")
        retry = client.post("Automated test: trickled.")
    finally:
        client.close()

    assert first == PostOutcome(
        result=PostResult.TRANSIENT, detail="no answer from X (DeadlineExceeded)"
    )
    assert retry.result is PostResult.DUPLICATE
    assert fake_x_api.posts == ["Automated test: trickled."]


def test_verify_trickling_answer_cannot_connect(fake_x_api: FakeXApi) -> None:
    """A key check whose answer trickles in ends at the deadline too."""
    client = XClient(TEST_CREDENTIALS, timeout=TIMEOUT, deadline=2.0)
    try:
        fake_x_api.fail_next("trickle")
        with pytest.raises(VerifyError) as caught:
            client.verify()
    finally:
        client.close()
    assert caught.value.reason == "cannot_connect"
    assert caught.value.detail == "DeadlineExceeded"
