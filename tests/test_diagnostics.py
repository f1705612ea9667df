"""Diagnostics: useful for a bug report, with nothing secret in them."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator
from syrupy.assertion import SnapshotAssertion
from syrupy.filters import props

from fakes.x_api import TEST_CREDENTIALS
from homeassistant.core import HomeAssistant
from tests.common import X_ACCOUNT_DATA, make_entry, setup_entry

SERVER = {
    "id": 4242,
    "name": "Town 0",
    "sponsor": "Example Hosting 0",
    "country": "Netherlands",
    "distance_km": 41.1,
}


def _measurement(minute: int, download: float) -> dict[str, Any]:
    return {
        "type": "measurement",
        "download_mbps": download,
        "upload_mbps": 19.5,
        "ping_ms": 15.2,
        "bytes_received": 10_000_000,
        "bytes_sent": 8_000_000,
        "server": SERVER,
        "isp": "Example Fibre",
        "started": f"2026-11-22T10:{minute:02d}:00+00:00",
        "finished": f"2026-11-22T10:{minute:02d}:06+00:00",
    }


@pytest.mark.freeze_time("2026-11-22T10:30:00+00:00")
async def test_diagnostics(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    hass_storage: dict[str, Any],
    snapshot: SnapshotAssertion,
) -> None:
    """Options, recent results, failures and the outbox; keys and addresses redacted."""
    entry = make_entry(
        with_x_account=True,
        data={"source_address": "192.0.2.10"},
        unique_id="192.0.2.10",
        polling=False,
    )
    history = [
        _measurement(0, 41.0),
        {
            "type": "failure",
            "kind": "service_unavailable",
            "reason": "speedtest.net answered HTTP 403",
            "started": "2026-11-22T10:10:00+00:00",
            "finished": "2026-11-22T10:10:01+00:00",
            "bytes_received": 0,
            "bytes_sent": 0,
        },
        _measurement(20, 12.5),
    ]
    hass_storage[f"isp_watch.{entry.entry_id}.history"] = {
        "version": 1,
        "minor_version": 1,
        "key": f"isp_watch.{entry.entry_id}.history",
        "data": {"history": history, "total_bytes": 36_000_000},
    }
    hass_storage[f"isp_watch.{entry.entry_id}.outbox"] = {
        "version": 1,
        "minor_version": 1,
        "key": f"isp_watch.{entry.entry_id}.outbox",
        "data": {
            "items": [],
            "sent": [
                {
                    "text": "@ExampleISPHelp Automated speed test: slow.",
                    "sent_at": "2026-11-22T09:00:00+00:00",
                    "tweet_id": "1860000000000000001",
                    "url": "https://x.com/i/web/status/1860000000000000001",
                    "dry_run": False,
                }
            ],
            "paused_reason": None,
            "last_error": None,
        },
    }
    await setup_entry(hass, entry)

    diagnostics = await get_diagnostics_for_config_entry(hass, hass_client, entry)

    assert diagnostics == snapshot(exclude=props("created_at", "modified_at"))
    text = json.dumps(diagnostics)
    for secret in (
        TEST_CREDENTIALS.api_key,
        TEST_CREDENTIALS.api_secret,
        TEST_CREDENTIALS.access_token,
        TEST_CREDENTIALS.access_token_secret,
        X_ACCOUNT_DATA["x_user_id"],
        "192.0.2.10",
        "203.0.113.9",
    ):
        assert secret not in text
    assert diagnostics["failures_by_kind"] == {"service_unavailable": 1}
    assert len(diagnostics["recent_results"]) == 3
