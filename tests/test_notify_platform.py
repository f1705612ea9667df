"""The notify entity that posts to the provider on X."""

from __future__ import annotations

import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    snapshot_platform,
)
from syrupy.assertion import SnapshotAssertion

from homeassistant.const import Platform
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er


@pytest.fixture
def platforms() -> list[Platform]:
    """Only the notify entity."""
    return [Platform.NOTIFY]


@pytest.mark.freeze_time("2026-11-22T10:30:00+00:00")
async def test_notify_entity(
    hass: HomeAssistant,
    entity_registry: er.EntityRegistry,
    snapshot: SnapshotAssertion,
    init_integration: MockConfigEntry,
) -> None:
    """Name, unique id and state of the post entity of an entry with an X account."""
    await snapshot_platform(hass, entity_registry, snapshot, init_integration.entry_id)
