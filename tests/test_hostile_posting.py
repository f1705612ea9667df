"""Posting end to end while X, or something in its place, answers what it never should.

Through notify.send_message, the outbox and the X client to the fake X API: an odd
answer ends in a recorded attempt and a retry, never in a post stuck on its way.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from freezegun.api import FrozenDateTimeFactory
import pytest
from pytest_homeassistant_custom_component.common import async_fire_time_changed

from homeassistant.core import HomeAssistant
from tests.common import OUTBOX, TWEET, make_entry, setup_entry
from tests.fake_x_api import FakeXApi

MESSAGE = "Automated speed test: 8 Mbit/s down since 20:00."
POSTED = f"@ExampleISPHelp {MESSAGE}"


@pytest.fixture
async def entry(hass: HomeAssistant, fake_x_api: FakeXApi) -> Any:
    """An entry with an X account, pointed at the fake X API."""
    entry = make_entry(with_x_account=True, polling=False)
    await setup_entry(hass, entry)
    return entry


def _queued(hass: HomeAssistant) -> int:
    state = hass.states.get(OUTBOX)
    assert state is not None
    return int(state.state)


@pytest.mark.usefixtures("entry")
@pytest.mark.parametrize(
    ("status", "body"),
    [
        (503, b'{"errors": [null]}'),
        (500, b'["not", "an", "object"]'),
        (403, b'{"errors": 5}'),
        (429, b"null"),
        (200, b"<html><body>Sign in to the hotel Wi-Fi</body></html>"),
        (201, b'{"data": {}}'),
    ],
    ids=["errors-null", "list", "errors-number", "429-null", "html", "no-id"],
)
async def test_odd_answer_never_leaves_a_post_stuck(
    hass: HomeAssistant,
    fake_x_api: FakeXApi,
    freezer: FrozenDateTimeFactory,
    status: int,
    body: bytes,
) -> None:
    """The attempt is recorded; the post is retried later, or dropped if refused."""
    fake_x_api.fail_next("raw", status=status, body=body)
    await hass.services.async_call(
        "notify", "send_message", {"entity_id": TWEET, "message": MESSAGE}, True
    )
    await hass.async_block_till_done(wait_background_tasks=True)
    refused = status == 403

    assert fake_x_api.posts == []
    assert _queued(hass) == (0 if refused else 1)

    # The longest wait an odd answer earns: X's 15-minute rate-limit window.
    freezer.tick(timedelta(minutes=15, seconds=1))
    async_fire_time_changed(hass)
    await hass.async_block_till_done(wait_background_tasks=True)

    assert fake_x_api.posts == ([] if refused else [POSTED])
    assert _queued(hass) == 0
