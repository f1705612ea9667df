"""The binary sensors: is the internet slow, and is it up."""

from __future__ import annotations

from typing import Any

import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    snapshot_platform,
)
from syrupy.assertion import SnapshotAssertion

from homeassistant.const import Platform
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
from tests.common import stored_measurement


@pytest.fixture
def platforms() -> list[Platform]:
    """Only the binary sensors."""
    return [Platform.BINARY_SENSOR]


@pytest.fixture
def history() -> list[dict[str, Any]]:
    """Three slow tests: the line is judged slow."""
    return [
        stored_measurement(f"2026-11-22T10:{minute:02d}:06+00:00", download_mbps=12.5)
        for minute in (0, 20, 40)
    ]


@pytest.mark.freeze_time("2026-11-22T10:50:00+00:00")
async def test_binary_sensors(
    hass: HomeAssistant,
    entity_registry: er.EntityRegistry,
    snapshot: SnapshotAssertion,
    init_integration: MockConfigEntry,
) -> None:
    """Names, unique ids, device classes, states and the evidence attributes."""
    await snapshot_platform(hass, entity_registry, snapshot, init_integration.entry_id)
