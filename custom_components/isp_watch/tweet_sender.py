"""Drives the outbox: persists posts, sends them to X, and reacts to its answers."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
import logging
import re
from typing import TYPE_CHECKING, Any, override

from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.event import async_track_point_in_utc_time
from homeassistant.helpers.storage import Store
from homeassistant.helpers.update_coordinator import DataUpdateCoordinator
from homeassistant.util import dt as dt_util

from .const import (
    CONF_ACCESS_TOKEN,
    CONF_ACCESS_TOKEN_SECRET,
    CONF_API_KEY,
    CONF_API_SECRET,
    CONF_ISP_HANDLE,
    CONF_X_USERNAME,
    DOMAIN,
    X_CREDENTIAL_KEYS,
)
from .models import PostOutcome, PostResult
from .outbox import Outbox, OutboxItem
from .repairs import async_set_issue
from .tweet_length import MAX_WEIGHTED_LENGTH, check_message, weighted_length
from .x_client import REQUEST_DEADLINE, XClient, XCredentials

if TYPE_CHECKING:
    from .data import IspWatchConfigEntry, IspWatchSettings

_LOGGER = logging.getLogger(__package__)

STORAGE_VERSION = 1
# Posting waits this long at most for X; the client's own timeout is shorter, so this
# only matters if the executor thread itself is stuck.
POST_TIMEOUT = REQUEST_DEADLINE + timedelta(seconds=15)
# What X's answer means for the user, as a repair issue that stays until a post works.
ISSUES_BY_RESULT = {
    PostResult.READ_ONLY: "x_read_only",
    PostResult.NOT_ENROLLED: "x_not_enrolled",
    PostResult.NO_CREDITS: "x_no_credits",
}


def outbox_store(hass: HomeAssistant, entry_id: str) -> Store[dict[str, Any]]:
    """The store that keeps an entry's queued posts across restarts."""
    return Store(hass, STORAGE_VERSION, f"{DOMAIN}.{entry_id}.outbox")


def credentials_from_entry(entry: IspWatchConfigEntry) -> XCredentials | None:
    """The X keys of an entry, or None when no account was added."""
    data = entry.data
    if not all(data.get(key) for key in X_CREDENTIAL_KEYS):
        return None
    return XCredentials(
        api_key=data[CONF_API_KEY],
        api_secret=data[CONF_API_SECRET],
        access_token=data[CONF_ACCESS_TOKEN],
        access_token_secret=data[CONF_ACCESS_TOKEN_SECRET],
    )


class TweetSender(DataUpdateCoordinator[Outbox]):
    """Queues posts on disk first, then sends them when policy and X allow.

    A coordinator without an interval: its data is the outbox, and every change to it
    is pushed to the entities that show it.
    """

    config_entry: IspWatchConfigEntry

    def __init__(
        self,
        hass: HomeAssistant,
        entry: IspWatchConfigEntry,
        settings: IspWatchSettings,
        credentials: XCredentials,
    ) -> None:
        """Prepare the sender; nothing is sent before async_load."""
        super().__init__(
            hass,
            _LOGGER,
            config_entry=entry,
            name=f"{DOMAIN} posts",
            update_interval=None,
        )
        self.policy = settings.outbox
        self.dry_run = settings.dry_run
        self.data = Outbox(self.policy)
        self._client = XClient(credentials, username=entry.data.get(CONF_X_USERNAME))
        self._store = outbox_store(hass, entry.entry_id)
        self._handle: str | None = entry.data.get(CONF_ISP_HANDLE) or None
        self._send_lock = asyncio.Lock()
        self._unsub_timer: CALLBACK_TYPE | None = None

    async def async_load(self) -> None:
        """Restore queued posts and send what is due."""
        stored = await self._store.async_load()
        if stored:
            self.data = Outbox.from_dict(self.policy, stored)
        # A reload follows a reauth or a changed account: the reason for a pause may be
        # gone, and one attempt tells.
        self.outbox.resume()
        self.async_set_updated_data(self.outbox)
        self._schedule()

    @override
    async def async_shutdown(self) -> None:
        """Stop the timer and release the HTTP session."""
        self._cancel_timer()
        await super().async_shutdown()
        await self.hass.async_add_executor_job(self._client.close)

    @property
    def outbox(self) -> Outbox:
        """The queued and the recent posts: the data this coordinator shares."""
        return self.data

    @override
    async def _async_update_data(self) -> Outbox:
        """The queue as it is: every change is pushed, so there is nothing to fetch."""
        return self.outbox

    def compose(self, message: str, now: datetime) -> str:
        """The text that will be posted: addressed to the ISP, never a duplicate."""
        text = message.strip()
        if self._handle and not re.search(
            rf"(?<!\w)@{re.escape(self._handle)}\b", text, re.IGNORECASE
        ):
            text = f"@{self._handle} {text}"
        if self.outbox.posted_recently(text, now) or any(
            item.text == text for item in self.outbox.items
        ):
            # X refuses identical text; the local time says when it was asked for.
            text = f"{text} ({dt_util.as_local(now):%H:%M})"
        return text

    async def async_queue(self, message: str) -> OutboxItem:
        """Persist a post; it goes out when cooldown, cap and X allow."""
        # Judged as the automation sent it: a bare handle is not a message, and a
        # huge or broken text must not reach the length count or the store.
        if (problem := check_message(message)) is not None:
            raise ServiceValidationError(
                translation_domain=DOMAIN,
                translation_key=problem.key,
                translation_placeholders=dict(problem.placeholders),
            )
        now = dt_util.utcnow()
        text = self.compose(message, now)
        length = weighted_length(text)
        if length > MAX_WEIGHTED_LENGTH:
            raise ServiceValidationError(
                translation_domain=DOMAIN,
                translation_key="tweet_too_long",
                translation_placeholders={
                    "length": str(length),
                    "max_length": str(MAX_WEIGHTED_LENGTH),
                },
            )
        item, dropped = self.outbox.enqueue(text, now)
        for old in dropped:
            _LOGGER.warning(
                "The post queue of %s is full; dropped the oldest post from %s",
                self.config_entry.title,
                old.queued_at.isoformat(),
            )
        self._log_expired(self.outbox.expire(now))
        await self._save()
        self._schedule()
        return item

    async def async_send_due(self) -> None:
        """Send the head of the queue if it may go out now."""
        async with self._send_lock:
            now = dt_util.utcnow()
            expired = self.outbox.expire(now)
            self._log_expired(expired)
            item = self.outbox.take_due(now)
            if item is None and expired:
                await self._save()
            if item is not None:
                outcome = await self._post(item)
                self.outbox.record(
                    item, outcome, dt_util.utcnow(), dry_run=self.dry_run
                )
                await self._save()
                self._react(outcome)
        self._schedule()

    async def _post(self, item: OutboxItem) -> PostOutcome:
        if self.dry_run:
            _LOGGER.info("Dry run, not posted to X: %s", item.text)
            return PostOutcome(result=PostResult.POSTED, detail="dry run")
        try:
            async with asyncio.timeout(POST_TIMEOUT.total_seconds()):
                return await self.hass.async_add_executor_job(
                    self._client.post, item.text
                )
        except TimeoutError:
            return PostOutcome(
                result=PostResult.TRANSIENT, detail="X did not answer in time"
            )
        except Exception as error:  # a send must always end in an outcome
            # The client types whatever X sends; this is for the executor or the
            # library failing, which must not leave the post in flight for good.
            _LOGGER.exception("Posting to X failed unexpectedly")
            return PostOutcome(result=PostResult.TRANSIENT, detail=type(error).__name__)

    def _react(self, outcome: PostOutcome) -> None:
        if outcome.result in (PostResult.POSTED, PostResult.DUPLICATE):
            _LOGGER.debug("Posted to X: %s", outcome.url or outcome.detail)
            for issue in ISSUES_BY_RESULT.values():
                async_set_issue(self.hass, self.config_entry, issue, active=False)
        elif outcome.result is PostResult.AUTH_FAILED:
            _LOGGER.warning(
                "X refused the keys of %s; posts wait for new keys",
                self.config_entry.title,
            )
            self.config_entry.async_start_reauth(self.hass)
        elif (issue_key := ISSUES_BY_RESULT.get(outcome.result)) is not None:
            _LOGGER.warning(
                "X refused a post of %s (%s); posts wait until this is fixed",
                self.config_entry.title,
                outcome.detail,
            )
            async_set_issue(
                self.hass,
                self.config_entry,
                issue_key,
                active=True,
                severity=ir.IssueSeverity.ERROR,
            )
        elif outcome.result is PostResult.REJECTED:
            _LOGGER.warning("X rejected a post and it was dropped: %s", outcome.detail)
        else:
            _LOGGER.debug("Post not sent yet (%s): %s", outcome.result, outcome.detail)

    def _log_expired(self, expired: list[OutboxItem]) -> None:
        for item in expired:
            _LOGGER.warning(
                "A post queued at %s for %s expired unsent",
                item.queued_at.isoformat(),
                self.config_entry.title,
            )

    async def _save(self) -> None:
        await self._store.async_save(self.outbox.as_dict())
        self.async_set_updated_data(self.outbox)

    @callback
    def _schedule(self) -> None:
        self._cancel_timer()
        now = dt_util.utcnow()
        when = self.outbox.next_attempt_at(now)
        if when is None:
            return
        if when <= now:
            self._start_sending()
        else:
            self._unsub_timer = async_track_point_in_utc_time(
                self.hass, self._on_timer, when
            )

    @callback
    def _on_timer(self, _now: datetime) -> None:
        self._unsub_timer = None
        self._start_sending()

    @callback
    def _start_sending(self) -> None:
        self.config_entry.async_create_background_task(
            self.hass, self.async_send_due(), name=f"{DOMAIN} send post"
        )

    @callback
    def _cancel_timer(self) -> None:
        if self._unsub_timer is not None:
            self._unsub_timer()
            self._unsub_timer = None
