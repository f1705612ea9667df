"""Diagnostics: what a bug report needs, with keys, tokens and addresses removed."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict
from typing import Any

from homeassistant.components.diagnostics import async_redact_data
from homeassistant.core import HomeAssistant

from .const import (
    CONF_ACCESS_TOKEN,
    CONF_ACCESS_TOKEN_SECRET,
    CONF_API_KEY,
    CONF_API_SECRET,
    CONF_SOURCE_ADDRESS,
    CONF_X_USER_ID,
)
from .data import IspWatchConfigEntry
from .models import TestFailure

TO_REDACT = {
    CONF_API_KEY,
    CONF_API_SECRET,
    CONF_ACCESS_TOKEN,
    CONF_ACCESS_TOKEN_SECRET,
    CONF_X_USER_ID,
    CONF_SOURCE_ADDRESS,
    "unique_id",
}
RECENT_RESULTS = 20


async def async_get_config_entry_diagnostics(
    hass: HomeAssistant, entry: IspWatchConfigEntry
) -> dict[str, Any]:
    """Return the redacted state of a watched connection."""
    coordinator = entry.runtime_data.coordinator
    sender = entry.runtime_data.sender
    history = coordinator.history
    failures = Counter(
        outcome.kind.value for outcome in history if isinstance(outcome, TestFailure)
    )
    return {
        "entry": async_redact_data(
            {
                "title": entry.title,
                "unique_id": entry.unique_id,
                "data": dict(entry.data),
                "options": dict(entry.options),
                "pref_disable_polling": entry.pref_disable_polling,
            },
            TO_REDACT,
        ),
        "schedule": {
            "update_interval_seconds": (
                coordinator.update_interval.total_seconds()
                if coordinator.update_interval
                else None
            ),
        },
        "line": asdict(coordinator.data.line),
        "tests_kept": len(history),
        "failures_by_kind": dict(failures),
        "total_test_bytes": coordinator.data.total_bytes,
        "recent_results": [outcome.as_dict() for outcome in history[-RECENT_RESULTS:]],
        "connectivity_watch": {
            "enabled": coordinator.settings.watch is not None,
            "state": coordinator.watch_state.as_dict(),
            "episodes": [episode.as_dict() for episode in coordinator.episodes],
        },
        "campaign": coordinator.campaign_summary(),
        "traffic": coordinator.traffic_diagnostics(),
        "outbox": (
            {"dry_run": sender.dry_run, **sender.outbox.as_dict()}
            if sender is not None
            else None
        ),
    }
