"""Monthly plan compliance: the sensors that hold the line to its contract."""

from __future__ import annotations

from typing import Any

from freezegun.api import FrozenDateTimeFactory
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_fire_time_changed,
)

from custom_components.isp_watch.const import DOMAIN
from fakes.speedtest import FakeSpeedtest
from homeassistant.const import STATE_UNAVAILABLE, STATE_UNKNOWN
from homeassistant.core import HomeAssistant
from tests.common import (
    ENTRY_OPTIONS,
    RUN_TEST,
    make_entry,
    setup_entry,
    store_history,
    stored_measurement,
)

DOWNLOAD_MAXIMUM = "sensor.example_isp_download_reaching_90_of_maximum"
DOWNLOAD_NORMAL = "sensor.example_isp_download_reaching_normally_available_speed"
DOWNLOAD_BELOW = "sensor.example_isp_download_tests_below_contract_minimum"
UPLOAD_MAXIMUM = "sensor.example_isp_upload_reaching_90_of_maximum"
UPLOAD_BELOW = "sensor.example_isp_upload_tests_below_contract_minimum"
# A contract that states all three speeds for download, only the maximum for upload.
CONTRACT = {
    "contract_maximum_download": 100.0,
    "contract_normally_available_download": 60.0,
    "contract_minimum_download": 30.0,
    "contract_maximum_upload": 40.0,
}


def _invalid(finished: str) -> dict[str, Any]:
    """A test whose numbers were judged untrustworthy, as the store keeps it."""
    return {
        "type": "failure",
        "kind": "invalid_result",
        "reason": "upload finished before its first sample",
        "started": finished.replace(":06+", ":00+"),
        "finished": finished,
        "bytes_received": 1_000_000,
        "bytes_sent": 0,
    }


async def _set_up(
    hass: HomeAssistant,
    hass_storage: dict[str, Any],
    history: list[dict[str, Any]],
    data: dict[str, Any] | None = None,
) -> MockConfigEntry:
    entry = make_entry(data=data if data is not None else CONTRACT, polling=False)
    store_history(hass_storage, entry.entry_id, history)
    await setup_entry(hass, entry)
    return entry


@pytest.mark.freeze_time("2026-11-22T10:30:00+00:00")
async def test_month_figures_from_the_history(
    hass: HomeAssistant, hass_storage: dict[str, Any]
) -> None:
    """Shares of the month's valid tests; last month's and invalid tests left out."""
    history = [
        # October: not this month.
        stored_measurement("2026-10-31T10:00:06+00:00", download_mbps=10.0),
        stored_measurement("2026-11-02T10:00:06+00:00", download_mbps=95.0),
        # Exactly 90 % of the maximum reaches it.
        stored_measurement("2026-11-03T10:00:06+00:00", download_mbps=90.0),
        stored_measurement("2026-11-04T10:00:06+00:00", download_mbps=59.9),
        stored_measurement("2026-11-05T10:00:06+00:00", download_mbps=25.0),
        _invalid("2026-11-06T10:00:06+00:00"),
    ]
    await _set_up(hass, hass_storage, history)

    state = hass.states.get(DOWNLOAD_MAXIMUM)
    assert state is not None
    assert float(state.state) == 50.0
    assert state.attributes["tests"] == 4
    assert state.attributes["tests_reaching"] == 2
    assert state.attributes["tests_not_counted"] == 1
    assert state.attributes["month"] == "2026-11"
    assert state.attributes["contract_speed"] == 100.0
    assert state.attributes["first_test"] == "2026-11-02T10:00:06+00:00"
    assert state.attributes["last_test"] == "2026-11-05T10:00:06+00:00"
    assert float(hass.states.get(DOWNLOAD_NORMAL).state) == 50.0
    assert hass.states.get(DOWNLOAD_BELOW).state == "1"
    # Upload (19.456 Mbit/s each time) never reaches 36 of 40 Mbit/s.
    assert float(hass.states.get(UPLOAD_MAXIMUM).state) == 0.0


@pytest.mark.freeze_time("2026-11-22T10:30:00+00:00")
async def test_unavailable_without_the_contract_speed(
    hass: HomeAssistant, hass_storage: dict[str, Any]
) -> None:
    """A figure whose contract speed is not set cannot be judged."""
    history = [stored_measurement("2026-11-02T10:00:06+00:00", download_mbps=95.0)]
    await _set_up(hass, hass_storage, history)
    assert hass.states.get(UPLOAD_BELOW).state == STATE_UNAVAILABLE
    assert hass.states.get(DOWNLOAD_BELOW).state == "0"


@pytest.mark.freeze_time("2026-11-22T10:30:00+00:00")
async def test_unknown_before_the_first_test_of_the_month(
    hass: HomeAssistant, hass_storage: dict[str, Any]
) -> None:
    """With the contract set but no test yet this month there is no share to show."""
    history = [stored_measurement("2026-10-31T10:00:06+00:00", download_mbps=95.0)]
    await _set_up(hass, hass_storage, history)
    assert hass.states.get(DOWNLOAD_MAXIMUM).state == STATE_UNKNOWN
    assert hass.states.get(DOWNLOAD_MAXIMUM).attributes["tests"] == 0


async def test_a_new_month_starts_at_local_midnight(
    hass: HomeAssistant,
    hass_storage: dict[str, Any],
    freezer: FrozenDateTimeFactory,
) -> None:
    """In Berlin, November starts at 23:00 UTC on 31 October, without a new test."""
    await hass.config.async_set_time_zone("Europe/Berlin")
    freezer.move_to("2026-10-31T22:50:00+00:00")
    history = [stored_measurement("2026-10-31T22:00:06+00:00", download_mbps=95.0)]
    await _set_up(hass, hass_storage, history)
    assert float(hass.states.get(DOWNLOAD_MAXIMUM).state) == 100.0
    assert hass.states.get(DOWNLOAD_MAXIMUM).attributes["month"] == "2026-10"

    freezer.move_to("2026-10-31T23:00:01+00:00")
    async_fire_time_changed(hass)
    await hass.async_block_till_done()

    state = hass.states.get(DOWNLOAD_MAXIMUM)
    assert state.state == STATE_UNKNOWN
    assert state.attributes["month"] == "2026-11"
    assert state.attributes["tests"] == 0

    # And again a month later: the timer was set anew.
    freezer.move_to("2026-11-30T22:50:00+00:00")
    async_fire_time_changed(hass)
    await hass.async_block_till_done()
    assert hass.states.get(DOWNLOAD_MAXIMUM).attributes["month"] == "2026-11"
    freezer.move_to("2026-11-30T23:00:01+00:00")
    async_fire_time_changed(hass)
    await hass.async_block_till_done()
    assert hass.states.get(DOWNLOAD_MAXIMUM).attributes["month"] == "2026-12"


async def test_a_test_counts_and_survives_a_restart(
    hass: HomeAssistant, speedtest_route: FakeSpeedtest
) -> None:
    """A test over the line moves the figures; after a reload they are the same."""
    speedtest_route.test_length = 1
    # The fake line gives 40 Mbit/s down: above the minimum, below 90 % of 100.
    entry = make_entry(data=CONTRACT)
    await setup_entry(hass, entry)
    assert hass.states.get(DOWNLOAD_BELOW).attributes["tests"] == 0

    await hass.services.async_call(
        "button", "press", {"entity_id": RUN_TEST}, blocking=True
    )
    state = hass.states.get(DOWNLOAD_MAXIMUM)
    assert state.attributes["tests"] == 1
    assert float(state.state) == 0.0
    assert hass.states.get(DOWNLOAD_BELOW).state == "0"

    assert await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done()
    assert hass.states.get(DOWNLOAD_MAXIMUM).attributes == state.attributes
    assert hass.states.get(DOWNLOAD_MAXIMUM).state == state.state


@pytest.mark.freeze_time("2026-11-22T10:30:00+00:00")
async def test_a_migrated_plan_is_judged_as_the_maximum(
    hass: HomeAssistant, hass_storage: dict[str, Any]
) -> None:
    """An entry from before contract speeds keeps its plan, and is judged by it."""
    entry = MockConfigEntry(
        domain=DOMAIN,
        version=1,
        title="Example ISP",
        data={"isp_name": "Example ISP", "plan_download": 100.0},
        options=ENTRY_OPTIONS,
        unique_id="default",
        pref_disable_polling=True,
    )
    store_history(
        hass_storage,
        entry.entry_id,
        [stored_measurement("2026-11-02T10:00:06+00:00", download_mbps=95.0)],
    )
    await setup_entry(hass, entry)
    assert float(hass.states.get(DOWNLOAD_MAXIMUM).state) == 100.0
    assert hass.states.get(UPLOAD_MAXIMUM).state == STATE_UNAVAILABLE


@pytest.mark.freeze_time("2026-11-22T10:30:00+00:00")
async def test_an_outage_is_not_a_test_of_the_speed(
    hass: HomeAssistant, hass_storage: dict[str, Any]
) -> None:
    """A test that could not reach the internet neither counts nor is excluded."""
    outage = _invalid("2026-11-06T10:00:06+00:00") | {
        "kind": "connection",
        "reason": "connection refused",
    }
    history = [
        stored_measurement("2026-11-02T10:00:06+00:00", download_mbps=95.0),
        outage,
    ]
    await _set_up(hass, hass_storage, history)
    state = hass.states.get(DOWNLOAD_MAXIMUM)
    assert state.attributes["tests"] == 1
    assert state.attributes["tests_not_counted"] == 0
