"""The get_report action: what a script gets to hand to the ISP."""

from __future__ import annotations

from typing import Any

import pytest

from custom_components.isp_watch.const import DOMAIN
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ServiceValidationError
from tests.common import make_entry, setup_entry, store_history, stored_measurement

CONTRACT = {
    "contract_maximum_download": 100.0,
    "contract_normally_available_download": 60.0,
    "contract_minimum_download": 30.0,
}
HISTORY = [
    stored_measurement("2026-10-20T10:00:06+00:00", download_mbps=10.0),
    stored_measurement("2026-11-02T10:00:06+00:00", download_mbps=95.0),
    {
        "type": "failure",
        "kind": "invalid_result",
        "reason": "upload finished before its first sample",
        "started": "2026-11-03T10:00:00+00:00",
        "finished": "2026-11-03T10:00:06+00:00",
        "bytes_received": 1_000_000,
        "bytes_sent": 0,
    },
    stored_measurement("2026-11-04T10:00:06+00:00", download_mbps=25.0),
]


async def _report(hass: HomeAssistant, **fields: Any) -> dict[str, Any]:
    response = await hass.services.async_call(
        DOMAIN, "get_report", fields, blocking=True, return_response=True
    )
    assert response is not None
    return dict(response)


@pytest.fixture
async def entry_id(hass: HomeAssistant, hass_storage: dict[str, Any]) -> str:
    """An entry with a contract and a history over two months."""
    entry = make_entry(data=CONTRACT, polling=False)
    store_history(hass_storage, entry.entry_id, HISTORY)
    await setup_entry(hass, entry)
    return str(entry.entry_id)


@pytest.mark.freeze_time("2026-11-22T10:30:00+00:00")
async def test_report_of_this_month(hass: HomeAssistant, entry_id: str) -> None:
    """By default this month's tests, valid or not, the contract and the figures."""
    report = await _report(hass, config_entry_id=entry_id)

    assert report["provider"] == "Example ISP"
    # Local midnight on the first (the tests run in US/Pacific).
    assert report["start"] == "2026-11-01T00:00:00-07:00"
    assert report["end"] == "2026-11-22T02:30:00-08:00"
    assert report["contract"]["download"] == {
        "maximum_mbps": 100.0,
        "normally_available_mbps": 60.0,
        "minimum_mbps": 30.0,
    }
    assert report["contract"]["upload"]["maximum_mbps"] == 40.0
    assert [test["valid"] for test in report["tests"]] == [True, False, True]
    assert report["tests"][0] == {
        "started": "2026-11-02T10:00:00+00:00",
        "finished": "2026-11-02T10:00:06+00:00",
        "valid": True,
        "server": "Example Hosting 0, Town 0 (Netherlands)",
        "download_mbps": 95.0,
        "upload_mbps": 19.46,
        "ping_ms": 15.3,
    }
    assert report["tests"][1]["failure"] == "invalid_result"
    download = report["compliance"]["download"]
    assert download["tests"] == 2
    assert download["excluded"] == 1
    assert download["below_minimum"] == 1
    assert download["reached_maximum_percent"] == 50.0
    assert "not the regulator" in report["note"]


@pytest.mark.freeze_time("2026-11-22T10:30:00+00:00")
async def test_report_of_a_period(hass: HomeAssistant, entry_id: str) -> None:
    """A period given by the script picks its tests, in Home Assistant's zone."""
    report = await _report(
        hass,
        config_entry_id=entry_id,
        start="2026-10-01 00:00:00",
        end="2026-11-02 12:00:00",
    )
    assert [test["finished"] for test in report["tests"]] == [
        "2026-10-20T10:00:06+00:00",
        "2026-11-02T10:00:06+00:00",
    ]
    assert report["history_from"] == "2026-10-20T10:00:06+00:00"


async def test_a_reversed_period_is_refused(hass: HomeAssistant, entry_id: str) -> None:
    """A start after the end gets a translated error, not an empty report."""
    with pytest.raises(ServiceValidationError) as raised:
        await _report(
            hass,
            config_entry_id=entry_id,
            start="2026-11-10 00:00:00",
            end="2026-11-01 00:00:00",
        )
    assert raised.value.translation_key == "report_period_reversed"


async def test_an_unknown_entry_is_refused(hass: HomeAssistant, entry_id: str) -> None:
    """An entry id that is not ISP Watch's is named in the error."""
    with pytest.raises(ServiceValidationError):
        await _report(hass, config_entry_id="not-an-entry")
