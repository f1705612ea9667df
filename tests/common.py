"""Helpers shared by the Home Assistant tests of ISP Watch."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, time, timedelta
import os
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.isp_watch.compliance import DAY_PLAN, Campaign, Sample
from custom_components.isp_watch.const import (
    CONF_CONTRACT_MAXIMUM_DOWNLOAD,
    CONF_CONTRACT_MAXIMUM_UPLOAD,
    CONF_ISP_HANDLE,
    CONF_ISP_NAME,
    CONF_MIN_DOWNLOAD,
    CONFIG_ENTRY_VERSION,
    DOMAIN,
    OPTION_DEFAULTS,
)
from custom_components.isp_watch.tweet_sender import credentials_from_entry
from fakes.x_api import ACCOUNT_ID, ACCOUNT_USERNAME, TEST_CREDENTIALS
from homeassistant.core import HomeAssistant
from homeassistant.util import dt as dt_util

ENTRY_DATA: dict[str, Any] = {
    CONF_ISP_NAME: "Example ISP",
    CONF_ISP_HANDLE: "ExampleISPHelp",
    CONF_CONTRACT_MAXIMUM_DOWNLOAD: 100.0,
    CONF_CONTRACT_MAXIMUM_UPLOAD: 40.0,
}
# Every option, as the config flow stores them: the defaults, with a minimum that fits
# the 100 Mbit/s plan above.
ENTRY_OPTIONS: dict[str, Any] = {**OPTION_DEFAULTS, CONF_MIN_DOWNLOAD: 30.0}
X_ACCOUNT_DATA: dict[str, Any] = {
    "api_key": TEST_CREDENTIALS.api_key,
    "api_secret": TEST_CREDENTIALS.api_secret,
    "access_token": TEST_CREDENTIALS.access_token,
    "access_token_secret": TEST_CREDENTIALS.access_token_secret,
    "x_username": ACCOUNT_USERNAME,
    "x_user_id": ACCOUNT_ID,
}
# Entity ids Home Assistant derives from the device ("Example ISP") and entity names.
DOWNLOAD = "sensor.example_isp_download"
UPLOAD = "sensor.example_isp_upload"
PING = "sensor.example_isp_ping"
LAST_TEST_DATA = "sensor.example_isp_data_used_by_last_test"
TOTAL_TEST_DATA = "sensor.example_isp_data_used_by_tests"
SERVER = "sensor.example_isp_test_server"
LAST_TEST = "sensor.example_isp_last_test"
LAST_RESULT = "sensor.example_isp_last_test_result"
SLOW = "binary_sensor.example_isp_slow_internet"
INTERNET = "binary_sensor.example_isp_internet"
RUN_TEST = "button.example_isp_run_speed_test"
TWEET = "notify.example_isp_post_to_isp_on_x"
OUTBOX = "sensor.example_isp_queued_posts"


def make_entry(
    *,
    data: dict[str, Any] | None = None,
    options: dict[str, Any] | None = None,
    with_x_account: bool = False,
    unique_id: str = "default",
    polling: bool = True,
    entry_id: str | None = None,
) -> MockConfigEntry:
    """A config entry as the config flow creates it.

    Tests that do not measure switch polling off, so no speed test leaves the machine.
    """
    entry_data = {**ENTRY_DATA, **(data or {})}
    if with_x_account:
        entry_data |= X_ACCOUNT_DATA
    entry = MockConfigEntry(
        domain=DOMAIN,
        title=entry_data[CONF_ISP_NAME],
        data=entry_data,
        options={**ENTRY_OPTIONS, **(options or {})},
        unique_id=unique_id,
        version=CONFIG_ENTRY_VERSION,
        pref_disable_polling=not polling,
        entry_id=entry_id,
    )
    assert (credentials_from_entry(entry) is not None) is with_x_account
    return entry


async def setup_entry(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    """Add and set up an entry."""
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()


# Snapshots name entities by unique id, which starts with the entry id.
# What a loaded machine may add to a delay the fake speedtest.net was told to show: the
# fake answers no sooner than told, and a machine running the suite beside a browser
# and a type checker on two cores has added up to 32 ms to a median of probes.
LOADED_MACHINE_MS = 35.0

SNAPSHOT_ENTRY_ID = "01KISPWATCHSNAPSHOT0000000"
TEST_SERVER: dict[str, Any] = {
    "id": 4242,
    "name": "Town 0",
    "sponsor": "Example Hosting 0",
    "country": "Netherlands",
    "distance_km": 41.1,
    # No host: stored tests give the connection check nothing to probe.
    "host": "",
}


def stored_measurement(finished: str, *, download_mbps: float) -> dict[str, Any]:
    """A measurement as the history store keeps it; it took six seconds."""
    end = dt_util.parse_datetime(finished)
    assert end is not None
    return {
        "type": "measurement",
        "download_mbps": download_mbps,
        "upload_mbps": 19.456,
        "ping_ms": 15.27,
        "jitter_ms": 1.234,
        "download_latency_ms": 35.5,
        "upload_latency_ms": 61.25,
        "bytes_received": 10_000_000,
        "bytes_sent": 8_000_000,
        "server": TEST_SERVER,
        "nearby_hosts": [],
        "isp": "Example Fibre",
        "started": (end - timedelta(seconds=6)).isoformat(),
        "finished": end.isoformat(),
    }


def store_history(
    hass_storage: dict[str, Any], entry_id: str, history: list[dict[str, Any]]
) -> None:
    """Put a test history where the entry finds it when it is set up."""
    key = f"{DOMAIN}.{entry_id}.history"
    hass_storage[key] = {
        "version": 1,
        "minor_version": 1,
        "key": key,
        "data": {
            "history": history,
            "total_bytes": sum(
                item["bytes_received"] + item["bytes_sent"] for item in history
            ),
        },
    }


# Measuring days of a campaign are calendar days where the ruling applies.
BERLIN = ZoneInfo("Europe/Berlin")


def berlin(day: date, wall_clock: time) -> datetime:
    """A Berlin wall-clock time."""
    return datetime.combine(day, wall_clock, tzinfo=BERLIN)


def campaign_days(
    *days: tuple[date, int], download: float = 40.0, upload: float = 39.0
) -> tuple[Sample, ...]:
    """The first tests of each measuring day, at their planned times."""
    return tuple(
        Sample(
            started=berlin(day, wall_clock),
            finished=berlin(day, wall_clock) + timedelta(seconds=20),
            download_mbps=download,
            upload_mbps=upload,
        )
        for day, count in days
        for wall_clock in DAY_PLAN[:count]
    )


def store_campaign(
    hass_storage: dict[str, Any],
    entry: MockConfigEntry,
    campaign: Campaign,
    history: list[dict[str, Any]] | None = None,
) -> None:
    """Put a campaign, and a history, where the entry finds them when it starts."""
    store_history(hass_storage, entry.entry_id, history or [])
    hass_storage[f"{DOMAIN}.{entry.entry_id}.history"]["data"]["campaign"] = (
        campaign.as_dict()
    )


def child_processes() -> Iterator[tuple[int, str, str, bytes]]:
    """Child processes of this process: pid, state, name, command line."""
    me = str(os.getpid())
    for status in Path("/proc").glob("[0-9]*/stat"):
        try:
            name, fields = status.read_text().split("(", 1)[1].rsplit(")", 1)
            cmdline = (status.parent / "cmdline").read_bytes()
        except OSError:
            continue  # ended meanwhile
        state, parent = fields.split()[:2]
        if parent == me:
            yield int(status.parent.name), state, name, cmdline


def runner_children() -> Iterator[int]:
    """Speed-test runners this process started that still exist, even as zombies."""
    for pid, state, name, cmdline in child_processes():
        # A zombie (ended, not yet reaped) has no command line left, only its name.
        if b"speedtest_runner.py" in cmdline or (state == "Z" and "python" in name):
            yield pid
