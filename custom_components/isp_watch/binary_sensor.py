"""Binary sensors: is the line slow, is it up at all, does it keep to the contract."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, override

from homeassistant.components.binary_sensor import (
    BinarySensorEntity,
    BinarySensorEntityDescription,
)
from homeassistant.components.binary_sensor.const import BinarySensorDeviceClass
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .compliance import CampaignVerdict, CriterionVerdict
from .connectivity import Episode
from .coordinator import LineSnapshot
from .data import IspWatchConfigEntry
from .entity import IspWatchEntity
from .evaluation import Metric, Outage
from .models import Direction

PARALLEL_UPDATES = 0


@dataclass(frozen=True, kw_only=True)
class IspWatchBinarySensorDescription(BinarySensorEntityDescription):
    """How a binary sensor reads the judgement of the line."""

    is_on_fn: Callable[[LineSnapshot], bool | None]
    attributes_fn: Callable[[LineSnapshot], Mapping[str, Any]]


def _is_slow(snapshot: LineSnapshot) -> bool | None:
    """Slow once confirmed; unknown only while a test past a limit awaits the rest."""
    line = snapshot.line
    if line.slow:
        return True
    if line.undecided:
        return None
    return False


def _is_connected(snapshot: LineSnapshot) -> bool | None:
    """The watch between tests once it has a verdict; the tests' judgement before."""
    if snapshot.watch is not None and snapshot.watch.connected is not None:
        return snapshot.watch.connected
    if snapshot.last_outcome is None:
        return None
    return snapshot.line.outage is None


def _slow_attributes(snapshot: LineSnapshot) -> Mapping[str, Any]:
    line = snapshot.line
    evidence = line.evidence
    known = {
        "slow_since": line.slow_since.isoformat() if line.slow_since else None,
        "tests_needed": line.tests_needed,
    }
    if evidence is None:
        return known
    thresholds = evidence.thresholds
    medians = evidence.medians
    return known | {
        "violated": [metric.value for metric in evidence.violated],
        "median_download": round(medians[Metric.DOWNLOAD], 2),
        "median_upload": round(medians[Metric.UPLOAD], 2),
        "median_ping": round(medians[Metric.PING], 1),
        # None: not measured by the tests of the window, or no limit set.
        "median_jitter": _rounded(medians.get(Metric.JITTER)),
        "median_loaded_latency": _rounded(medians.get(Metric.LOADED_LATENCY)),
        "min_download": thresholds.min_download_mbps,
        "min_upload": thresholds.min_upload_mbps,
        "max_ping": thresholds.max_ping_ms,
        "max_jitter": thresholds.max_jitter_ms,
        "max_loaded_latency": thresholds.max_loaded_latency_ms,
        "tests": evidence.tests,
        "measured_from": evidence.first_test.isoformat(),
        "measured_to": evidence.last_test.isoformat(),
    }


def _rounded(delay_ms: float | None) -> float | None:
    return None if delay_ms is None else round(delay_ms, 1)


def _outage_attributes(outage: Outage | None, prefix: str) -> dict[str, Any]:
    if outage is None:
        return {}
    attributes: dict[str, Any] = {f"{prefix}_start": outage.start.isoformat()}
    if outage.end is not None and outage.duration is not None:
        attributes[f"{prefix}_end"] = outage.end.isoformat()
        attributes[f"{prefix}_duration"] = round(outage.duration.total_seconds())
    return attributes


def _episode_attributes(episode: Episode | None, prefix: str) -> dict[str, Any]:
    """An outage's edges as the watch saw them, each with how much earlier it may be."""
    if episode is None:
        return {}
    attributes: dict[str, Any] = {
        f"{prefix}_start": episode.start.isoformat(),
        f"{prefix}_start_uncertainty": round(episode.start_uncertainty.total_seconds()),
    }
    if (
        episode.end is not None
        and episode.end_uncertainty is not None
        and episode.duration is not None
    ):
        attributes |= {
            f"{prefix}_end": episode.end.isoformat(),
            f"{prefix}_end_uncertainty": round(episode.end_uncertainty.total_seconds()),
            f"{prefix}_duration": round(episode.duration.total_seconds()),
        }
    return attributes


def _internet_attributes(snapshot: LineSnapshot) -> Mapping[str, Any]:
    """The watch's status and outage edges, or the tests' outages while it is off."""
    watch = snapshot.watch
    if watch is None or watch.connected is None:
        line = snapshot.line
        return _outage_attributes(line.outage, "outage") | _outage_attributes(
            line.last_outage, "last_outage"
        )
    return (
        {"status": watch.status.value, "server_problem": watch.server_problem}
        | _episode_attributes(watch.outage, "outage")
        | _episode_attributes(snapshot.last_outage, "last_outage")
    )


BINARY_SENSORS: tuple[IspWatchBinarySensorDescription, ...] = (
    IspWatchBinarySensorDescription(
        key="slow_internet",
        translation_key="slow_internet",
        device_class=BinarySensorDeviceClass.PROBLEM,
        is_on_fn=_is_slow,
        attributes_fn=_slow_attributes,
    ),
    IspWatchBinarySensorDescription(
        key="internet",
        translation_key="internet",
        device_class=BinarySensorDeviceClass.CONNECTIVITY,
        is_on_fn=_is_connected,
        attributes_fn=_internet_attributes,
    ),
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: IspWatchConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the binary sensors of a watched connection."""
    coordinator = entry.runtime_data.coordinator
    entities: list[BinarySensorEntity] = [
        IspWatchBinarySensor(coordinator, description) for description in BINARY_SENSORS
    ]
    entities.append(ContractDeviationSensor(coordinator, CONTRACT_DEVIATION))
    async_add_entities(entities)


class IspWatchBinarySensor(IspWatchEntity, BinarySensorEntity):
    """A judgement of the line, derived from the persisted test history."""

    entity_description: IspWatchBinarySensorDescription

    @property
    @override
    def is_on(self) -> bool | None:
        """The judgement, or unknown before there is enough to judge."""
        return self.entity_description.is_on_fn(self.coordinator.data)

    @property
    @override
    def extra_state_attributes(self) -> Mapping[str, Any]:
        """The evidence behind the judgement, for messages and automations."""
        return self.entity_description.attributes_fn(self.coordinator.data)


CONTRACT_DEVIATION = BinarySensorEntityDescription(
    key="contract_deviation",
    translation_key="contract_deviation",
    device_class=BinarySensorDeviceClass.PROBLEM,
)


def _criterion_attributes(verdict: CriterionVerdict) -> dict[str, Any]:
    """One criterion's finding and the numbers a message can cite."""
    return {
        "deviation": verdict.deviation,
        "contract_speed": verdict.contract_mbps,
        "limit": round(verdict.limit_mbps, 2),
        "tests": verdict.tests,
        "tests_below": verdict.tests_below,
        "tests_reaching": verdict.tests - verdict.tests_below,
        "days": verdict.days,
        "days_failed": verdict.days_failed,
    }


def _verdict_attributes(verdict: CampaignVerdict) -> dict[str, Any]:
    attributes: dict[str, Any] = {
        "first_test": verdict.first_test.isoformat(),
        "last_test": verdict.last_test.isoformat(),
        "tests": max((item.tests for item in verdict.criteria), default=0),
        "days": max((item.days for item in verdict.criteria), default=0),
    }
    for direction in Direction:
        attributes[f"{direction.value}_deviation"] = verdict.deviates(direction)
        attributes[direction.value] = {
            item.criterion.value: _criterion_attributes(item)
            for item in verdict.criteria
            if item.direction is direction
        }
    return attributes


class ContractDeviationSensor(IspWatchEntity, BinarySensorEntity):
    """Whether the last complete campaign found the line below its contract.

    Unknown until a campaign completes. Starting the next campaign makes it unknown
    again: a verdict belongs to one campaign.
    """

    @property
    @override
    def is_on(self) -> bool | None:
        """On when any criterion finds a deviation in either direction."""
        verdict = self.coordinator.campaign_verdict()
        return None if verdict is None else verdict.deviation

    @property
    @override
    def extra_state_attributes(self) -> Mapping[str, Any]:
        """Per direction and criterion: the finding and the numbers behind it."""
        verdict = self.coordinator.campaign_verdict()
        return {} if verdict is None else _verdict_attributes(verdict)
