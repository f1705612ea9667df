"""ISP Watch: measure the internet connection and tell the ISP when it stays slow."""

from __future__ import annotations

from homeassistant.const import Platform
from homeassistant.core import HomeAssistant
from homeassistant.helpers.start import async_at_started

from .coordinator import IspWatchCoordinator, history_store
from .data import IspWatchConfigEntry, IspWatchRuntimeData, IspWatchSettings
from .tweet_sender import TweetSender, credentials_from_entry, outbox_store

PLATFORMS: list[Platform] = [
    Platform.BINARY_SENSOR,
    Platform.BUTTON,
    Platform.NOTIFY,
    Platform.SENSOR,
]


async def async_setup_entry(hass: HomeAssistant, entry: IspWatchConfigEntry) -> bool:
    """Set up ISP Watch: restore what is known; measure once Home Assistant runs."""
    settings = IspWatchSettings.from_entry(entry)
    coordinator = IspWatchCoordinator(hass, entry, settings)
    await coordinator.async_load()
    sender = None
    if (credentials := credentials_from_entry(entry)) is not None:
        sender = TweetSender(hass, entry, settings, credentials)
        await sender.async_load()
    entry.runtime_data = IspWatchRuntimeData(
        settings=settings, coordinator=coordinator, sender=sender
    )
    await hass.config_entries.async_forward_entry_setups(entry, PLATFORMS)
    entry.async_on_unload(async_at_started(hass, coordinator.async_start_schedule))
    return True


async def async_unload_entry(hass: HomeAssistant, entry: IspWatchConfigEntry) -> bool:
    """Unload a config entry; the coordinators stop a running test and the timers."""
    return await hass.config_entries.async_unload_platforms(entry, PLATFORMS)


async def async_remove_entry(hass: HomeAssistant, entry: IspWatchConfigEntry) -> None:
    """Forget the stored history of a removed entry."""
    await history_store(hass, entry.entry_id).async_remove()
    await outbox_store(hass, entry.entry_id).async_remove()
