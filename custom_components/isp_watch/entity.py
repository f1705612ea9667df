"""The base entity of every platform: one service device per watched connection."""

from __future__ import annotations

from homeassistant.helpers.device_registry import DeviceEntryType, DeviceInfo
from homeassistant.helpers.entity import EntityDescription
from homeassistant.helpers.update_coordinator import CoordinatorEntity

from .const import CONF_ISP_NAME, DOMAIN
from .coordinator import IspWatchCoordinator
from .tweet_sender import TweetSender


class IspWatchEntity[
    CoordinatorT: IspWatchCoordinator | TweetSender = IspWatchCoordinator
](CoordinatorEntity[CoordinatorT]):
    """An entity of the watched connection, kept up to date by one of its coordinators.

    homeassistant.update_entity asks the coordinator for a refresh: the line's
    coordinator runs a test now, the sender shows its queue again.
    """

    _attr_has_entity_name = True

    def __init__(
        self, coordinator: CoordinatorT, description: EntityDescription
    ) -> None:
        """Attach the entity to the connection's device."""
        super().__init__(coordinator)
        entry = coordinator.config_entry
        self.entity_description = description
        self._attr_unique_id = f"{entry.entry_id}_{description.key}"
        self._attr_device_info = DeviceInfo(
            identifiers={(DOMAIN, entry.entry_id)},
            name=entry.data[CONF_ISP_NAME],
            manufacturer="ISP Watch",
            model="Internet connection",
            entry_type=DeviceEntryType.SERVICE,
        )
