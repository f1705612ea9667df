"""Actions of ISP Watch: a report to hand to the ISP, and the measurement campaign."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine
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
from .coordinator import IspWatchCoordinator
from .data import IspWatchConfigEntry
from .models import Direction, Measurement, TestOutcome

SERVICE_GET_REPORT = "get_report"
SERVICE_START_CAMPAIGN = "start_campaign"
SERVICE_CANCEL_CAMPAIGN = "cancel_campaign"
ATTR_START = "start"
ATTR_END = "end"
ATTR_LAST_CAMPAIGN = "last_campaign"

GET_REPORT_SCHEMA = probatio.Schema(
    {
        probatio.Required(ATTR_CONFIG_ENTRY_ID): cv.string,
        probatio.Optional(ATTR_START): cv.datetime,
        probatio.Optional(ATTR_END): cv.datetime,
        probatio.Optional(ATTR_LAST_CAMPAIGN, default=False): cv.boolean,
    }
)
CAMPAIGN_SCHEMA = probatio.Schema({probatio.Required(ATTR_CONFIG_ENTRY_ID): cv.string})


@callback
def async_setup_services(hass: HomeAssistant) -> None:
    """Register the actions; once for all entries."""

    def entry_of(call: ServiceCall) -> IspWatchConfigEntry:
        entry: IspWatchConfigEntry = async_get_config_entry(
            hass, DOMAIN, call.data[ATTR_CONFIG_ENTRY_ID]
        )
        return entry

    async def get_report(call: ServiceCall) -> ServiceResponse:
        entry = entry_of(call)
        now = dt_util.utcnow()
        if call.data[ATTR_LAST_CAMPAIGN]:
            start, end = _campaign_period(call, entry.runtime_data.coordinator, now)
        else:
            end = _aware(call.data.get(ATTR_END)) or now
            start = _aware(call.data.get(ATTR_START)) or dt_util.start_of_local_day(
                dt_util.as_local(end).replace(day=1)
            )
        if start > end:
            raise ServiceValidationError(
                translation_domain=DOMAIN, translation_key="report_period_reversed"
            )
        return report(entry, start, end, now)

    def campaign_action(
        act: Callable[[IspWatchCoordinator], Awaitable[None]],
    ) -> Callable[[ServiceCall], Coroutine[Any, Any, None]]:
        async def handle(call: ServiceCall) -> None:
            await act(entry_of(call).runtime_data.coordinator)

        return handle

    hass.services.async_register(
        DOMAIN,
        SERVICE_GET_REPORT,
        get_report,
        schema=GET_REPORT_SCHEMA,
        supports_response=SupportsResponse.ONLY,
    )
    hass.services.async_register(
        DOMAIN,
        SERVICE_START_CAMPAIGN,
        campaign_action(IspWatchCoordinator.async_start_campaign),
        schema=CAMPAIGN_SCHEMA,
    )
    hass.services.async_register(
        DOMAIN,
        SERVICE_CANCEL_CAMPAIGN,
        campaign_action(IspWatchCoordinator.async_cancel_campaign),
        schema=CAMPAIGN_SCHEMA,
    )


def _campaign_period(
    call: ServiceCall, coordinator: IspWatchCoordinator, now: datetime
) -> tuple[datetime, datetime]:
    """From the last campaign's start to its end, or to now while it runs.

    Raises:
        ServiceValidationError: A period was given too, or there was no campaign yet.
    """
    if ATTR_START in call.data or ATTR_END in call.data:
        raise ServiceValidationError(
            translation_domain=DOMAIN, translation_key="report_campaign_and_period"
        )
    campaign = coordinator.campaign
    if campaign.started is None:
        raise ServiceValidationError(
            translation_domain=DOMAIN, translation_key="report_no_campaign"
        )
    return campaign.started, campaign.ended or now


def report(
    entry: IspWatchConfigEntry, start: datetime, end: datetime, now: datetime
) -> dict[str, Any]:
    """The contract, every test of the period, this month's compliance, the campaign."""
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
        "campaign": coordinator.campaign_summary(),
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
