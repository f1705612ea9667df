"""Fixtures shared by the ISP Watch tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, override
from unittest.mock import patch

import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.syrupy import HomeAssistantSnapshotExtension
from syrupy.assertion import SnapshotAssertion
from syrupy.location import PyTestLocation

from custom_components.isp_watch import PLATFORMS
from homeassistant.const import Platform
from homeassistant.core import HomeAssistant
from tests.common import SNAPSHOT_ENTRY_ID, make_entry, setup_entry, store_history
from tests.fake_speedtest import fake_speedtest, speedtest_route
from tests.fake_x_api import fake_x_api

__all__ = ["fake_speedtest", "fake_x_api", "speedtest_route"]


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(
    enable_custom_integrations: None,
) -> None:
    """Let Home Assistant load the integration from custom_components."""


class _SnapshotExtension(HomeAssistantSnapshotExtension):
    """Home Assistant's serializer, in syrupy's usual __snapshots__ folders."""

    @classmethod
    @override
    def dirname(cls, *, test_location: PyTestLocation) -> str:
        return str(Path(test_location.filepath).parent / "__snapshots__")


@pytest.fixture
def snapshot(snapshot: SnapshotAssertion) -> SnapshotAssertion:
    """Snapshots as Home Assistant writes them: registry ids that vary left out."""
    return snapshot.use_extension(_SnapshotExtension)


@pytest.fixture
def platforms() -> list[Platform]:
    """The platforms set up; a platform's own tests narrow it to that one."""
    return PLATFORMS


@pytest.fixture
def history() -> list[dict[str, Any]]:
    """The stored test history the entry starts with; none unless a test says."""
    return []


@pytest.fixture
def mock_config_entry() -> MockConfigEntry:
    """An entry with an X account that tests only when asked."""
    return make_entry(with_x_account=True, polling=False, entry_id=SNAPSHOT_ENTRY_ID)


@pytest.fixture
async def init_integration(
    hass: HomeAssistant,
    hass_storage: dict[str, Any],
    mock_config_entry: MockConfigEntry,
    platforms: list[Platform],
    history: list[dict[str, Any]],
) -> AsyncIterator[MockConfigEntry]:
    """The entry set up with its stored history and the chosen platforms."""
    if history:
        store_history(hass_storage, mock_config_entry.entry_id, history)
    # Until the end of the test, so that unloading unloads the same platforms.
    with patch("custom_components.isp_watch.PLATFORMS", platforms):
        await setup_entry(hass, mock_config_entry)
        yield mock_config_entry
