"""Notify entity: automations post to the ISP on X through notify.send_message."""

from __future__ import annotations

from homeassistant.components.notify import NotifyEntity, NotifyEntityDescription
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .data import IspWatchConfigEntry
from .entity import IspWatchEntity
from .tweet_sender import TweetSender

PARALLEL_UPDATES = 0

TWEET = NotifyEntityDescription(key="tweet", translation_key="tweet")


async def async_setup_entry(
    hass: HomeAssistant,
    entry: IspWatchConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the notify entity when an X account is set up."""
    if (sender := entry.runtime_data.sender) is not None:
        async_add_entities([TweetEntity(sender, TWEET)])


class TweetEntity(IspWatchEntity[TweetSender], NotifyEntity):
    """Queues a post to X; returns once it is safely on disk."""

    async def async_send_message(self, message: str, title: str | None = None) -> None:
        """Queue the message; a title becomes its first line."""
        text = f"{title}\n{message}" if title else message
        await self.coordinator.async_queue(text)
