"""Repair issues of a watched connection: raised while a cause lasts, removed after."""

from __future__ import annotations

from typing import Any

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.storage import STORAGE_DIR, Store
from homeassistant.util import dt as dt_util

from .const import DOMAIN, UNREADABLE_ISSUES
from .models import UnreadableRecord

UNREADABLE_STORAGE_VERSION = 1
# The repair names this many different problems; the side file holds all of them.
PROBLEMS_SHOWN = 3


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


@callback
def async_delete_entry_issues(hass: HomeAssistant, entry: ConfigEntry[Any]) -> None:
    """Remove every issue of this entry, for an entry that is removed."""
    suffix = f"_{entry.entry_id}"
    registry = ir.async_get(hass)
    for domain, issue_id in list(registry.issues):
        if domain == DOMAIN and issue_id.endswith(suffix):
            ir.async_delete_issue(hass, DOMAIN, issue_id)


def unreadable_store(
    hass: HomeAssistant, entry_id: str, name: str
) -> Store[dict[str, Any]]:
    """The side file that keeps the records of store `name` that could not be read."""
    return Store(
        hass, UNREADABLE_STORAGE_VERSION, f"{DOMAIN}.{entry_id}.{name}.unreadable"
    )


async def async_keep_unreadable(
    hass: HomeAssistant,
    entry: ConfigEntry[Any],
    name: str,
    unreadable: list[UnreadableRecord],
) -> None:
    """Keep records that could not be read, and tell the user while any are kept.

    The records leave the store they came from with its next save, so they are
    written to the side file first. The issue stays until the user deletes the side
    file; a record already kept is not kept twice.
    """
    store = unreadable_store(hass, entry.entry_id, name)
    stored: Any = await store.async_load()
    kept = stored.get("records") if isinstance(stored, dict) else None
    records: list[Any] = kept if isinstance(kept, list) else []
    if stored and not isinstance(kept, list):
        # A side file edited by hand is kept too, whatever its shape.
        records = [{"record": stored, "problem": "not a list of kept records"}]
    known = [item.get("record") for item in records if isinstance(item, dict)]
    new = [item for item in unreadable if item.record not in known]
    if new:
        found = dt_util.utcnow().isoformat()
        records = [
            *records,
            *(
                {"record": item.record, "problem": item.problem, "found": found}
                for item in new
            ),
        ]
        await store.async_save({"records": records})
    problems = dict.fromkeys(
        str(item.get("problem")) for item in records if isinstance(item, dict)
    )
    async_set_issue(
        hass,
        entry,
        UNREADABLE_ISSUES[name],
        active=bool(records),
        placeholders={
            "count": str(len(records)),
            "problems": "; ".join(list(problems)[:PROBLEMS_SHOWN]),
            "file": f"{STORAGE_DIR}/{store.key}",
        },
    )
