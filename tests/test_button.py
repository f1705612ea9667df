"""The button that runs a speed test, and what it says when the test fails."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    snapshot_platform,
)
from syrupy.assertion import SnapshotAssertion

from custom_components.isp_watch.speedtest_client import FailureKind
from homeassistant.const import Platform
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import entity_registry as er
from tests.common import LAST_RESULT, RUN_TEST, make_entry, setup_entry
from tests.fake_speedtest import FakeSpeedtest

EXCEPTIONS = json.loads(
    (
        Path(__file__).parent.parent
        / "custom_components"
        / "isp_watch"
        / "translations"
        / "en.json"
    ).read_text()
)["exceptions"]


@pytest.fixture
def platforms() -> list[Platform]:
    """Only the button."""
    return [Platform.BUTTON]


@pytest.mark.freeze_time("2026-11-22T10:30:00+00:00")
async def test_button(
    hass: HomeAssistant,
    entity_registry: er.EntityRegistry,
    snapshot: SnapshotAssertion,
    init_integration: MockConfigEntry,
) -> None:
    """Name, unique id and state of the run-test button."""
    await snapshot_platform(hass, entity_registry, snapshot, init_integration.entry_id)


async def _press(hass: HomeAssistant) -> None:
    await hass.services.async_call(
        "button", "press", {"entity_id": RUN_TEST}, blocking=True
    )


async def test_failed_test_says_what_happened_and_what_to_do(
    hass: HomeAssistant, speedtest_route: FakeSpeedtest
) -> None:
    """No internal codes or Python names; the kind stays the result's state."""
    speedtest_route.test_length = 1
    await setup_entry(hass, make_entry(polling=False))
    speedtest_route.stop()

    with pytest.raises(HomeAssistantError) as raised:
        await _press(hass)

    message = str(raised.value)
    # Home Assistant drops the final full stop.
    assert message == EXCEPTIONS["speed_test_connection"]["message"].rstrip(".")
    assert message.startswith("The speed test could not reach the internet")
    assert "Check your modem and router" in message
    for internal in ("(connection)", "refused", "Error", "_"):
        assert internal not in message
    assert hass.states.get(LAST_RESULT).state == "connection"


async def test_invalid_result_is_explained(
    hass: HomeAssistant, speedtest_route: FakeSpeedtest
) -> None:
    """A test whose upload was refused is not a speed; the user is told so."""
    speedtest_route.test_length = 1
    await setup_entry(hass, make_entry(polling=False))
    speedtest_route.faults.upload_status = 500

    with pytest.raises(HomeAssistantError) as raised:
        await _press(hass)

    assert str(raised.value) == (
        EXCEPTIONS["speed_test_invalid_result"]["message"].rstrip(".")
    )
    assert hass.states.get(LAST_RESULT).state == "invalid_result"


def test_every_kind_of_failure_has_a_message() -> None:
    """Each kind the Last test result can show has its own plain message."""
    for kind in FailureKind:
        message = EXCEPTIONS[f"speed_test_{kind.value}"]["message"]
        assert "{" not in message
        assert f"({kind.value})" not in message
