"""Base entity for ISP Watch: one service device per watched connection."""

from __future__ import annotations

from typing import Any, override

from homeassistant.config_entries import ConfigEntry
from homeassistant.helpers.device_registry import DeviceEntryType, DeviceInfo
from homeassistant.helpers.entity import EntityDescription
from homeassistant.helpers.update_coordinator import CoordinatorEntity

from .const import CONF_ISP_NAME, DOMAIN
from .coordinator import IspWatchCoordinator


def connection_device(entry: ConfigEntry[Any]) -> DeviceInfo:
    """The service device that stands for one watched connection."""
    return DeviceInfo(
        identifiers={(DOMAIN, entry.entry_id)},
        name=entry.data[CONF_ISP_NAME],
        manufacturer="ISP Watch",
        model="Internet connection",
        entry_type=DeviceEntryType.SERVICE,
    )


class IspWatchEntity(CoordinatorEntity[IspWatchCoordinator]):
    """An entity of the watched connection."""

    _attr_has_entity_name = True

    def __init__(
        self, coordinator: IspWatchCoordinator, description: EntityDescription
    ) -> None:
        """Attach the entity to the connection's device."""
        super().__init__(coordinator)
        entry = coordinator.config_entry
        self.entity_description = description
        self._attr_unique_id = f"{entry.entry_id}_{description.key}"
        self._attr_device_info = connection_device(entry)

    @override
    async def async_update(self) -> None:
        """Run a test when asked through homeassistant.update_entity."""
        await self.coordinator.async_run_test_now()
