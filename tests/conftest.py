"""Fixtures shared by the ISP Watch tests."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any, override
from unittest.mock import patch

import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.syrupy import HomeAssistantSnapshotExtension
from syrupy.assertion import SnapshotAssertion
from syrupy.location import PyTestLocation

from custom_components.isp_watch import PLATFORMS, speedtest_client, x_client
from fakes import quick_runner
from fakes.private_network import enter_private_network
from fakes.speedtest import FakeSpeedtest
from fakes.x_api import FakeXApi
from homeassistant.const import Platform
from homeassistant.core import HomeAssistant
from tests.common import SNAPSHOT_ENTRY_ID, make_entry, setup_entry, store_history


def pytest_configure(config: pytest.Config) -> None:
    """Keep the machine's other loopback traffic out of the busy-line judgement."""
    enter_private_network()


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


@pytest.fixture
def fake_speedtest(tmp_path: Path, socket_enabled: None) -> Iterator[FakeSpeedtest]:
    """A running fake speedtest.net (the test may then open sockets on loopback)."""
    fake = FakeSpeedtest(tmp_path)
    fake.start()
    yield fake
    fake.stop()


@pytest.fixture
def speedtest_route(
    fake_speedtest: FakeSpeedtest, monkeypatch: pytest.MonkeyPatch
) -> FakeSpeedtest:
    """Route every speed-test child process of this test to the fake."""
    route = fake_speedtest.environment()
    for name in ("http_proxy", "https_proxy", "no_proxy", "SSL_CERT_FILE"):
        monkeypatch.setenv(name, route[name])
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "all_proxy", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
    return fake_speedtest


@pytest.fixture
def quick_speedtest_route(
    speedtest_route: FakeSpeedtest, monkeypatch: pytest.MonkeyPatch
) -> FakeSpeedtest:
    """The route to the fake, for tests that run many tests: each takes a second.

    The runner measures each direction only briefly (see fakes/quick_runner.py), and
    the fake's servers answer latency probes at once.
    """
    monkeypatch.setattr(speedtest_client, "RUNNER", quick_runner.PATH)
    speedtest_route.latency_ms = 1.0
    return speedtest_route


@pytest.fixture
def fake_x_api(
    monkeypatch: pytest.MonkeyPatch, socket_enabled: None
) -> Iterator[FakeXApi]:
    """A running fake X API, accepting TEST_CREDENTIALS, that X clients are sent to."""
    fake = FakeXApi()
    fake.start()
    monkeypatch.setattr(x_client, "X_API_ORIGIN", fake.origin)
    yield fake
    fake.stop()
