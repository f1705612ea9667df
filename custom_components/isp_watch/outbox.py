"""The post queue's policy: order, bounds, expiry, cooldown, daily cap and retries.

A plain state object: the Home Assistant side persists `as_dict()` before every attempt
and marks a post sent only after X answered, so a crash can repeat an attempt but never
lose a post; X's duplicate-content answer to such a repeat counts as sent. Cooldown and
cap live here, so no automation, however buggy, can flood the ISP.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Self
import uuid

from .x_client import PostOutcome, PostResult

SENT_MEMORY = timedelta(hours=24)
# X's answers that need the user to act; posting waits until they did.
PAUSING_RESULTS = frozenset(
    {
        PostResult.AUTH_FAILED,
        PostResult.READ_ONLY,
        PostResult.NOT_ENROLLED,
        PostResult.NO_CREDITS,
    }
)


@dataclass(frozen=True, slots=True, kw_only=True)
class OutboxPolicy:
    """How many posts, how old, how often."""

    max_items: int = 20
    max_age: timedelta = timedelta(hours=24)
    cooldown: timedelta = timedelta(hours=6)
    daily_cap: int = 5
    backoff_initial: timedelta = timedelta(minutes=1)
    backoff_max: timedelta = timedelta(minutes=30)


@dataclass(slots=True, kw_only=True)
class OutboxItem:
    """A post waiting to go out."""

    id: str
    text: str
    queued_at: datetime
    attempts: int = 0
    not_before: datetime | None = None
    last_error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """A JSON-safe form."""
        return {
            "id": self.id,
            "text": self.text,
            "queued_at": self.queued_at.isoformat(),
            "attempts": self.attempts,
            "not_before": self.not_before.isoformat() if self.not_before else None,
            "last_error": self.last_error,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        """Read the JSON-safe form."""
        return cls(
            id=str(data["id"]),
            text=str(data["text"]),
            queued_at=datetime.fromisoformat(data["queued_at"]),
            attempts=int(data["attempts"]),
            not_before=(
                datetime.fromisoformat(data["not_before"])
                if data.get("not_before")
                else None
            ),
            last_error=data.get("last_error"),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class SentPost:
    """A post that went out (or would have, in a dry run)."""

    text: str
    sent_at: datetime
    tweet_id: str | None
    url: str | None
    dry_run: bool

    def as_dict(self) -> dict[str, Any]:
        """A JSON-safe form."""
        return {
            "text": self.text,
            "sent_at": self.sent_at.isoformat(),
            "tweet_id": self.tweet_id,
            "url": self.url,
            "dry_run": self.dry_run,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        """Read the JSON-safe form."""
        return cls(
            text=str(data["text"]),
            sent_at=datetime.fromisoformat(data["sent_at"]),
            tweet_id=data.get("tweet_id"),
            url=data.get("url"),
            dry_run=bool(data.get("dry_run", False)),
        )


class Outbox:
    """Queued posts, recent posts, and whether posting waits for the user."""

    def __init__(self, policy: OutboxPolicy) -> None:
        """Start empty."""
        self.policy = policy
        self.items: list[OutboxItem] = []
        self.sent: list[SentPost] = []
        self.paused_reason: str | None = None
        self.last_error: str | None = None
        # The post being sent right now; a full queue never drops it.
        self.in_flight: str | None = None

    @classmethod
    def from_dict(cls, policy: OutboxPolicy, data: Mapping[str, Any]) -> Self:
        """Restore a persisted outbox under the current policy."""
        outbox = cls(policy)
        outbox.items = [OutboxItem.from_dict(item) for item in data.get("items", [])]
        outbox.sent = [SentPost.from_dict(post) for post in data.get("sent", [])]
        outbox.paused_reason = data.get("paused_reason")
        outbox.last_error = data.get("last_error")
        return outbox

    def as_dict(self) -> dict[str, Any]:
        """A JSON-safe form of everything."""
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
        self.items = [queued for queued in self.items if queued not in dropped]
        return item, dropped

    def expire(self, now: datetime) -> list[OutboxItem]:
        """Remove posts too old to be worth sending late, and forget old posts."""
        expired = [
            item for item in self.items if now - item.queued_at > self.policy.max_age
        ]
        self.items = [item for item in self.items if item not in expired]
        self.sent = [post for post in self.sent if now - post.sent_at <= SENT_MEMORY]
        return expired

    def posted_recently(self, text: str, now: datetime) -> bool:
        """Whether the same text went out in the last 24 hours."""
        return any(
            post.text == text and now - post.sent_at <= SENT_MEMORY
            for post in self.sent
        )

    def next_attempt_at(self, now: datetime) -> datetime | None:
        """When the first queued post may go out; None if nothing may."""
        if not self.items or self.paused_reason is not None:
            return None
        head = self.items[0]
        candidates = [now]
        if head.not_before is not None:
            candidates.append(head.not_before)
        if self.sent:
            candidates.append(self.sent[-1].sent_at + self.policy.cooldown)
        window = [post for post in self.sent if now - post.sent_at < SENT_MEMORY]
        if len(window) >= self.policy.daily_cap:
            # The cap frees a slot when the oldest post counted leaves the 24 hours.
            candidates.append(window[-self.policy.daily_cap].sent_at + SENT_MEMORY)
        return max(candidates)

    def take_due(self, now: datetime) -> OutboxItem | None:
        """The first queued post if it may go out now (it stays queued)."""
        when = self.next_attempt_at(now)
        if when is None or when > now:
            return None
        self.in_flight = self.items[0].id
        return self.items[0]

    def record(
        self,
        item: OutboxItem,
        outcome: PostOutcome,
        now: datetime,
        *,
        dry_run: bool = False,
    ) -> None:
        """Apply X's answer to a post taken with take_due()."""
        self.in_flight = None
        item.attempts += 1
        result = outcome.result
        # The post may have expired while X was answering; if it went out, it counts.
        queued = item in self.items
        if result in (PostResult.POSTED, PostResult.DUPLICATE):
            if queued:
                self.items.remove(item)
            self.sent.append(
                SentPost(
                    text=item.text,
                    sent_at=now,
                    tweet_id=outcome.tweet_id,
                    url=outcome.url,
                    dry_run=dry_run,
                )
            )
            self.last_error = None
            return
        if not queued:
            return
        item.last_error = self.last_error = f"{result.value}: {outcome.detail}"
        if result is PostResult.REJECTED:
            self.items.remove(item)
        elif result is PostResult.RATE_LIMITED:
            item.not_before = outcome.retry_at or now + self.policy.backoff_max
        elif result is PostResult.TRANSIENT:
            # The exponent is bounded so a long failure streak cannot overflow.
            backoff = self.policy.backoff_initial * 2 ** min(item.attempts - 1, 16)
            item.not_before = now + min(backoff, self.policy.backoff_max)
        elif result in PAUSING_RESULTS:
            self.paused_reason = result.value

    def resume(self) -> None:
        """Try again after the user acted (new keys, permission, credits)."""
        self.paused_reason = None
