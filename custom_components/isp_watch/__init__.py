"""ISP Watch: measure the internet connection and tell the ISP when it stays slow."""

from __future__ import annotations

from homeassistant.config_entries import ConfigEntry
from homeassistant.const import Platform
from homeassistant.core import HomeAssistant

PLATFORMS: list[Platform] = []

type IspWatchConfigEntry = ConfigEntry[None]


async def async_setup_entry(hass: HomeAssistant, entry: IspWatchConfigEntry) -> bool:
    """Set up ISP Watch from a config entry."""
    await hass.config_entries.async_forward_entry_setups(entry, PLATFORMS)
    return True


async def async_unload_entry(hass: HomeAssistant, entry: IspWatchConfigEntry) -> bool:
    """Unload a config entry."""
    return await hass.config_entries.async_unload_platforms(entry, PLATFORMS)
