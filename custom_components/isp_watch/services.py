"""Actions of ISP Watch: a report of the contract and the tests, to hand to the ISP."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Any

import probatio

from homeassistant.const import ATTR_CONFIG_ENTRY_ID
from homeassistant.core import (
    HomeAssistant,
    ServiceCall,
    ServiceResponse,
    SupportsResponse,
    callback,
)
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers import config_validation as cv
from homeassistant.helpers.service import async_get_config_entry
from homeassistant.util import dt as dt_util

from .compliance import MonthlyCompliance
from .const import CONF_ISP_NAME, DOMAIN
from .data import IspWatchConfigEntry
from .models import Direction, Measurement, TestOutcome

SERVICE_GET_REPORT = "get_report"
ATTR_START = "start"
ATTR_END = "end"

GET_REPORT_SCHEMA = probatio.Schema(
    {
        probatio.Required(ATTR_CONFIG_ENTRY_ID): cv.string,
        probatio.Optional(ATTR_START): cv.datetime,
        probatio.Optional(ATTR_END): cv.datetime,
    }
)


@callback
def async_setup_services(hass: HomeAssistant) -> None:
    """Register the actions; once for all entries."""

    async def get_report(call: ServiceCall) -> ServiceResponse:
        entry: IspWatchConfigEntry = async_get_config_entry(
            hass, DOMAIN, call.data[ATTR_CONFIG_ENTRY_ID]
        )
        now = dt_util.utcnow()
        end = _aware(call.data.get(ATTR_END)) or now
        start = _aware(call.data.get(ATTR_START)) or dt_util.start_of_local_day(
            dt_util.as_local(end).replace(day=1)
        )
        if start > end:
            raise ServiceValidationError(
                translation_domain=DOMAIN, translation_key="report_period_reversed"
            )
        return report(entry, start, end, now)

    hass.services.async_register(
        DOMAIN,
        SERVICE_GET_REPORT,
        get_report,
        schema=GET_REPORT_SCHEMA,
        supports_response=SupportsResponse.ONLY,
    )


def report(
    entry: IspWatchConfigEntry, start: datetime, end: datetime, now: datetime
) -> dict[str, Any]:
    """The contract, every test of the period, and this month's compliance."""
    runtime = entry.runtime_data
    coordinator = runtime.coordinator
    contract = runtime.settings.contract
    tests = [
        _test(outcome)
        for outcome in coordinator.history
        if start <= outcome.finished <= end
    ]
    return {
        "provider": entry.data[CONF_ISP_NAME],
        "start": dt_util.as_local(start).isoformat(),
        "end": dt_util.as_local(end).isoformat(),
        # Older tests are no longer kept: a period before this has no tests.
        "history_from": (
            coordinator.history[0].finished.isoformat() if coordinator.history else None
        ),
        "contract": {
            direction.value: asdict(contract.speeds(direction))
            for direction in Direction
        },
        "tests": tests,
        "compliance": {
            direction.value: _compliance(coordinator.monthly_compliance(direction, now))
            for direction in Direction
        },
        "note": (
            "Measured by ISP Watch against speedtest.net servers: an indication, not "
            "the regulator's legally valid measurement."
        ),
    }


def _aware(moment: datetime | None) -> datetime | None:
    """A time from the action, in Home Assistant's zone when it names none."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt_util.get_default_time_zone())
    return dt_util.as_utc(moment)


def _test(outcome: TestOutcome) -> dict[str, Any]:
    if isinstance(outcome, Measurement):
        server = outcome.server
        return {
            "started": outcome.started.isoformat(),
            "finished": outcome.finished.isoformat(),
            "valid": True,
            "server": f"{server.sponsor}, {server.name} ({server.country})",
            "download_mbps": round(outcome.download_mbps, 2),
            "upload_mbps": round(outcome.upload_mbps, 2),
            "ping_ms": round(outcome.ping_ms, 1),
        }
    return {
        "started": outcome.started.isoformat(),
        "finished": outcome.finished.isoformat(),
        "valid": False,
        "failure": outcome.kind.value,
    }


def _compliance(month: MonthlyCompliance) -> dict[str, Any]:
    figures = asdict(month)
    return {
        key: value.isoformat() if isinstance(value, datetime) else value
        for key, value in figures.items()
    }
