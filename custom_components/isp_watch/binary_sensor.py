"""Binary sensors: is the line slow, and is it up at all."""

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

from .coordinator import LineSnapshot
from .data import IspWatchConfigEntry
from .entity import IspWatchEntity
from .evaluation import LineState, Metric, Outage

PARALLEL_UPDATES = 0


@dataclass(frozen=True, kw_only=True)
class IspWatchBinarySensorDescription(BinarySensorEntityDescription):
    """How a binary sensor reads the judgement of the line."""

    is_on_fn: Callable[[LineSnapshot], bool | None]
    attributes_fn: Callable[[LineState], Mapping[str, Any]]


def _is_slow(snapshot: LineSnapshot) -> bool | None:
    """Slow once confirmed; unknown only while a test past a limit awaits the rest."""
    line = snapshot.line
    if line.slow:
        return True
    if line.undecided:
        return None
    return False


def _is_connected(snapshot: LineSnapshot) -> bool | None:
    if snapshot.last_outcome is None:
        return None
    return snapshot.line.outage is None


def _slow_attributes(line: LineState) -> Mapping[str, Any]:
    evidence = line.evidence
    known = {
        "slow_since": line.slow_since.isoformat() if line.slow_since else None,
        "tests_needed": line.tests_needed,
    }
    if evidence is None:
        return known
    thresholds = evidence.thresholds
    return known | {
        "violated": [metric.value for metric in evidence.violated],
        "median_download": round(evidence.medians[Metric.DOWNLOAD], 2),
        "median_upload": round(evidence.medians[Metric.UPLOAD], 2),
        "median_ping": round(evidence.medians[Metric.PING], 1),
        "min_download": thresholds.min_download_mbps,
        "min_upload": thresholds.min_upload_mbps,
        "max_ping": thresholds.max_ping_ms,
        "tests": evidence.tests,
        "measured_from": evidence.first_test.isoformat(),
        "measured_to": evidence.last_test.isoformat(),
    }


def _outage_attributes(outage: Outage | None, prefix: str) -> dict[str, Any]:
    if outage is None:
        return {}
    attributes: dict[str, Any] = {f"{prefix}_start": outage.start.isoformat()}
    if outage.end is not None and outage.duration is not None:
        attributes[f"{prefix}_end"] = outage.end.isoformat()
        attributes[f"{prefix}_duration"] = round(outage.duration.total_seconds())
    return attributes


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
        attributes_fn=lambda line: (
            _outage_attributes(line.outage, "outage")
            | _outage_attributes(line.last_outage, "last_outage")
        ),
    ),
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: IspWatchConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the binary sensors of a watched connection."""
    coordinator = entry.runtime_data.coordinator
    async_add_entities(
        IspWatchBinarySensor(coordinator, description) for description in BINARY_SENSORS
    )


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
        return self.entity_description.attributes_fn(self.coordinator.data.line)
