"""Buttons: run a speed test now, start or cancel a measurement campaign."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from homeassistant.components.button import ButtonEntity, ButtonEntityDescription
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .coordinator import IspWatchCoordinator
from .data import IspWatchConfigEntry
from .entity import IspWatchEntity

# The coordinator serialises tests itself and lets a second press share a running one.
PARALLEL_UPDATES = 0


@dataclass(frozen=True, kw_only=True)
class IspWatchButtonDescription(ButtonEntityDescription):
    """What a button asks the coordinator to do."""

    press_fn: Callable[[IspWatchCoordinator], Awaitable[object]]


BUTTONS: tuple[IspWatchButtonDescription, ...] = (
    IspWatchButtonDescription(
        key="run_test",
        translation_key="run_test",
        press_fn=lambda coordinator: coordinator.async_run_test_now(),
    ),
    IspWatchButtonDescription(
        key="start_campaign",
        translation_key="start_campaign",
        press_fn=lambda coordinator: coordinator.async_start_campaign(),
    ),
    IspWatchButtonDescription(
        key="cancel_campaign",
        translation_key="cancel_campaign",
        press_fn=lambda coordinator: coordinator.async_cancel_campaign(),
    ),
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: IspWatchConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the buttons of a watched connection."""
    coordinator = entry.runtime_data.coordinator
    async_add_entities(
        IspWatchButton(coordinator, description) for description in BUTTONS
    )


class IspWatchButton(IspWatchEntity, ButtonEntity):
    """Asks the coordinator to act; what cannot be done is told to the caller."""

    entity_description: IspWatchButtonDescription

    async def async_press(self) -> None:
        """Do what the button says; a refusal or a failed test is raised."""
        await self.entity_description.press_fn(self.coordinator)
