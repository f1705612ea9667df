"""The sensors: what they show, and how often they change."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from freezegun.api import FrozenDateTimeFactory
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_fire_time_changed,
    snapshot_platform,
)
from syrupy.assertion import SnapshotAssertion

from homeassistant.components.logbook.helpers import is_sensor_continuous
from homeassistant.const import EVENT_STATE_CHANGED, EVENT_STATE_REPORTED, Platform
from homeassistant.core import Event, EventStateChangedData, HomeAssistant, callback
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import entity_registry as er
from tests.common import (
    INTERNET,
    LAST_RESULT,
    LAST_TEST,
    RUN_TEST,
    make_entry,
    setup_entry,
    stored_measurement,
)
from tests.fake_speedtest import FakeSpeedtest


@pytest.fixture
def platforms() -> list[Platform]:
    """Only the sensors."""
    return [Platform.SENSOR]


@pytest.fixture
def history() -> list[dict[str, Any]]:
    """Two tests, the later one slow."""
    return [
        stored_measurement("2026-11-22T10:00:06+00:00", download_mbps=41.0),
        stored_measurement("2026-11-22T10:20:06+00:00", download_mbps=12.345),
    ]


@pytest.mark.freeze_time("2026-11-22T10:30:00+00:00")
async def test_sensors(
    hass: HomeAssistant,
    entity_registry: er.EntityRegistry,
    snapshot: SnapshotAssertion,
    init_integration: MockConfigEntry,
) -> None:
    """Names, unique ids, device classes, units and values of every sensor."""
    await snapshot_platform(hass, entity_registry, snapshot, init_integration.entry_id)


async def _press(hass: HomeAssistant) -> None:
    await hass.services.async_call(
        "button", "press", {"entity_id": RUN_TEST}, blocking=True
    )


async def test_outage_checks_stay_out_of_the_activity_log(
    hass: HomeAssistant,
    entity_registry: er.EntityRegistry,
    speedtest_route: FakeSpeedtest,
    freezer: FrozenDateTimeFactory,
) -> None:
    """The checks every 2 minutes of an outage log nothing; its start and end do."""
    speedtest_route.test_length = 1
    await setup_entry(hass, make_entry())
    await _press(hass)
    speedtest_route.stop()
    with pytest.raises(HomeAssistantError):
        await _press(hass)
    assert hass.states.get(INTERNET).state == "off"
    outage_found = hass.states.get(LAST_TEST).state

    logged: list[tuple[str, str]] = []

    def activity(event: Event[EventStateChangedData]) -> None:
        # What the logbook shows: a changed state of an entity that is not a
        # continuous sensor (one with a unit or a state class).
        old, new = event.data["old_state"], event.data["new_state"]
        if old is None or new is None or old.state == new.state:
            return
        entity_id = event.data["entity_id"]
        if entity_id.startswith("sensor.") and is_sensor_continuous(
            hass, entity_registry, entity_id
        ):
            return
        logged.append((entity_id, new.state))

    hass.bus.async_listen(EVENT_STATE_CHANGED, activity)
    # Each check writes the states again, unchanged.
    checks: list[str] = []
    hass.bus.async_listen(
        EVENT_STATE_REPORTED,
        callback(lambda event: checks.append(event.data["entity_id"])),
        event_filter=callback(lambda data: data["entity_id"] == LAST_RESULT),
    )
    for _ in range(5):
        freezer.tick(timedelta(minutes=2, seconds=1))
        async_fire_time_changed(hass)
        await hass.async_block_till_done(wait_background_tasks=True)
    assert len(checks) == 5
    assert logged == []
    assert hass.states.get(LAST_TEST).state == outage_found
    assert hass.states.get(LAST_RESULT).state == "connection"

    speedtest_route.start()
    freezer.tick(timedelta(minutes=2, seconds=1))
    async_fire_time_changed(hass)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert (INTERNET, "on") in logged
    assert (LAST_RESULT, "success") in logged
    assert hass.states.get(LAST_TEST).state != outage_found
