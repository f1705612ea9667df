"""The measurement campaign as a user runs it: buttons, actions, sensors, restarts.

Every campaign test is a real test against the fake speedtest.net; the clock is moved
to each planned test with the freezer. The ruling's rules themselves are checked in
test_compliance.py; here it is the glue that is under test.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any

from freezegun.api import FrozenDateTimeFactory
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_fire_time_changed,
)
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.isp_watch.compliance import (
    Campaign,
    CampaignPhase,
    CampaignProblem,
)
from custom_components.isp_watch.const import (
    CONF_MAX_DEFERRALS,
    CONF_MONTHLY_DATA_BUDGET,
    CONF_WATCH_INTERVAL,
    DOMAIN,
)
from fakes.speedtest import FakeSpeedtest
from homeassistant.const import STATE_UNKNOWN
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ServiceValidationError
from homeassistant.util import dt as dt_util
from tests.common import (
    BERLIN,
    berlin,
    campaign_days,
    make_entry,
    setup_entry,
    store_campaign,
    store_history,
    stored_measurement,
)

CAMPAIGN = "sensor.example_isp_measurement_campaign"
DEVIATION = "binary_sensor.example_isp_contract_deviation"
START = "button.example_isp_start_measurement_campaign"
CANCEL = "button.example_isp_cancel_measurement_campaign"
# A 100/40 contract as German providers state it.
CONTRACT = {
    "contract_maximum_download": 100.0,
    "contract_normally_available_download": 80.0,
    "contract_minimum_download": 50.0,
    "contract_maximum_upload": 40.0,
    "contract_normally_available_upload": 32.0,
    "contract_minimum_upload": 20.0,
}
NO_CONTRACT = dict.fromkeys(CONTRACT)


async def _press(hass: HomeAssistant, button: str) -> None:
    await hass.services.async_call(
        "button", "press", {"entity_id": button}, blocking=True
    )


async def _action(hass: HomeAssistant, action: str, entry: MockConfigEntry) -> None:
    await hass.services.async_call(
        DOMAIN, action, {"config_entry_id": entry.entry_id}, blocking=True
    )


def _attributes(hass: HomeAssistant, entity_id: str) -> dict[str, Any]:
    state = hass.states.get(entity_id)
    assert state is not None
    return dict(state.attributes)


def _next_test(hass: HomeAssistant) -> datetime:
    moment = dt_util.parse_datetime(_attributes(hass, CAMPAIGN)["next_test"])
    assert moment is not None
    return moment


async def _run_next_test(hass: HomeAssistant, freezer: FrozenDateTimeFactory) -> None:
    """Move the clock to the campaign's next test and let it run."""
    due = _next_test(hass)
    freezer.move_to(due)
    async_fire_time_changed(hass, due)
    await hass.async_block_till_done(wait_background_tasks=True)


@pytest.fixture(autouse=True)
async def berlin_time(hass: HomeAssistant) -> None:
    """Measuring days are Berlin's calendar days, where the ruling applies."""
    await hass.config.async_set_time_zone("Europe/Berlin")


# 30 real tests of about 1.5 s each: on a busy machine more than the usual limit.
@pytest.mark.timeout(300)
async def test_a_campaign_runs_end_to_end(
    hass: HomeAssistant,
    quick_speedtest_route: FakeSpeedtest,
    freezer: FrozenDateTimeFactory,
) -> None:
    """30 tests over 3 days across a clock change, then a verdict with its numbers.

    Day 1 (Saturday 24 October, summer time) is fast; days 2 and 3 (after the clocks
    went back that night) are below the minimum download: criteria (a) and (c) find a
    deviation on 2 of 3 days, (b) in 20 of 30 tests. Upload keeps to the contract. The
    line's rates keep a wide margin around every limit.
    """
    freezer.move_to(berlin(date(2026, 10, 24), time(6, 30)))
    entry = make_entry(data=CONTRACT, polling=False)
    await setup_entry(hass, entry)
    assert hass.states.get(CAMPAIGN).state == "idle"
    assert hass.states.get(DEVIATION).state == STATE_UNKNOWN

    await _press(hass, START)
    attributes = _attributes(hass, CAMPAIGN)
    assert hass.states.get(CAMPAIGN).state == "running"
    assert attributes["measuring_days"] == ["2026-10-24", "2026-10-26", "2026-10-28"]
    assert attributes["next_test"] == "2026-10-24T07:00:00+02:00"

    days = {
        date(2026, 10, 24): (150.0, 60.0),
        date(2026, 10, 26): (30.0, 60.0),
        date(2026, 10, 28): (30.0, 60.0),
    }
    started: list[datetime] = []
    while hass.states.get(CAMPAIGN).state == "running":
        due = _next_test(hass)
        download, upload = days[due.astimezone(BERLIN).date()]
        quick_speedtest_route.set_rates(download_mbps=download, upload_mbps=upload)
        started.append(due)
        await _run_next_test(hass, freezer)
        assert len(started) <= 30

    assert hass.states.get(CAMPAIGN).state == "complete"
    # After the clocks went back, the plan keeps its wall-clock times: 07:00 is 06:00
    # UTC now, not 05:00 as on the first day.
    assert started[0] == datetime(2026, 10, 24, 5, 0, tzinfo=dt_util.UTC)
    assert started[10] == datetime(2026, 10, 26, 6, 0, tzinfo=dt_util.UTC)
    assert started[-1].astimezone(BERLIN) == berlin(date(2026, 10, 28), time(23))
    attributes = _attributes(hass, CAMPAIGN)
    assert attributes["tests_per_day"] == {
        "2026-10-24": 10,
        "2026-10-26": 10,
        "2026-10-28": 10,
    }
    assert attributes["verdict"] == "deviation"
    assert attributes["next_test"] is None

    assert hass.states.get(DEVIATION).state == "on"
    verdict = _attributes(hass, DEVIATION)
    assert verdict["tests"] == 30
    assert verdict["days"] == 3
    assert verdict["download_deviation"] is True
    assert verdict["upload_deviation"] is False
    minimum = verdict["download"]["minimum"]
    assert minimum["deviation"] is True
    assert minimum["contract_speed"] == 50.0
    assert (minimum["days_failed"], minimum["days"]) == (2, 3)
    normal = verdict["download"]["normally_available"]
    assert (normal["tests_reaching"], normal["tests"]) == (10, 30)
    maximum = verdict["download"]["maximum"]
    assert maximum["limit"] == 90.0
    assert maximum["days_failed"] == 2
    assert verdict["upload"]["minimum"]["deviation"] is False
    assert verdict["upload"]["normally_available"]["tests_reaching"] == 30

    # Done: no test follows, a day later neither.
    tests_run = quick_speedtest_route.count("speedtest-config.php")
    freezer.tick(timedelta(days=1))
    async_fire_time_changed(hass)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert quick_speedtest_route.count("speedtest-config.php") == tests_run
    assert _attributes(hass, CAMPAIGN)["tests_done"] == 30


async def test_a_campaign_goes_on_after_a_restart(
    hass: HomeAssistant,
    quick_speedtest_route: FakeSpeedtest,
    freezer: FrozenDateTimeFactory,
) -> None:
    """A reload between two campaign tests loses nothing; the next one runs on time."""
    freezer.move_to(berlin(date(2026, 11, 2), time(6, 0)))
    entry = make_entry(data=CONTRACT, polling=False)
    await setup_entry(hass, entry)
    await _action(hass, "start_campaign", entry)
    await _run_next_test(hass, freezer)
    assert _attributes(hass, CAMPAIGN)["tests_per_day"] == {"2026-11-02": 1}

    assert await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done()

    attributes = _attributes(hass, CAMPAIGN)
    assert hass.states.get(CAMPAIGN).state == "running"
    assert attributes["tests_per_day"] == {"2026-11-02": 1}
    assert attributes["next_test"] == "2026-11-02T08:30:00+01:00"
    await _run_next_test(hass, freezer)
    assert _attributes(hass, CAMPAIGN)["tests_per_day"] == {"2026-11-02": 2}


async def test_a_campaign_test_counts_as_a_scheduled_test(
    hass: HomeAssistant,
    hass_storage: dict[str, Any],
    quick_speedtest_route: FakeSpeedtest,
    freezer: FrozenDateTimeFactory,
) -> None:
    """The hourly schedule starts again from a campaign test, and goes on beside it.

    The last test ended at 06:29, so the next regular one was due at 07:29; the
    campaign's test at 07:00 moves it to 08:00. The regular test is not one of the
    campaign's. (It does not first look for a busy line: that looks for a few seconds,
    and the frozen clock would never let them pass.)
    """
    day = date(2026, 11, 2)
    freezer.move_to(berlin(day, time(6, 30)))
    entry = make_entry(
        data=CONTRACT,
        options={CONF_WATCH_INTERVAL: 0, CONF_MAX_DEFERRALS: 0},
        polling=True,
    )
    store_history(
        hass_storage,
        entry.entry_id,
        [stored_measurement("2026-11-02T05:29:06+00:00", download_mbps=95.0)],
    )
    await setup_entry(hass, entry)
    await _action(hass, "start_campaign", entry)

    def tests_run() -> int:
        return quick_speedtest_route.count("speedtest-config.php")

    await _run_next_test(hass, freezer)
    assert tests_run() == 1
    for moment, expected in ((time(7, 30), 1), (time(8, 0, 1), 2)):
        freezer.move_to(berlin(day, moment))
        async_fire_time_changed(hass)
        await hass.async_block_till_done(wait_background_tasks=True)
        assert tests_run() == expected
    attributes = _attributes(hass, CAMPAIGN)
    assert attributes["tests_per_day"] == {"2026-11-02": 1}
    assert attributes["next_test"] == "2026-11-02T08:30:00+01:00"


async def test_missed_tests_move_a_day_on(
    hass: HomeAssistant, hass_storage: dict[str, Any], freezer: FrozenDateTimeFactory
) -> None:
    """Home Assistant was off through the evening: that day is measured again later.

    With 3 tests done on the second day and Home Assistant back at 22:00, 7 tests with
    the 3-hour gap no longer fit before midnight: the day is given up, and the next
    measuring day keeps a day off after it.
    """
    entry = make_entry(data=CONTRACT, polling=False)
    first, second = date(2026, 11, 2), date(2026, 11, 4)
    store_campaign(
        hass_storage,
        entry,
        Campaign(
            phase=CampaignPhase.RUNNING,
            started=berlin(first, time(6)),
            measurements=campaign_days((first, 10), (second, 3)),
        ),
    )
    freezer.move_to(berlin(second, time(22)))
    await setup_entry(hass, entry)

    attributes = _attributes(hass, CAMPAIGN)
    assert hass.states.get(CAMPAIGN).state == "running"
    assert attributes["tests_per_day"] == {"2026-11-02": 10}
    assert attributes["measuring_days"] == ["2026-11-02", "2026-11-06", "2026-11-08"]
    assert attributes["next_test"] == "2026-11-06T07:00:00+01:00"


def _store_first_day_measured(
    hass_storage: dict[str, Any], entry: MockConfigEntry, first: date
) -> None:
    """A running campaign whose first measuring day has all its 10 tests."""
    store_campaign(
        hass_storage,
        entry,
        Campaign(
            phase=CampaignPhase.RUNNING,
            started=berlin(first, time(6)),
            measurements=campaign_days((first, 10)),
        ),
    )


async def test_a_campaign_that_cannot_finish_says_why(
    hass: HomeAssistant, hass_storage: dict[str, Any], freezer: FrozenDateTimeFactory
) -> None:
    """Back after two weeks, the 3 days no longer fit into 14: the campaign ends."""
    entry = make_entry(data=CONTRACT, polling=False)
    first = date(2026, 11, 2)
    _store_first_day_measured(hass_storage, entry, first)
    freezer.move_to(berlin(date(2026, 11, 14), time(12)))
    await setup_entry(hass, entry)

    assert hass.states.get(CAMPAIGN).state == "cancelled"
    attributes = _attributes(hass, CAMPAIGN)
    assert attributes["ended_because"] == "window_exceeded"
    assert attributes["next_test"] is None
    assert hass.states.get(DEVIATION).state == STATE_UNKNOWN
    stored = hass_storage[f"{DOMAIN}.{entry.entry_id}.history"]["data"]["campaign"]
    assert stored["phase"] == "cancelled"
    assert stored["problem"] == CampaignProblem.WINDOW_EXCEEDED.value


async def test_a_machine_that_slept_past_the_window_ends_the_campaign(
    hass: HomeAssistant, hass_storage: dict[str, Any], freezer: FrozenDateTimeFactory
) -> None:
    """The timer fires long after its time: the campaign ends instead of testing."""
    entry = make_entry(data=CONTRACT, polling=False)
    first = date(2026, 11, 2)
    _store_first_day_measured(hass_storage, entry, first)
    freezer.move_to(berlin(first, time(23, 30)))
    await setup_entry(hass, entry)
    assert _attributes(hass, CAMPAIGN)["next_test"] == "2026-11-04T07:00:00+01:00"

    freezer.move_to(berlin(date(2026, 11, 14), time(12)))
    async_fire_time_changed(hass)
    await hass.async_block_till_done(wait_background_tasks=True)

    assert hass.states.get(CAMPAIGN).state == "cancelled"
    assert _attributes(hass, CAMPAIGN)["ended_because"] == "window_exceeded"


async def test_a_timer_that_fires_early_runs_no_test(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory
) -> None:
    """Before its time a campaign test waits: the rules' gaps hold to the second."""
    freezer.move_to(berlin(date(2026, 11, 2), time(6)))
    entry = make_entry(data=CONTRACT, polling=False)
    await setup_entry(hass, entry)
    await _action(hass, "start_campaign", entry)

    async_fire_time_changed(hass, fire_all=True)
    await hass.async_block_till_done(wait_background_tasks=True)

    attributes = _attributes(hass, CAMPAIGN)
    assert attributes["tests_done"] == 0
    assert attributes["next_test"] == "2026-11-02T07:00:00+01:00"
    assert hass.states.get("sensor.example_isp_last_test").state == STATE_UNKNOWN


async def test_a_failed_test_is_tried_again_within_the_rules(
    hass: HomeAssistant,
    quick_speedtest_route: FakeSpeedtest,
    freezer: FrozenDateTimeFactory,
) -> None:
    """With the line down the test is no measurement; 5 minutes later it runs again."""
    freezer.move_to(berlin(date(2026, 11, 2), time(6, 0)))
    entry = make_entry(data=CONTRACT, polling=False)
    await setup_entry(hass, entry)
    await _action(hass, "start_campaign", entry)
    quick_speedtest_route.stop()
    await _run_next_test(hass, freezer)

    attributes = _attributes(hass, CAMPAIGN)
    assert attributes["tests_done"] == 0
    assert attributes["next_test"] == "2026-11-02T07:05:00+01:00"

    quick_speedtest_route.start()
    await _run_next_test(hass, freezer)
    assert _attributes(hass, CAMPAIGN)["tests_per_day"] == {"2026-11-02": 1}


async def test_buttons_start_and_cancel(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory
) -> None:
    """Start, then cancel: the reason is kept; cancelling again is refused."""
    freezer.move_to(berlin(date(2026, 11, 2), time(12)))
    await setup_entry(hass, make_entry(data=CONTRACT, polling=False))

    await _press(hass, START)
    assert hass.states.get(CAMPAIGN).state == "running"
    # Started at noon: the first measuring day is tomorrow.
    assert _attributes(hass, CAMPAIGN)["next_test"] == "2026-11-03T07:00:00+01:00"
    with pytest.raises(ServiceValidationError) as raised:
        await _press(hass, START)
    assert raised.value.translation_key == "campaign_running"

    await _press(hass, CANCEL)
    assert hass.states.get(CAMPAIGN).state == "cancelled"
    attributes = _attributes(hass, CAMPAIGN)
    assert attributes["ended_because"] == "cancelled_by_user"
    assert attributes["next_test"] is None
    with pytest.raises(ServiceValidationError) as raised:
        await _press(hass, CANCEL)
    assert raised.value.translation_key == "campaign_not_running"

    # A cancelled campaign can be followed by a new one.
    await _press(hass, START)
    assert hass.states.get(CAMPAIGN).state == "running"


async def test_actions_refuse_what_cannot_be_done(
    hass: HomeAssistant, hass_storage: dict[str, Any]
) -> None:
    """Cancelling nothing, or a campaign without contract speeds: nothing changes."""
    entry = make_entry(data=NO_CONTRACT, polling=False)
    await setup_entry(hass, entry)

    for action, key in (
        ("cancel_campaign", "campaign_not_running"),
        ("start_campaign", "campaign_without_contract"),
    ):
        with pytest.raises(ServiceValidationError) as raised:
            await _action(hass, action, entry)
        assert raised.value.translation_key == key
    assert hass.states.get(CAMPAIGN).state == "idle"
    stored = hass_storage.get(f"{DOMAIN}.{entry.entry_id}.history", {})
    assert "campaign" not in stored.get("data", {})


@pytest.mark.freeze_time("2026-11-22T10:30:00+00:00")
async def test_a_campaign_over_the_data_budget_does_not_start(
    hass: HomeAssistant, hass_storage: dict[str, Any]
) -> None:
    """Without tests to go by, 30 tests of 200 MB do not fit into 5 GB left."""
    entry = make_entry(
        data=CONTRACT, options={CONF_MONTHLY_DATA_BUDGET: 5}, polling=False
    )
    await setup_entry(hass, entry)

    with pytest.raises(ServiceValidationError) as raised:
        await _action(hass, "start_campaign", entry)

    assert raised.value.translation_key == "campaign_over_budget"
    assert raised.value.translation_placeholders == {
        "estimate": "6.0",
        "left": "5.0",
        "budget": "5.0",
    }
    assert hass.states.get(CAMPAIGN).state == "idle"


@pytest.mark.freeze_time("2026-11-22T10:30:00+00:00")
async def test_a_campaign_estimates_its_data_from_recent_tests(
    hass: HomeAssistant, hass_storage: dict[str, Any]
) -> None:
    """Tests of 18 MB make 540 MB for a campaign: it fits into the 640 MB left."""
    entry = make_entry(
        data=CONTRACT, options={CONF_MONTHLY_DATA_BUDGET: 1}, polling=False
    )
    history = [
        stored_measurement(f"2026-11-{day:02}T10:00:06+00:00", download_mbps=95.0)
        for day in range(1, 21)
    ]
    store_history(hass_storage, entry.entry_id, history)
    await setup_entry(hass, entry)
    await _action(hass, "start_campaign", entry)
    assert hass.states.get(CAMPAIGN).state == "running"


async def test_a_used_up_budget_ends_the_campaign(
    hass: HomeAssistant, hass_storage: dict[str, Any], freezer: FrozenDateTimeFactory
) -> None:
    """Tests due while the month's budget is used up: the campaign ends and says so."""
    entry = make_entry(
        data=CONTRACT, options={CONF_MONTHLY_DATA_BUDGET: 1}, polling=False
    )
    day = date(2026, 11, 2)
    # 60 tests of 18 MB this month: more than 1 GB.
    history = [
        stored_measurement(
            f"2026-11-01T{hour:02}:{minute:02}:06+00:00", download_mbps=95.0
        )
        for hour in range(6)
        for minute in range(0, 60, 6)
    ]
    store_campaign(
        hass_storage,
        entry,
        Campaign(phase=CampaignPhase.RUNNING, started=berlin(day, time(6))),
        history,
    )
    freezer.move_to(berlin(day, time(6)))
    await setup_entry(hass, entry)
    assert _attributes(hass, CAMPAIGN)["next_test"] == "2026-11-02T07:00:00+01:00"

    await _run_next_test(hass, freezer)

    assert hass.states.get(CAMPAIGN).state == "cancelled"
    assert _attributes(hass, CAMPAIGN)["ended_because"] == "data_budget_exceeded"


async def test_a_damaged_campaign_record_costs_only_the_campaign(
    hass: HomeAssistant, hass_storage: dict[str, Any]
) -> None:
    """An unreadable campaign reads as none; the history loads all the same."""
    entry = make_entry(data=CONTRACT, polling=False)
    store_history(
        hass_storage,
        entry.entry_id,
        [stored_measurement("2026-11-02T10:00:06+00:00", download_mbps=95.0)],
    )
    hass_storage[f"{DOMAIN}.{entry.entry_id}.history"]["data"]["campaign"] = {
        "phase": "running",
        "measurements": [{"started": "yesterday"}],
    }
    await setup_entry(hass, entry)

    assert hass.states.get(CAMPAIGN).state == "idle"
    assert hass.states.get("sensor.example_isp_download").state == "95.0"


async def test_the_report_of_the_last_campaign(
    hass: HomeAssistant, hass_storage: dict[str, Any], freezer: FrozenDateTimeFactory
) -> None:
    """The report's period is the campaign's, and it carries the verdict."""
    entry = make_entry(data=CONTRACT, polling=False)
    days = ((date(2026, 11, 2), 10), (date(2026, 11, 4), 10), (date(2026, 11, 6), 10))
    measurements = campaign_days(*days)
    store_campaign(
        hass_storage,
        entry,
        Campaign(
            phase=CampaignPhase.COMPLETE,
            started=berlin(date(2026, 11, 2), time(6)),
            ended=measurements[-1].finished,
            measurements=measurements,
        ),
        [stored_measurement("2026-11-04T10:00:06+00:00", download_mbps=40.0)],
    )
    freezer.move_to(berlin(date(2026, 11, 20), time(12)))
    await setup_entry(hass, entry)

    response = await hass.services.async_call(
        DOMAIN,
        "get_report",
        {"config_entry_id": entry.entry_id, "last_campaign": True},
        blocking=True,
        return_response=True,
    )

    assert response is not None
    assert response["start"] == "2026-11-02T06:00:00+01:00"
    assert response["end"] == "2026-11-06T23:00:20+01:00"
    assert [test["finished"] for test in response["tests"]] == [
        "2026-11-04T10:00:06+00:00"
    ]
    campaign = response["campaign"]
    assert campaign["phase"] == "complete"
    assert len(campaign["measurements"]) == 30
    verdict = campaign["verdict"]
    assert verdict["deviation"] is True
    below_minimum = next(
        item
        for item in verdict["criteria"]
        if (item["direction"], item["criterion"]) == ("download", "minimum")
    )
    assert below_minimum["days_failed"] == 3
    assert below_minimum["tests_below"] == 30


@pytest.mark.freeze_time("2026-11-02T11:00:00+00:00")
async def test_diagnostics_include_the_last_campaign(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    hass_storage: dict[str, Any],
) -> None:
    """A bug report shows the campaign's tests, its phase and its verdict."""
    entry = make_entry(data=CONTRACT, polling=False)
    first = date(2026, 11, 2)
    store_campaign(
        hass_storage,
        entry,
        Campaign(
            phase=CampaignPhase.CANCELLED,
            started=berlin(first, time(6)),
            ended=berlin(first, time(9)),
            measurements=campaign_days((first, 2)),
            problem=CampaignProblem.CANCELLED_BY_USER,
        ),
    )
    await setup_entry(hass, entry)

    diagnostics = await get_diagnostics_for_config_entry(hass, hass_client, entry)

    campaign = diagnostics["campaign"]
    assert campaign["phase"] == "cancelled"
    assert campaign["problem"] == "cancelled_by_user"
    assert [test["started"] for test in campaign["measurements"]] == [
        "2026-11-02T07:00:00+01:00",
        "2026-11-02T08:30:00+01:00",
    ]
    assert campaign["verdict"] is None


async def test_the_report_of_a_campaign_needs_one(hass: HomeAssistant) -> None:
    """No campaign yet, or a period asked for as well: a translated error."""
    entry = make_entry(data=CONTRACT, polling=False)
    await setup_entry(hass, entry)
    for fields, key in (
        ({"last_campaign": True}, "report_no_campaign"),
        (
            {"last_campaign": True, "start": "2026-11-01 00:00:00"},
            "report_campaign_and_period",
        ),
    ):
        with pytest.raises(ServiceValidationError) as raised:
            await hass.services.async_call(
                DOMAIN,
                "get_report",
                {"config_entry_id": entry.entry_id, **fields},
                blocking=True,
                return_response=True,
            )
        assert raised.value.translation_key == key
