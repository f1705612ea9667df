"""The post queue's policy: order, bounds, expiry, cooldown, daily cap and retries.

A plain state object: the Home Assistant side persists `as_dict()` before every attempt
and marks a post sent only after X answered, so a crash can repeat an attempt but never
lose a post; X's duplicate-content answer to such a repeat counts as sent. Cooldown and
cap live here, so no automation, however buggy, can flood the ISP: a burst of posts
sends one now and never more than the daily cap in any 24 hours.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Self
import uuid

from .models import PostOutcome, PostResult, Stored

# The daily cap counts posts over a sliding 24 hours; X refuses identical text within
# about as long, which is what posted_recently() is for.
CAP_WINDOW = timedelta(hours=24)
SENT_MEMORY = CAP_WINDOW
# X's answers that need the user to act; posting waits until they did.
PAUSING_RESULTS = frozenset(
    {
        PostResult.AUTH_FAILED,
        PostResult.READ_ONLY,
        PostResult.NOT_ENROLLED,
        PostResult.NO_CREDITS,
    }
)
# Keeps 2**n finite however long a failure streak grows; the cap applies long before.
_MAX_BACKOFF_EXPONENT = 16


@dataclass(frozen=True, slots=True, kw_only=True)
class OutboxPolicy:
    """How many posts, how old, how often.

    Attributes:
        max_items: Posts queued at most; the oldest make room for new ones.
        max_age: Posts queued longer than this are dropped unsent.
        cooldown: Time after a post before the next one goes out.
        daily_cap: Posts at most in any 24 hours.
        backoff_initial: Wait before retrying a post after a passing failure; it
            doubles with every further failure of the same post.
        backoff_max: The longest such wait.
    """

    max_items: int
    max_age: timedelta
    cooldown: timedelta
    daily_cap: int
    backoff_initial: timedelta
    backoff_max: timedelta


@dataclass(slots=True, kw_only=True)
class OutboxItem(Stored):
    """A post waiting to go out."""

    id: str
    text: str
    queued_at: datetime
    attempts: int = 0
    not_before: datetime | None = None
    last_error: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class SentPost(Stored):
    """A post that went out (or would have, in a dry run)."""

    text: str
    sent_at: datetime
    tweet_id: str | None
    url: str | None
    dry_run: bool


class Outbox:
    """Queued posts, recent posts, and whether posting waits for the user."""

    def __init__(self, policy: OutboxPolicy) -> None:
        """Start empty."""
        self.policy = policy
        # Oldest first; only the head is ever sent, so posts go out in order.
        self.items: list[OutboxItem] = []
        # Oldest first; kept for the cap, the cooldown and the duplicate check.
        self.sent: list[SentPost] = []
        self.paused_reason: str | None = None
        self.last_error: str | None = None
        # The id of the post being sent right now: neither a full queue nor expiry
        # removes it, so X's answer always finds it. Not persisted: after a restart
        # nothing is in flight.
        self.in_flight: str | None = None

    @classmethod
    def from_dict(cls, policy: OutboxPolicy, data: Mapping[str, Any]) -> Self:
        """Restore a persisted outbox under the current policy."""
        outbox = cls(policy)
        outbox.items = [OutboxItem.from_dict(item) for item in data.get("items", [])]
        outbox.sent = sorted(
            (SentPost.from_dict(post) for post in data.get("sent", [])),
            key=lambda post: post.sent_at,
        )
        outbox.paused_reason = data.get("paused_reason")
        outbox.last_error = data.get("last_error")
        return outbox

    def as_dict(self) -> dict[str, Any]:
        """A JSON-safe form of everything that must survive a restart."""
        return {
            "items": [item.as_dict() for item in self.items],
            "sent": [post.as_dict() for post in self.sent],
            "paused_reason": self.paused_reason,
            "last_error": self.last_error,
        }

    @property
    def last_sent(self) -> SentPost | None:
        """The most recent post."""
        return self.sent[-1] if self.sent else None

    def enqueue(self, text: str, now: datetime) -> tuple[OutboxItem, list[OutboxItem]]:
        """Queue a post; when full, the oldest make room and are returned."""
        item = OutboxItem(id=uuid.uuid4().hex, text=text, queued_at=now)
        self.items.append(item)
        overflow = max(len(self.items) - self.policy.max_items, 0)
        dropped = [queued for queued in self.items if queued.id != self.in_flight][
            :overflow
        ]
        self._remove(dropped)
        return item, dropped

    def expire(self, now: datetime) -> list[OutboxItem]:
        """Remove posts too old to be worth sending late, and forget old posts."""
        expired = [
            item
            for item in self.items
            if now - item.queued_at > self.policy.max_age and item.id != self.in_flight
        ]
        self._remove(expired)
        # The cooldown may be longer than the cap's 24 hours; the last post is kept
        # whatever its age, for the sensor that shows it.
        memory = max(SENT_MEMORY, self.policy.cooldown)
        self.sent = [
            post
            for index, post in enumerate(self.sent)
            if now - post.sent_at <= memory or index == len(self.sent) - 1
        ]
        return expired

    def posted_recently(self, text: str, now: datetime) -> bool:
        """Whether the same text went out in the last 24 hours."""
        return any(
            post.text == text and now - post.sent_at <= SENT_MEMORY
            for post in self.sent
        )

    def next_attempt_at(self, now: datetime) -> datetime | None:
        """When the first queued post may go out; None if nothing may.

        The latest of: now, the end of the cooldown after the last post, the moment
        the daily cap frees a slot, and the head post's own retry time.
        """
        if not self.items or self.paused_reason is not None:
            return None
        candidates = [now]
        if (head_not_before := self.items[0].not_before) is not None:
            candidates.append(head_not_before)
        if (last := self.last_sent) is not None:
            candidates.append(last.sent_at + self.policy.cooldown)
        in_window = [
            post.sent_at for post in self.sent if now - post.sent_at < CAP_WINDOW
        ]
        # A cap below one would hold every post until it expires; one is the least.
        cap = max(self.policy.daily_cap, 1)
        if len(in_window) >= cap:
            # A slot frees when the oldest post that fills the cap leaves the window.
            candidates.append(in_window[-cap] + CAP_WINDOW)
        return max(candidates)

    def take_due(self, now: datetime) -> OutboxItem | None:
        """The first queued post if it may go out now (it stays queued)."""
        when = self.next_attempt_at(now)
        if when is None or when > now:
            return None
        head = self.items[0]
        self.in_flight = head.id
        return head

    def record(
        self,
        item_id: str | OutboxItem,
        outcome: PostOutcome,
        now: datetime,
        *,
        dry_run: bool = False,
    ) -> None:
        """Apply X's answer to a post taken with take_due().

        Posted or duplicate: the post leaves the queue and counts toward cooldown and
        cap. Rate limited: it waits for X's reset. Transient: it waits an exponential
        backoff. Refused keys, permission, enrolment or credits: it stays and posting
        pauses until resume(). Rejected: it is dropped.

        Args:
            item_id: The post's id (an OutboxItem is accepted for its id).
            outcome: X's answer.
            now: When the answer came.
            dry_run: Whether the post only pretended to go out.
        """
        wanted = item_id if isinstance(item_id, str) else item_id.id
        if self.in_flight == wanted:
            self.in_flight = None
        item = next((queued for queued in self.items if queued.id == wanted), None)
        result = outcome.result
        if result in (PostResult.POSTED, PostResult.DUPLICATE):
            if item is not None:
                self._remove([item])
                text = item.text
            elif isinstance(item_id, OutboxItem):
                # It left the queue while X answered (a reload, say); it still went out.
                text = item_id.text
            else:
                return
            self.sent.append(
                SentPost(
                    text=text,
                    sent_at=now,
                    tweet_id=outcome.tweet_id,
                    url=outcome.url,
                    dry_run=dry_run,
                )
            )
            self.sent.sort(key=lambda post: post.sent_at)
            self.last_error = None
            self.paused_reason = None
            return
        if item is None:
            return
        item.attempts += 1
        item.last_error = self.last_error = f"{result.value}: {outcome.detail}"
        if result is PostResult.REJECTED:
            self._remove([item])
        elif result is PostResult.RATE_LIMITED:
            retry_at = outcome.retry_at or now + self.policy.backoff_max
            # A reset already past (a skewed clock) must not turn into a tight loop.
            item.not_before = max(retry_at, now + self.policy.backoff_initial)
        elif result is PostResult.TRANSIENT:
            exponent = min(item.attempts - 1, _MAX_BACKOFF_EXPONENT)
            backoff = self.policy.backoff_initial * 2**exponent
            item.not_before = now + min(backoff, self.policy.backoff_max)
        elif result in PAUSING_RESULTS:
            self.paused_reason = result.value

    def resume(self) -> None:
        """Try again after the user acted (new keys, permission, credits)."""
        self.paused_reason = None

    def _remove(self, leaving: list[OutboxItem]) -> None:
        ids = {item.id for item in leaving}
        self.items = [item for item in self.items if item.id not in ids]
