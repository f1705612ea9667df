"""Button to run a speed test now."""

from __future__ import annotations

from homeassistant.components.button import ButtonEntity, ButtonEntityDescription
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .data import IspWatchConfigEntry
from .entity import IspWatchEntity

# The coordinator serialises tests itself and lets a second press share a running one.
PARALLEL_UPDATES = 0

RUN_TEST = ButtonEntityDescription(key="run_test", translation_key="run_test")


async def async_setup_entry(
    hass: HomeAssistant,
    entry: IspWatchConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the run-test button."""
    async_add_entities([RunTestButton(entry.runtime_data.coordinator, RUN_TEST)])


class RunTestButton(IspWatchEntity, ButtonEntity):
    """Runs a speed test when pressed; a test already running is shared."""

    async def async_press(self) -> None:
        """Run the test and report a failure to the caller."""
        await self.coordinator.async_run_test_now()
