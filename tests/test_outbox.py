"""The outbox policy: order, bounds, expiry, cooldown, daily cap, retries, restarts."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
import json

import pytest

from custom_components.isp_watch.const import OPTION_DEFAULTS
from custom_components.isp_watch.data import IspWatchSettings
from custom_components.isp_watch.models import PostOutcome, PostResult
from custom_components.isp_watch.outbox import Outbox, OutboxItem, SentPost

T0 = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
MINUTE = timedelta(minutes=1)
# The policy a new entry runs with, read as the integration reads it.
POLICY = IspWatchSettings.from_config({}, OPTION_DEFAULTS).outbox
# Nothing between posts but order: for tests about the queue itself.
UNTHROTTLED = replace(POLICY, cooldown=timedelta(0), daily_cap=1000)


def _posted(tweet_id: str = "1860000000000000001") -> PostOutcome:
    return PostOutcome(
        result=PostResult.POSTED,
        tweet_id=tweet_id,
        url=f"https://x.com/i/web/status/{tweet_id}",
        detail="posted",
    )


def _answer(result: PostResult, retry_at: datetime | None = None) -> PostOutcome:
    return PostOutcome(
        result=result, retry_at=retry_at, detail=f"X said {result.value}"
    )


def _send_all(outbox: Outbox, start: datetime, until: datetime) -> list[SentPost]:
    """Run the outbox as the sender does, X accepting everything; what went out."""
    sent: list[SentPost] = []
    now = start
    while True:
        outbox.expire(now)
        if (item := outbox.take_due(now)) is not None:
            outbox.record(item.id, _posted(), now)
            assert outbox.last_sent is not None
            sent.append(outbox.last_sent)
            continue
        when = outbox.next_attempt_at(now)
        if when is None or when > until:
            return sent
        now = when


def _most_in_a_day(sent: list[SentPost]) -> int:
    """The most posts in any 24 hours, a window starting at each post."""
    times = [post.sent_at for post in sent]
    return max(
        (
            sum(start <= t < start + timedelta(hours=24) for t in times)
            for start in times
        ),
        default=0,
    )


def test_posts_go_out_in_order() -> None:
    """The oldest queued post goes first; taking it does not remove it."""
    outbox = Outbox(UNTHROTTLED)
    for text in ("first", "second", "third"):
        outbox.enqueue(text, T0)

    head = outbox.take_due(T0)
    assert head is not None
    assert head.text == "first"
    assert [item.text for item in outbox.items] == ["first", "second", "third"]

    sent = _send_all(outbox, T0, T0)
    assert [post.text for post in sent] == ["first", "second", "third"]
    assert outbox.items == []
    assert outbox.next_attempt_at(T0) is None


def test_full_queue_drops_the_oldest() -> None:
    """Past max_items, the oldest posts make room and the caller hears which."""
    outbox = Outbox(replace(POLICY, max_items=3))
    items = [outbox.enqueue(f"post {n}", T0 + n * MINUTE)[0] for n in range(3)]

    item, dropped = outbox.enqueue("post 3", T0 + 3 * MINUTE)
    assert dropped == [items[0]]
    _, dropped = outbox.enqueue("post 4", T0 + 4 * MINUTE)
    assert dropped == [items[1]]
    assert [queued.text for queued in outbox.items] == ["post 2", "post 3", "post 4"]
    assert item in outbox.items


def test_full_queue_keeps_the_post_in_flight() -> None:
    """The post being sent is not dropped under it; the next oldest is."""
    outbox = Outbox(replace(POLICY, max_items=2))
    outbox.enqueue("sending", T0)
    outbox.enqueue("waiting", T0)
    assert outbox.take_due(T0) is not None

    _, dropped = outbox.enqueue("newest", T0)
    assert [item.text for item in dropped] == ["waiting"]

    outbox.record(outbox.items[0].id, _posted(), T0)
    assert outbox.last_sent is not None
    assert outbox.last_sent.text == "sending"
    assert [item.text for item in outbox.items] == ["newest"]


def test_old_posts_expire() -> None:
    """A post older than max_age is no longer worth sending; younger ones stay."""
    outbox = Outbox(POLICY)
    old, _ = outbox.enqueue("queued at nine", T0)
    young, _ = outbox.enqueue("queued at eleven", T0 + 2 * HOUR)

    assert outbox.expire(T0 + 24 * HOUR) == []
    assert outbox.expire(T0 + 24 * HOUR + MINUTE) == [old]
    assert outbox.items == [young]
    assert outbox.expire(T0 + 27 * HOUR) == [young]
    assert outbox.next_attempt_at(T0 + 27 * HOUR) is None


def test_post_in_flight_does_not_expire() -> None:
    """A post X is answering for counts when the answer comes, however late."""
    outbox = Outbox(POLICY)
    item, _ = outbox.enqueue("slow answer", T0)
    outbox.take_due(T0 + 23 * HOUR)
    assert outbox.expire(T0 + 25 * HOUR) == []

    outbox.record(item.id, _posted(), T0 + 25 * HOUR)
    assert outbox.last_sent is not None
    assert outbox.last_sent.text == "slow answer"


def test_cooldown_spaces_posts() -> None:
    """After a post the next waits the cooldown, six hours by default."""
    outbox = Outbox(POLICY)
    outbox.enqueue("one", T0)
    outbox.enqueue("two", T0)
    first = outbox.take_due(T0)
    assert first is not None
    outbox.record(first.id, _posted(), T0)

    assert outbox.next_attempt_at(T0) == T0 + 6 * HOUR
    assert outbox.take_due(T0 + 6 * HOUR - MINUTE) is None
    second = outbox.take_due(T0 + 6 * HOUR)
    assert second is not None
    assert second.text == "two"


def test_cooldown_longer_than_a_day_is_remembered() -> None:
    """A 48-hour cooldown holds even after the 24-hour memory of posts would end."""
    outbox = Outbox(replace(POLICY, cooldown=48 * HOUR, max_age=72 * HOUR))
    outbox.enqueue("one", T0)
    _send_all(outbox, T0, T0)
    outbox.enqueue("two", T0 + 30 * HOUR)

    outbox.expire(T0 + 30 * HOUR)
    assert outbox.next_attempt_at(T0 + 30 * HOUR) == T0 + 48 * HOUR


def test_burst_with_defaults_sends_one_now_and_at_most_five_a_day() -> None:
    """An automation gone wild queues 50 posts: one goes now, the cap holds."""
    outbox = Outbox(POLICY)
    dropped = []
    for n in range(50):
        dropped += outbox.enqueue(f"Slow again, report {n}", T0)[1]
    assert len(outbox.items) == 20
    assert len(dropped) == 30

    sent = _send_all(outbox, T0, T0)
    assert [post.sent_at for post in sent] == [T0]

    sent += _send_all(outbox, T0, T0 + 72 * HOUR)
    assert _most_in_a_day(sent) <= 5
    # Six hours apart, until the queued posts grew too old to matter.
    assert [post.sent_at - T0 for post in sent] == [n * 6 * HOUR for n in range(5)]
    assert outbox.items == []


def test_daily_cap_without_cooldown() -> None:
    """With no cooldown, the cap alone allows five, then waits for a slot to free."""
    outbox = Outbox(replace(POLICY, cooldown=timedelta(0), max_age=7 * 24 * HOUR))
    for n in range(50):
        outbox.enqueue(f"report {n}", T0)

    sent = _send_all(outbox, T0, T0 + 72 * HOUR)
    assert [post.sent_at for post in sent] == [
        T0 + day * 24 * HOUR for day in range(4) for _ in range(5)
    ]
    assert _most_in_a_day(sent) == 5
    assert [post.text for post in sent] == [f"report {n}" for n in range(30, 50)]


def test_transient_failures_back_off_up_to_the_cap() -> None:
    """Each failure doubles the wait from one minute, never beyond thirty."""
    outbox = Outbox(POLICY)
    item, _ = outbox.enqueue("flaky", T0)
    now = T0
    waits = []
    for _ in range(8):
        taken = outbox.take_due(now)
        assert taken is not None
        outbox.record(taken.id, _answer(PostResult.TRANSIENT), now)
        when = outbox.next_attempt_at(now)
        assert when is not None
        assert outbox.take_due(when - timedelta(seconds=1)) is None
        waits.append(int((when - now) / MINUTE))
        now = when

    assert waits == [1, 2, 4, 8, 16, 30, 30, 30]
    assert item.attempts == 8
    assert outbox.last_error == "transient: X said transient"


def test_rate_limit_waits_for_x_reset() -> None:
    """A 429 holds the queue until the reset X named."""
    outbox = Outbox(POLICY)
    outbox.enqueue("limited", T0)
    outbox.enqueue("behind it", T0)
    taken = outbox.take_due(T0)
    assert taken is not None
    outbox.record(
        taken.id, _answer(PostResult.RATE_LIMITED, retry_at=T0 + 3 * HOUR), T0
    )

    assert outbox.next_attempt_at(T0) == T0 + 3 * HOUR
    assert outbox.take_due(T0 + 3 * HOUR - MINUTE) is None
    again = outbox.take_due(T0 + 3 * HOUR)
    assert again is not None
    assert again.text == "limited"


@pytest.mark.parametrize(
    ("retry_at", "wait"),
    [
        (T0 - HOUR, MINUTE),  # a reset already past: still not a tight loop
        (None, 30 * MINUTE),  # no reset known: the longest backoff
    ],
)
def test_rate_limit_without_a_future_reset(
    retry_at: datetime | None, wait: timedelta
) -> None:
    """A 429 with a reset in the past, or none, still waits."""
    outbox = Outbox(POLICY)
    item, _ = outbox.enqueue("limited", T0)
    outbox.take_due(T0)
    outbox.record(item.id, _answer(PostResult.RATE_LIMITED, retry_at=retry_at), T0)
    assert outbox.next_attempt_at(T0) == T0 + wait


@pytest.mark.parametrize(
    "result",
    [
        PostResult.AUTH_FAILED,
        PostResult.READ_ONLY,
        PostResult.NOT_ENROLLED,
        PostResult.NO_CREDITS,
    ],
)
def test_problems_the_user_must_fix_pause_until_resumed(result: PostResult) -> None:
    """Keys, permission, enrolment or credits: the post waits, nothing is tried."""
    outbox = Outbox(POLICY)
    item, _ = outbox.enqueue("keep me", T0)
    outbox.take_due(T0)
    outbox.record(item.id, _answer(result), T0)

    assert outbox.paused_reason == result.value
    assert outbox.items == [item]
    assert outbox.next_attempt_at(T0 + 5 * HOUR) is None
    assert outbox.take_due(T0 + 5 * HOUR) is None
    outbox.enqueue("also waits", T0 + 5 * HOUR)
    assert outbox.take_due(T0 + 5 * HOUR) is None

    outbox.resume()
    assert outbox.paused_reason is None
    assert outbox.next_attempt_at(T0 + 5 * HOUR) == T0 + 5 * HOUR
    sent = _send_all(outbox, T0 + 5 * HOUR, T0 + 5 * HOUR)
    assert [post.text for post in sent] == ["keep me"]


def test_duplicate_counts_as_sent() -> None:
    """X's duplicate answer means the post is out: it leaves, and counts."""
    outbox = Outbox(POLICY)
    item, _ = outbox.enqueue("already out", T0)
    outbox.enqueue("next", T0)
    outbox.take_due(T0)
    outbox.record(item.id, _answer(PostResult.DUPLICATE), T0)

    assert [queued.text for queued in outbox.items] == ["next"]
    assert outbox.last_sent == SentPost(
        text="already out", sent_at=T0, tweet_id=None, url=None, dry_run=False
    )
    assert outbox.next_attempt_at(T0) == T0 + 6 * HOUR
    assert outbox.posted_recently("already out", T0 + HOUR)


def test_rejected_post_is_dropped_with_the_reason() -> None:
    """A post X refuses as it is leaves the queue; the error stays visible."""
    outbox = Outbox(POLICY)
    item, _ = outbox.enqueue("x" * 300, T0)
    outbox.take_due(T0)
    outbox.record(item.id, _answer(PostResult.REJECTED), T0)

    assert outbox.items == []
    assert outbox.sent == []
    assert outbox.last_error == "rejected: X said rejected"


def test_posted_recently_covers_a_day() -> None:
    """The same text within 24 hours is a duplicate for X; later it is not."""
    outbox = Outbox(POLICY)
    outbox.enqueue("The line is slow.", T0)
    _send_all(outbox, T0, T0)

    assert outbox.posted_recently("The line is slow.", T0 + 23 * HOUR)
    assert not outbox.posted_recently("The line is slow again.", T0 + HOUR)
    assert not outbox.posted_recently("The line is slow.", T0 + 25 * HOUR)


def test_last_post_is_kept_after_a_quiet_week() -> None:
    """Old posts are forgotten, except the last one, which the user still sees."""
    outbox = Outbox(UNTHROTTLED)
    outbox.enqueue("older", T0)
    outbox.enqueue("last", T0)
    _send_all(outbox, T0, T0)

    outbox.expire(T0 + 7 * 24 * HOUR)
    assert [post.text for post in outbox.sent] == ["last"]


def test_dry_run_posts_are_marked() -> None:
    """A dry run counts like a post, so it shows what would have gone out and when."""
    outbox = Outbox(POLICY)
    item, _ = outbox.enqueue("pretend", T0)
    outbox.take_due(T0)
    outbox.record(item.id, PostOutcome(result=PostResult.POSTED), T0, dry_run=True)
    assert outbox.last_sent is not None
    assert outbox.last_sent.dry_run is True


def test_record_accepts_the_taken_item() -> None:
    """Passing the item taken with take_due() works as passing its id."""
    outbox = Outbox(POLICY)
    outbox.enqueue("by item", T0)
    taken = outbox.take_due(T0)
    assert taken is not None
    outbox.record(taken, _posted(), T0)
    assert outbox.items == []
    assert outbox.last_sent is not None
    assert outbox.last_sent.text == "by item"


def test_answer_for_a_post_the_queue_lost() -> None:
    """A reload that lost the post: if X published it, it still counts as sent."""
    outbox = Outbox(POLICY)
    stored_before = json.loads(json.dumps(outbox.as_dict()))
    outbox.enqueue("in flight", T0)
    taken = outbox.take_due(T0)
    assert taken is not None
    reloaded = Outbox.from_dict(POLICY, stored_before)

    reloaded.record(taken.id, _answer(PostResult.TRANSIENT), T0)
    assert reloaded.items == []
    assert reloaded.last_error is None
    reloaded.record(taken, _posted(), T0)
    assert reloaded.last_sent is not None
    assert reloaded.last_sent.text == "in flight"


def _busy_outbox() -> Outbox:
    """An outbox with something in every field."""
    outbox = Outbox(POLICY)
    outbox.enqueue("sent for real", T0)
    _send_all(outbox, T0, T0)
    outbox.enqueue("dry", T0 + 6 * HOUR)
    dry = outbox.take_due(T0 + 6 * HOUR)
    assert dry is not None
    outbox.record(
        dry.id, PostOutcome(result=PostResult.POSTED), T0 + 6 * HOUR, dry_run=True
    )
    failing, _ = outbox.enqueue("Tröge 日本語 😀 https://example.com", T0 + 7 * HOUR)
    outbox.enqueue("behind it", T0 + 8 * HOUR)
    taken = outbox.take_due(T0 + 12 * HOUR)
    assert taken is failing
    outbox.record(taken.id, _answer(PostResult.TRANSIENT), T0 + 12 * HOUR)
    return outbox


def test_state_survives_a_restart() -> None:
    """as_dict() through JSON and back keeps every field and the same decisions."""
    before = _busy_outbox()
    stored = json.loads(json.dumps(before.as_dict()))
    after = Outbox.from_dict(POLICY, stored)

    assert after.items == before.items
    assert after.sent == before.sent
    assert after.paused_reason == before.paused_reason
    assert after.last_error == before.last_error == "transient: X said transient"
    assert after.last_sent == before.last_sent
    assert after.as_dict() == before.as_dict()
    later = T0 + 12 * HOUR + MINUTE
    assert after.next_attempt_at(later) == before.next_attempt_at(later)
    assert after.items[0].attempts == 1
    assert after.items[0].not_before == T0 + 12 * HOUR + MINUTE
    assert after.sent[-1].dry_run is True

    before.take_due(later)
    before.record(before.items[0].id, _answer(PostResult.NO_CREDITS), later)
    paused = Outbox.from_dict(POLICY, json.loads(json.dumps(before.as_dict())))
    assert paused.paused_reason == "no_credits"
    assert paused.next_attempt_at(later) is None


def test_crash_mid_post_sends_once() -> None:
    """Persisted before the attempt, lost before the answer: it counts once."""
    outbox = Outbox(POLICY)
    item, _ = outbox.enqueue("The line is slow.", T0)
    outbox.enqueue("queued behind", T0)
    assert outbox.take_due(T0) is item
    stored = json.loads(json.dumps(outbox.as_dict()))
    # X created the post; Home Assistant stopped before the answer arrived.

    restarted = Outbox.from_dict(POLICY, stored)
    retry = restarted.take_due(T0 + 2 * MINUTE)
    assert retry is not None
    assert retry.id == item.id
    restarted.record(retry.id, _answer(PostResult.DUPLICATE), T0 + 2 * MINUTE)

    assert [post.text for post in restarted.sent] == ["The line is slow."]
    assert [queued.text for queued in restarted.items] == ["queued behind"]
    assert restarted.next_attempt_at(T0 + 2 * MINUTE) == T0 + 2 * MINUTE + 6 * HOUR


def test_item_round_trip_alone() -> None:
    """An item's JSON form reads back as the same item."""
    item = OutboxItem(
        id="abc",
        text="hello",
        queued_at=T0,
        attempts=3,
        not_before=T0 + HOUR,
        last_error="transient: no answer from X (ReadTimeout)",
    )
    assert OutboxItem.from_dict(json.loads(json.dumps(item.as_dict()))) == item


def test_an_outbox_stored_by_earlier_versions_loads() -> None:
    """The stored form has not changed: a file written before still reads back."""
    stored = {
        "items": [
            {
                "id": "5f0c",
                "text": "@ExampleISPHelp The line is slow.",
                "queued_at": "2026-11-22T09:00:00+00:00",
                "attempts": 2,
                "not_before": "2026-11-22T09:04:00+00:00",
                "last_error": "transient: no answer from X (ReadTimeout)",
            }
        ],
        "sent": [
            {
                "text": "@ExampleISPHelp Down since 08:00.",
                "sent_at": "2026-11-22T08:30:00+00:00",
                "tweet_id": "1860000000000000001",
                "url": "https://x.com/i/web/status/1860000000000000001",
                "dry_run": False,
            }
        ],
        "paused_reason": None,
        "last_error": "transient: no answer from X (ReadTimeout)",
    }

    outbox = Outbox.from_dict(POLICY, stored)

    assert outbox.items == [
        OutboxItem(
            id="5f0c",
            text="@ExampleISPHelp The line is slow.",
            queued_at=T0,
            attempts=2,
            not_before=T0 + 4 * MINUTE,
            last_error="transient: no answer from X (ReadTimeout)",
        )
    ]
    assert outbox.last_sent == SentPost(
        text="@ExampleISPHelp Down since 08:00.",
        sent_at=T0 - HOUR / 2,
        tweet_id="1860000000000000001",
        url="https://x.com/i/web/status/1860000000000000001",
        dry_run=False,
    )
    assert outbox.as_dict() == stored
