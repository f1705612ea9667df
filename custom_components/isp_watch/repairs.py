"""Repair issues of a watched connection: raised while a cause lasts, removed after."""

from __future__ import annotations

from typing import Any

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import issue_registry as ir

from .const import DOMAIN


@callback
def async_set_issue(
    hass: HomeAssistant,
    entry: ConfigEntry[Any],
    translation_key: str,
    *,
    active: bool,
    severity: ir.IssueSeverity = ir.IssueSeverity.WARNING,
    placeholders: dict[str, str] | None = None,
) -> None:
    """Show the issue for this entry while `active`, and remove it otherwise."""
    issue_id = f"{translation_key}_{entry.entry_id}"
    if not active:
        ir.async_delete_issue(hass, DOMAIN, issue_id)
        return
    ir.async_create_issue(
        hass,
        DOMAIN,
        issue_id,
        is_fixable=False,
        severity=severity,
        translation_key=translation_key,
        translation_placeholders={"title": entry.title, **(placeholders or {})},
    )
