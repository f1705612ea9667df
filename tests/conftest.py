"""Fixtures shared by the ISP Watch tests."""

from __future__ import annotations

import pytest

from tests.fake_speedtest import fake_speedtest, speedtest_route
from tests.fake_x_api import fake_x_api

__all__ = ["fake_speedtest", "fake_x_api", "speedtest_route"]


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(
    enable_custom_integrations: None,
) -> None:
    """Let Home Assistant load the integration from custom_components."""
