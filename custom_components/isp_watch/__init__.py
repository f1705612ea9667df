"""ISP Watch: measure the internet connection and tell the ISP when it stays slow."""

from __future__ import annotations

from homeassistant.const import Platform
from homeassistant.core import HomeAssistant
from homeassistant.helpers import config_validation as cv
from homeassistant.helpers.start import async_at_started
from homeassistant.helpers.typing import ConfigType

from .const import CONFIG_ENTRY_VERSION, DOMAIN, LEGACY_PLAN_KEYS, UNREADABLE_ISSUES
from .coordinator import IspWatchCoordinator, history_store
from .data import IspWatchConfigEntry, IspWatchRuntimeData, IspWatchSettings
from .repairs import async_delete_entry_issues, unreadable_store
from .services import async_setup_services
from .tweet_sender import TweetSender, credentials_from_entry, outbox_store

PLATFORMS: list[Platform] = [
    Platform.BINARY_SENSOR,
    Platform.BUTTON,
    Platform.NOTIFY,
    Platform.SENSOR,
]

CONFIG_SCHEMA = cv.config_entry_only_config_schema(DOMAIN)


async def async_setup(hass: HomeAssistant, config: ConfigType) -> bool:
    """Register the actions, which serve every entry."""
    async_setup_services(hass)
    return True


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


async def async_migrate_entry(hass: HomeAssistant, entry: IspWatchConfigEntry) -> bool:
    """Bring an entry stored by an earlier version up to date; nothing is dropped.

    Version 1 knew one plan speed per direction: it is the contract's maximum.
    """
    if entry.version > CONFIG_ENTRY_VERSION:
        # Stored by a newer ISP Watch: this one cannot know what it means.
        return False
    if entry.version == 1:
        data = {
            LEGACY_PLAN_KEYS.get(key, key): value for key, value in entry.data.items()
        }
        hass.config_entries.async_update_entry(
            entry, data=data, version=CONFIG_ENTRY_VERSION, minor_version=1
        )
    return True


async def async_remove_entry(hass: HomeAssistant, entry: IspWatchConfigEntry) -> None:
    """Forget everything a removed entry stored, and the issues it raised."""
    await history_store(hass, entry.entry_id).async_remove()
    await outbox_store(hass, entry.entry_id).async_remove()
    for name in UNREADABLE_ISSUES:
        await unreadable_store(hass, entry.entry_id, name).async_remove()
    async_delete_entry_issues(hass, entry)
