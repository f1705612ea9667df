"""Hostile stored files, server numbers and automations: the entry keeps working.

Through the public paths an attacker has: store files written before setup, the fake
speedtest.net's configuration, notify.send_message, and a store directory the disk
refuses to write.
"""

from __future__ import annotations

from datetime import timedelta
import json
from pathlib import Path
from typing import Any
from unittest.mock import patch

from freezegun.api import FrozenDateTimeFactory
import pytest
from pytest_homeassistant_custom_component.common import async_fire_time_changed

from custom_components.isp_watch.const import DOMAIN
from custom_components.isp_watch.models import Measurement
from fakes.speedtest import FakeSpeedtest
from fakes.x_api import FakeXApi
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.storage import Store
from homeassistant.util import dt as dt_util
from tests.common import (
    LAST_RESULT,
    LAST_TEST,
    OUTBOX,
    RUN_TEST,
    SERVER,
    TWEET,
    make_entry,
    setup_entry,
    store_history,
    stored_measurement,
)

# The real writer, taken before the test harness replaces it with an in-memory one.
REAL_WRITE = Store._async_write_data
TRANSLATIONS = json.loads(
    (
        Path(__file__).parents[1] / "custom_components/isp_watch/translations/en.json"
    ).read_text()
)
GOOD = stored_measurement("2026-03-02T08:00:30+00:00", download_mbps=95.5)
LATER = stored_measurement("2026-03-02T09:00:30+00:00", download_mbps=90.0)
# What a newer version, a damaged file or a hand edit may leave.
UNREADABLE: dict[str, Any] = {
    "unknown failure kind": {
        "type": "failure",
        "kind": "kind_from_a_newer_version",
        "reason": "?",
        "started": "2026-03-02T08:10:00+00:00",
        "finished": "2026-03-02T08:10:05+00:00",
    },
    "missing field": {key: value for key, value in GOOD.items() if key != "finished"},
    "naive datetime": GOOD | {"finished": "2026-03-02T08:20:30"},
    "wrong type": GOOD | {"download_mbps": "fast"},
    "count as bool": GOOD | {"bytes_sent": True},
    "null speed": GOOD | {"download_mbps": None},
    "not an object": "garbage",
}


@pytest.fixture
def line(speedtest_route: FakeSpeedtest) -> FakeSpeedtest:
    """The fake internet, with short tests."""
    speedtest_route.test_length = 1
    return speedtest_route


async def _press(hass: HomeAssistant) -> None:
    await hass.services.async_call(
        "button", "press", {"entity_id": RUN_TEST}, blocking=True
    )


async def _send(hass: HomeAssistant, message: str) -> None:
    await hass.services.async_call(
        "notify", "send_message", {"entity_id": TWEET, "message": message}, True
    )


def _stored(hass_storage: dict[str, Any], key: str) -> Any:
    return hass_storage[key]["data"]


def _store_outbox(
    hass_storage: dict[str, Any], entry_id: str, items: list[Any]
) -> None:
    key = f"{DOMAIN}.{entry_id}.outbox"
    hass_storage[key] = {
        "version": 1,
        "minor_version": 1,
        "key": key,
        "data": {"items": items, "sent": [], "paused_reason": None},
    }


async def test_nan_distance_from_speedtest_net_never_enters_history(
    hass: HomeAssistant, line: FakeSpeedtest, hass_storage: dict[str, Any]
) -> None:
    """lat="nan" gives no distance; the test counts, and the entry loads again."""
    line.faults.client_lat = "nan"
    entry = make_entry(polling=False)
    await setup_entry(hass, entry)

    await _press(hass)

    assert hass.states.get(LAST_RESULT).state == "success"
    outcome = entry.runtime_data.coordinator.history[-1]
    assert isinstance(outcome, Measurement)
    assert outcome.server.distance_km is None
    key = f"{DOMAIN}.{entry.entry_id}.history"
    assert _stored(hass_storage, key)["history"][-1]["server"]["distance_km"] is None

    assert await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED
    assert hass.states.get(LAST_RESULT).state == "success"


async def test_stored_nan_and_null_still_load(
    hass: HomeAssistant, hass_storage: dict[str, Any]
) -> None:
    """A NaN or null distance is unknown; a NaN speed is set aside, not believed."""
    entry = make_entry(polling=False)
    nan_distance = GOOD | {"server": GOOD["server"] | {"distance_km": float("nan")}}
    null_distance = LATER | {"server": LATER["server"] | {"distance_km": None}}
    nan_speed = LATER | {"upload_mbps": float("nan")}
    store_history(
        hass_storage, entry.entry_id, [nan_distance, nan_speed, null_distance]
    )

    await setup_entry(hass, entry)

    assert entry.state is ConfigEntryState.LOADED
    history = entry.runtime_data.coordinator.history
    assert len(history) == 2
    assert all(
        isinstance(item, Measurement) and item.server.distance_km is None
        for item in history
    )
    assert hass.states.get(SERVER).state == "Example Hosting 0, Town 0 (Netherlands)"


async def test_unreadable_records_are_set_aside_and_reported(
    hass: HomeAssistant,
    hass_storage: dict[str, Any],
    issue_registry: ir.IssueRegistry,
) -> None:
    """Each bad record is skipped, kept in a side file and named in a repair."""
    entry = make_entry(polling=False)
    store_history(hass_storage, entry.entry_id, [GOOD, LATER])
    key = f"{DOMAIN}.{entry.entry_id}.history"
    _stored(hass_storage, key)["history"][1:1] = list(UNREADABLE.values())

    await setup_entry(hass, entry)

    assert entry.state is ConfigEntryState.LOADED
    history = entry.runtime_data.coordinator.history
    # Stored before the other traffic was judged: those fields read as not known.
    assert history == [Measurement.from_dict(GOOD), Measurement.from_dict(LATER)]
    assert hass.states.get(LAST_TEST).state == "2026-03-02T09:00:30+00:00"
    kept = _stored(hass_storage, f"{key}.unreadable")["records"]
    assert [item["record"] for item in kept] == list(UNREADABLE.values())
    assert all(item["problem"] for item in kept)
    issue = issue_registry.async_get_issue(
        DOMAIN, f"unreadable_history_{entry.entry_id}"
    )
    assert issue is not None
    assert issue.translation_placeholders is not None
    assert issue.translation_placeholders["count"] == str(len(UNREADABLE))
    assert issue.translation_placeholders["file"] == f".storage/{key}.unreadable"
    assert "kind_from_a_newer_version" in issue.translation_placeholders["problems"]
    text = TRANSLATIONS["issues"]["unreadable_history"]["description"]
    assert text.format(**issue.translation_placeholders)

    # Loaded again before anything was measured: the records are not kept twice.
    assert await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done()
    kept = _stored(hass_storage, f"{key}.unreadable")["records"]
    assert len(kept) == len(UNREADABLE)


async def test_unreadable_history_file_shape(
    hass: HomeAssistant, hass_storage: dict[str, Any]
) -> None:
    """Odd shapes of the history file and of the side file: loaded, none overwritten."""
    entry = make_entry(polling=False)
    store_history(hass_storage, entry.entry_id, [GOOD])
    key = f"{DOMAIN}.{entry.entry_id}.history"
    stored = _stored(hass_storage, key)
    stored["total_bytes"] = float("nan")
    edited = {"records": "edited by hand"}
    hass_storage[f"{key}.unreadable"] = {"version": 1, "key": "", "data": edited}

    await setup_entry(hass, entry)

    assert entry.state is ConfigEntryState.LOADED
    coordinator = entry.runtime_data.coordinator
    assert coordinator.data.total_bytes == GOOD["bytes_received"] + GOOD["bytes_sent"]
    assert _stored(hass_storage, f"{key}.unreadable") == edited

    stored["history"] = {"not": "a list"}
    assert await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED
    assert entry.runtime_data.coordinator.history == []
    kept = _stored(hass_storage, f"{key}.unreadable")["records"]
    assert [item["record"] for item in kept] == [edited, {"not": "a list"}]


async def test_unreadable_post_neither_stops_tests_nor_other_posts(
    hass: HomeAssistant,
    hass_storage: dict[str, Any],
    fake_x_api: FakeXApi,
    issue_registry: ir.IssueRegistry,
) -> None:
    """The readable post goes out, speed tests are set up, the bad one is kept."""
    entry = make_entry(with_x_account=True, polling=False)
    queued = dt_util.utcnow().isoformat()
    good = {"id": "a", "text": "@ExampleISPHelp Still slow", "queued_at": queued}
    naive = {"id": "b", "text": "naive", "queued_at": "2026-03-02T08:00:00"}
    unknown = {"id": "c", "text": 5, "queued_at": queued}
    _store_outbox(hass_storage, entry.entry_id, [naive, good, unknown])

    await setup_entry(hass, entry)
    await hass.async_block_till_done(wait_background_tasks=True)

    assert entry.state is ConfigEntryState.LOADED
    assert hass.states.get(RUN_TEST) is not None
    assert fake_x_api.posts == ["@ExampleISPHelp Still slow"]
    assert hass.states.get(OUTBOX).state == "0"
    key = f"{DOMAIN}.{entry.entry_id}.outbox.unreadable"
    assert [item["record"] for item in _stored(hass_storage, key)["records"]] == [
        naive,
        unknown,
    ]
    issue = issue_registry.async_get_issue(
        DOMAIN, f"unreadable_outbox_{entry.entry_id}"
    )
    assert issue is not None
    assert issue.translation_placeholders is not None
    assert issue.translation_placeholders["count"] == "2"


async def test_test_stamped_in_the_future_does_not_suspend_testing(
    hass: HomeAssistant,
    line: FakeSpeedtest,
    hass_storage: dict[str, Any],
    freezer: FrozenDateTimeFactory,
) -> None:
    """A last test 30 days ahead (clock skew) is moved back; tests go on."""
    entry = make_entry()
    future = dt_util.utcnow() + timedelta(days=30)
    store_history(
        hass_storage,
        entry.entry_id,
        [stored_measurement(future.isoformat(), download_mbps=95.5)],
    )

    await setup_entry(hass, entry)
    last_test = dt_util.parse_datetime(hass.states.get(LAST_TEST).state)
    assert last_test is not None
    assert last_test <= dt_util.utcnow()
    assert line.count("random") == 0

    freezer.tick(timedelta(hours=2))
    async_fire_time_changed(hass)
    await hass.async_block_till_done(wait_background_tasks=True)

    assert line.count("random") > 0
    assert len(entry.runtime_data.coordinator.history) == 2


async def test_same_text_three_times_in_a_minute(
    hass: HomeAssistant, fake_x_api: FakeXApi
) -> None:
    """The third identical text within the minute is refused, with a reason."""
    entry = make_entry(with_x_account=True, polling=False)
    await setup_entry(hass, entry)
    fake_x_api.stop()
    message = "Automated test: the internet is down."

    await _send(hass, message)
    await _send(hass, message)
    with pytest.raises(ServiceValidationError) as refused:
        await _send(hass, message)

    assert refused.value.translation_key == "tweet_duplicate"
    assert str(refused.value).startswith("The same post was already queued")
    outbox = entry.runtime_data.sender.outbox
    texts = [item.text for item in outbox.items]
    assert len(texts) == len(set(texts)) == 2


async def test_removed_entry_leaves_no_issue_or_file(
    hass: HomeAssistant,
    hass_storage: dict[str, Any],
    issue_registry: ir.IssueRegistry,
) -> None:
    """Removing the entry removes its repair issues and its side files."""
    entry = make_entry(polling=False)
    store_history(hass_storage, entry.entry_id, [GOOD, UNREADABLE["missing field"]])
    await setup_entry(hass, entry)
    issue_id = f"unreadable_history_{entry.entry_id}"
    assert issue_registry.async_get_issue(DOMAIN, issue_id) is not None

    await hass.config_entries.async_remove(entry.entry_id)
    await hass.async_block_till_done()

    assert not [
        issue_id
        for domain, issue_id in issue_registry.issues
        if domain == DOMAIN and entry.entry_id in issue_id
    ]
    assert not [key for key in hass_storage if entry.entry_id in key]


async def test_post_that_cannot_be_stored_is_an_error(
    hass: HomeAssistant, fake_x_api: FakeXApi, tmp_path: Path
) -> None:
    """A write the disk refuses answers the automation with an error; a retry works."""
    entry = make_entry(with_x_account=True, polling=False)
    await setup_entry(hass, entry)
    fake_x_api.stop()
    hass.config.config_dir = str(tmp_path)
    # The outbox's file name is taken by a folder: every write of it fails.
    blocked = tmp_path / ".storage" / f"{DOMAIN}.{entry.entry_id}.outbox"
    blocked.mkdir(parents=True)

    with patch.object(Store, "_async_write_data", REAL_WRITE):
        with pytest.raises(HomeAssistantError) as refused:
            await _send(hass, "Automated test: 8 Mbit/s down.")
        assert refused.value.translation_key == "tweet_not_stored"
        assert "Is a directory" in str(refused.value)
        assert hass.states.get(OUTBOX).state == "0"

        blocked.rmdir()
        await _send(hass, "Automated test: 8 Mbit/s down.")

    assert hass.states.get(OUTBOX).state == "1"
    stored = json.loads(blocked.read_text())
    assert [item["text"] for item in stored["data"]["items"]] == [
        "@ExampleISPHelp Automated test: 8 Mbit/s down."
    ]
