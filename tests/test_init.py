"""Measuring the line inside Home Assistant: setup, schedule, entities, restarts."""

from __future__ import annotations

import asyncio
from datetime import timedelta
import logging
from typing import Any

from freezegun.api import FrozenDateTimeFactory
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_fire_time_changed,
)

from custom_components.isp_watch.const import (
    CONF_MIN_DOWNLOAD,
    CONF_MIN_UPLOAD,
    CONF_MONTHLY_DATA_BUDGET,
    CONFIG_ENTRY_VERSION,
    DOMAIN,
)
from custom_components.isp_watch.coordinator import SERVICE_UNAVAILABLE_ISSUE_AFTER
from fakes.speedtest import FakeSpeedtest
from homeassistant import block_async_io
from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import STATE_UNAVAILABLE, STATE_UNKNOWN
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import issue_registry as ir
from homeassistant.setup import async_setup_component
from tests.common import (
    DOWNLOAD,
    ENTRY_DATA,
    ENTRY_OPTIONS,
    INTERNET,
    LAST_RESULT,
    LAST_TEST,
    LAST_TEST_DATA,
    LOADED_MACHINE_MS,
    PING,
    RUN_TEST,
    SERVER,
    SLOW,
    TOTAL_TEST_DATA,
    UPLOAD,
    X_ACCOUNT_DATA,
    make_entry,
    runner_children,
    setup_entry,
)


@pytest.fixture
def line(speedtest_route: FakeSpeedtest) -> FakeSpeedtest:
    """The fake internet, with short tests."""
    speedtest_route.test_length = 1
    return speedtest_route


@pytest.fixture
def blocking_call_detection(disable_block_async_io: None) -> None:
    """Detect blocking calls in the event loop, as Home Assistant does in production.

    disable_block_async_io switches the detection off again after the test.
    """
    block_async_io.enable()


async def _press(hass: HomeAssistant, entity_id: str = RUN_TEST) -> None:
    await hass.services.async_call(
        "button", "press", {"entity_id": entity_id}, blocking=True
    )


def _number(hass: HomeAssistant, entity_id: str) -> float:
    state = hass.states.get(entity_id)
    assert state is not None
    return float(state.state)


async def test_setup_measures_nothing_until_scheduled(
    hass: HomeAssistant,
    line: FakeSpeedtest,
    freezer: FrozenDateTimeFactory,
    blocking_call_detection: None,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Setup does no network I/O; the first test comes a minute after the start."""
    caplog.set_level(logging.WARNING)
    entry = make_entry()
    await setup_entry(hass, entry)

    assert entry.state is ConfigEntryState.LOADED
    assert line.requests == []
    assert not list(runner_children())
    assert hass.states.get(DOWNLOAD).state == STATE_UNKNOWN
    assert hass.states.get(INTERNET).state == STATE_UNKNOWN
    # Nothing says the line is slow; the judgement from medians needs three tests.
    slow = hass.states.get(SLOW)
    assert slow.state == "off"
    assert slow.attributes["tests_needed"] == 3

    freezer.tick(timedelta(minutes=1, seconds=1))
    async_fire_time_changed(hass)
    await hass.async_block_till_done(wait_background_tasks=True)

    # The sensors show that test's figures. How close they come to the line is the
    # engine's tests' concern: here a machine busy with the rest of the suite may
    # starve the fake's reader, but nothing reads above the line.
    assert 0 < _number(hass, DOWNLOAD) <= line.download_mbps * 1.15
    assert 0 < _number(hass, UPLOAD) <= line.upload_mbps * 1.15
    assert line.latency_ms <= _number(hass, PING) <= line.latency_ms + LOADED_MACHINE_MS
    used = _number(hass, LAST_TEST_DATA)
    assert used == pytest.approx(
        (line.bytes_served + line.bytes_received) / 1_000_000, rel=0.05
    )
    assert _number(hass, TOTAL_TEST_DATA) == pytest.approx(used / 1000, abs=0.01)
    assert hass.states.get(SERVER).state == "Example Hosting 0, Town 0 (Netherlands)"
    assert hass.states.get(LAST_RESULT).state == "success"
    assert hass.states.get(LAST_TEST).state != STATE_UNKNOWN
    assert hass.states.get(INTERNET).state == "on"
    # One good test: the line is not slow, and two more tests make a judgement.
    slow = hass.states.get(SLOW)
    assert slow.state == "off"
    assert slow.attributes["tests_needed"] == 2
    assert "Detected blocking call" not in caplog.text
    assert "custom_components.isp_watch" not in caplog.text


async def test_polling_disabled_means_manual_only(
    hass: HomeAssistant, line: FakeSpeedtest, freezer: FrozenDateTimeFactory
) -> None:
    """With Home Assistant's polling switched off, only the button tests."""
    entry = make_entry()
    entry.add_to_hass(hass)
    hass.config_entries.async_update_entry(entry, pref_disable_polling=True)
    await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()

    freezer.tick(timedelta(hours=3))
    async_fire_time_changed(hass)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert line.requests == []

    await _press(hass)
    assert hass.states.get(LAST_RESULT).state == "success"


async def test_concurrent_requests_share_one_test(
    hass: HomeAssistant, line: FakeSpeedtest
) -> None:
    """A press and an update_entity during a running test wait for the same test."""
    assert await async_setup_component(hass, "homeassistant", {})
    await setup_entry(hass, make_entry())

    await asyncio.gather(
        _press(hass),
        hass.services.async_call(
            "homeassistant",
            "update_entity",
            {"entity_id": DOWNLOAD},
            blocking=True,
        ),
        _press(hass),
    )

    assert line.count("speedtest-config.php") == 1
    assert hass.states.get(LAST_RESULT).state == "success"


async def test_failed_test_is_never_a_number(
    hass: HomeAssistant, line: FakeSpeedtest
) -> None:
    """An upload answered with 500 makes the speeds unavailable and says why."""
    await setup_entry(hass, make_entry())
    await _press(hass)
    good_total = _number(hass, TOTAL_TEST_DATA)
    line.faults.upload_status = 500

    with pytest.raises(HomeAssistantError) as raised:
        await _press(hass)

    assert raised.value.translation_key == "speed_test_invalid_result"
    for entity_id in (DOWNLOAD, UPLOAD, PING):
        assert hass.states.get(entity_id).state == STATE_UNAVAILABLE
    assert hass.states.get(LAST_RESULT).state == "invalid_result"
    # What the failed test cost is still counted.
    assert _number(hass, TOTAL_TEST_DATA) > good_total
    assert hass.states.get(INTERNET).state == "on"


async def test_history_and_values_survive_a_restart(
    hass: HomeAssistant, line: FakeSpeedtest
) -> None:
    """After a reload the last results are back without a new test."""
    entry = make_entry()
    await setup_entry(hass, entry)
    for _ in range(3):
        await _press(hass)
    download = _number(hass, DOWNLOAD)
    total = _number(hass, TOTAL_TEST_DATA)
    requests = len(line.requests)

    assert await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done()

    assert len(line.requests) == requests
    assert _number(hass, DOWNLOAD) == download
    assert _number(hass, TOTAL_TEST_DATA) == total
    assert len(entry.runtime_data.coordinator.history) == 3
    # Three tests are enough to judge: the line is fine.
    assert hass.states.get(SLOW).state == "off"


async def test_unload_during_a_test(hass: HomeAssistant, line: FakeSpeedtest) -> None:
    """Unloading stops a running test at once and leaves no process behind."""
    entry = make_entry()
    await setup_entry(hass, entry)
    line.test_length = 30
    press = hass.async_create_task(_press(hass))
    while line.count("random") == 0:
        await asyncio.sleep(0.05)

    async with asyncio.timeout(2):
        assert await hass.config_entries.async_unload(entry.entry_id)

    assert not list(runner_children())
    with pytest.raises((HomeAssistantError, asyncio.CancelledError)):
        await press


async def test_slow_line_is_confirmed_over_several_tests(
    hass: HomeAssistant, line: FakeSpeedtest
) -> None:
    """One slow test only brings the next test closer; three make the line slow."""
    entry = make_entry()
    await setup_entry(hass, entry)
    coordinator = entry.runtime_data.coordinator
    line.set_rates(download_mbps=8, upload_mbps=20)

    await _press(hass)
    # Not yet slow, no longer fine: the test waits for the ones that confirm it.
    slow = hass.states.get(SLOW)
    assert (slow.state, slow.attributes["tests_needed"]) == (STATE_UNKNOWN, 2)
    assert coordinator.update_interval == timedelta(minutes=30)
    await _press(hass)
    slow = hass.states.get(SLOW)
    assert (slow.state, slow.attributes["tests_needed"]) == (STATE_UNKNOWN, 1)
    await _press(hass)

    slow = hass.states.get(SLOW)
    assert slow.state == "on"
    assert slow.attributes["tests_needed"] == 0
    assert slow.attributes["violated"] == ["download"]
    assert slow.attributes["median_download"] == pytest.approx(8, rel=0.15)
    assert slow.attributes["min_download"] == 30.0
    assert slow.attributes["tests"] == 3
    assert slow.attributes["measured_from"] < slow.attributes["measured_to"]
    assert coordinator.update_interval == timedelta(minutes=60)


async def test_outage_and_recovery(hass: HomeAssistant, line: FakeSpeedtest) -> None:
    """Without internet the connectivity sensor goes off; a test after it ends it."""
    entry = make_entry()
    await setup_entry(hass, entry)
    await _press(hass)
    line.stop()

    with pytest.raises(HomeAssistantError):
        await _press(hass)
    internet = hass.states.get(INTERNET)
    assert internet.state == "off"
    assert "outage_start" in internet.attributes
    assert hass.states.get(LAST_RESULT).state == "connection"
    assert entry.runtime_data.coordinator.update_interval == timedelta(minutes=2)

    line.start()
    await _press(hass)
    internet = hass.states.get(INTERNET)
    assert internet.state == "on"
    assert internet.attributes["last_outage_duration"] >= 0
    assert "outage_start" not in internet.attributes


async def test_outage_is_probed_cheaply(
    hass: HomeAssistant, line: FakeSpeedtest, freezer: FrozenDateTimeFactory
) -> None:
    """During an outage the schedule only probes; a full test follows recovery."""
    entry = make_entry()
    await setup_entry(hass, entry)
    line.stop()
    with pytest.raises(HomeAssistantError):
        await _press(hass)

    freezer.tick(timedelta(minutes=2, seconds=1))
    async_fire_time_changed(hass)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert hass.states.get(INTERNET).state == "off"

    line.start()
    freezer.tick(timedelta(minutes=2, seconds=1))
    async_fire_time_changed(hass)
    await hass.async_block_till_done(wait_background_tasks=True)

    assert hass.states.get(INTERNET).state == "on"
    assert line.count("random") > 0
    assert hass.states.get(LAST_RESULT).state == "success"


async def test_service_outage_is_a_repair_not_an_outage(
    hass: HomeAssistant, line: FakeSpeedtest, issue_registry: ir.IssueRegistry
) -> None:
    """Speedtest.net refusing tests raises a repair issue that clears itself."""
    entry = make_entry()
    await setup_entry(hass, entry)
    line.faults.config_status = 403
    issue_id = f"speedtest_unavailable_{entry.entry_id}"

    for _ in range(SERVICE_UNAVAILABLE_ISSUE_AFTER):
        with pytest.raises(HomeAssistantError):
            await _press(hass)

    assert issue_registry.async_get_issue(DOMAIN, issue_id) is not None
    assert hass.states.get(INTERNET).state == "on"
    assert hass.states.get(LAST_RESULT).state == "service_unavailable"

    line.faults.config_status = 200
    await _press(hass)
    assert issue_registry.async_get_issue(DOMAIN, issue_id) is None


async def test_monthly_data_budget(
    hass: HomeAssistant,
    line: FakeSpeedtest,
    freezer: FrozenDateTimeFactory,
    issue_registry: ir.IssueRegistry,
) -> None:
    """Once the budget is used, scheduled tests stop; the button still works."""
    entry = make_entry(options={CONF_MONTHLY_DATA_BUDGET: 0.001})
    await setup_entry(hass, entry)
    await _press(hass)
    requests = len(line.requests)

    freezer.tick(timedelta(hours=2))
    async_fire_time_changed(hass)
    await hass.async_block_till_done(wait_background_tasks=True)

    assert len(line.requests) == requests
    issue_id = f"data_budget_exceeded_{entry.entry_id}"
    assert issue_registry.async_get_issue(DOMAIN, issue_id) is not None
    await _press(hass)
    assert len(line.requests) > requests


async def test_entries_never_test_at_the_same_time(
    hass: HomeAssistant, line: FakeSpeedtest
) -> None:
    """Two uplinks (multi-WAN) take turns, so their tests do not corrupt each other."""
    first = make_entry()
    second = make_entry(
        data={"isp_name": "Second ISP", "source_address": "127.0.0.1"},
        unique_id="127.0.0.1",
    )
    await setup_entry(hass, first)
    await setup_entry(hass, second)

    await asyncio.gather(_press(hass), _press(hass, "button.second_isp_run_speed_test"))

    tests: list[Any] = sorted(
        (entry.runtime_data.coordinator.history[-1] for entry in (first, second)),
        key=lambda outcome: outcome.started,
    )
    assert tests[0].finished <= tests[1].started
    assert hass.states.get("sensor.second_isp_last_test_result").state == "success"


async def test_remove_entry_forgets_history(
    hass: HomeAssistant, line: FakeSpeedtest, hass_storage: dict[str, Any]
) -> None:
    """Removing the entry deletes its stored history."""
    entry = make_entry()
    await setup_entry(hass, entry)
    await _press(hass)
    key = f"{DOMAIN}.{entry.entry_id}.history"
    await hass.async_block_till_done()
    assert key in hass_storage

    await hass.config_entries.async_remove(entry.entry_id)
    await hass.async_block_till_done()
    assert key not in hass_storage


async def test_one_slow_test_among_good_ones_leaves_the_line_fine(
    hass: HomeAssistant, line: FakeSpeedtest
) -> None:
    """A suspicion is unknown only until the window is full; its median decides."""
    await setup_entry(hass, make_entry())
    line.set_rates(download_mbps=8, upload_mbps=20)
    await _press(hass)
    assert hass.states.get(SLOW).state == STATE_UNKNOWN

    line.set_rates(download_mbps=90, upload_mbps=20)
    await _press(hass)
    assert hass.states.get(SLOW).state == STATE_UNKNOWN
    await _press(hass)

    slow = hass.states.get(SLOW)
    assert slow.state == "off"
    assert slow.attributes["tests_needed"] == 0
    assert slow.attributes["violated"] == []


async def test_history_stored_by_earlier_versions_loads(
    hass: HomeAssistant, hass_storage: dict[str, Any]
) -> None:
    """A history file in the stored form so far shows its results after an update."""
    entry = make_entry(polling=False)
    server = {
        "id": 4242,
        "name": "Springfield",
        "sponsor": "Example Fiber",
        "country": "US",
        "distance_km": 12.5,
    }
    hass_storage[f"{DOMAIN}.{entry.entry_id}.history"] = {
        "version": 1,
        "minor_version": 1,
        "key": f"{DOMAIN}.{entry.entry_id}.history",
        "data": {
            "history": [
                {
                    "type": "measurement",
                    "download_mbps": 95.5,
                    "upload_mbps": 19,
                    "ping_ms": 14.2,
                    "bytes_received": 119375000,
                    "bytes_sent": 23750000,
                    "server": server,
                    "isp": "Example Fiber",
                    "started": "2026-03-02T08:00:00+00:00",
                    "finished": "2026-03-02T08:00:30+00:00",
                },
                {
                    "type": "failure",
                    "kind": "service_unavailable",
                    "reason": "speedtest.net answered 403",
                    "started": "2026-03-02T09:00:00+00:00",
                    "finished": "2026-03-02T09:00:05+00:00",
                    "bytes_received": 0,
                    "bytes_sent": 0,
                },
            ],
            "total_bytes": 143125000,
        },
    }

    await setup_entry(hass, entry)

    assert hass.states.get(LAST_RESULT).state == "service_unavailable"
    assert hass.states.get(LAST_TEST).state == "2026-03-02T09:00:05+00:00"
    assert hass.states.get(SERVER).state == "Example Fiber, Springfield (US)"
    assert _number(hass, TOTAL_TEST_DATA) == pytest.approx(0.143125)
    history = entry.runtime_data.coordinator.history
    stored = hass_storage[f"{DOMAIN}.{entry.entry_id}.history"]["data"]["history"]
    # Fields added since read as their defaults: hosts and jitter were not known then.
    upgraded = [
        stored[0]
        | {
            "server": server | {"host": ""},
            "nearby_hosts": [],
            "jitter_ms": None,
            "download_latency_ms": None,
            "upload_latency_ms": None,
            # Not judged by the other traffic then, and never deferred.
            "verdict": None,
            "other_download_bytes": None,
            "other_download_mbps": None,
            "other_upload_bytes": None,
            "other_upload_mbps": None,
            "deferrals": 0,
        },
        stored[1],
    ]
    assert [outcome.as_dict() for outcome in history] == upgraded


async def test_an_entry_from_before_an_option_existed_uses_its_default(
    hass: HomeAssistant, line: FakeSpeedtest
) -> None:
    """Options missing from an older entry take their defaults when it loads."""
    entry = make_entry()
    entry.add_to_hass(hass)
    hass.config_entries.async_update_entry(
        entry, options={CONF_MIN_DOWNLOAD: 30.0, CONF_MIN_UPLOAD: 10.0}
    )
    assert await hass.config_entries.async_setup(entry.entry_id)
    line.set_rates(download_mbps=8, upload_mbps=20)

    await _press(hass)

    # The default confirmation delay and window apply.
    assert entry.runtime_data.coordinator.update_interval == timedelta(minutes=30)
    assert hass.states.get(SLOW).attributes["tests_needed"] == 2


async def test_an_entry_from_version_1_keeps_its_plan_as_the_maximum(
    hass: HomeAssistant,
) -> None:
    """The plan of an entry made before contract speeds is the contract's maximum."""
    data = {
        "isp_name": "Example ISP",
        "isp_handle": "ExampleISPHelp",
        "plan_download": 250.0,
        "plan_upload": 50.0,
        "source_address": "192.168.2.10",
    }
    entry = MockConfigEntry(
        domain=DOMAIN,
        version=1,
        title="Example ISP",
        data=data | X_ACCOUNT_DATA,
        options=ENTRY_OPTIONS,
        unique_id="192.168.2.10",
        pref_disable_polling=True,
    )
    await setup_entry(hass, entry)

    assert entry.state is ConfigEntryState.LOADED
    assert entry.version == CONFIG_ENTRY_VERSION
    assert (
        entry.data
        == {
            "isp_name": "Example ISP",
            "isp_handle": "ExampleISPHelp",
            "contract_maximum_download": 250.0,
            "contract_maximum_upload": 50.0,
            "source_address": "192.168.2.10",
        }
        | X_ACCOUNT_DATA
    )
    assert entry.options == ENTRY_OPTIONS
    contract = entry.runtime_data.settings.contract
    assert contract.download.maximum_mbps == 250.0
    assert contract.upload.maximum_mbps == 50.0


async def test_an_entry_from_a_newer_version_is_left_alone(hass: HomeAssistant) -> None:
    """An entry a later ISP Watch wrote is not set up, and not changed."""
    entry = MockConfigEntry(
        domain=DOMAIN,
        version=CONFIG_ENTRY_VERSION + 1,
        title="Example ISP",
        data=ENTRY_DATA,
        options=ENTRY_OPTIONS,
        pref_disable_polling=True,
    )
    stored = dict(entry.data)
    entry.add_to_hass(hass)
    assert not await hass.config_entries.async_setup(entry.entry_id)
    assert entry.state is ConfigEntryState.MIGRATION_ERROR
    assert dict(entry.data) == stored
