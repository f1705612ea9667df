"""Sensors: the measured speeds, what the tests cost, and the last test's details."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, override

from homeassistant.components.sensor import (
    SensorDeviceClass,
    SensorEntity,
    SensorEntityDescription,
    SensorStateClass,
)
from homeassistant.const import (
    PERCENTAGE,
    EntityCategory,
    UnitOfDataRate,
    UnitOfInformation,
    UnitOfTime,
)
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.util import dt as dt_util

from .compliance import CampaignPhase, ContractField, ContractSpeeds, MonthlyCompliance
from .coordinator import LineSnapshot
from .data import IspWatchConfigEntry
from .entity import IspWatchEntity
from .models import Direction, FailureKind, Measurement
from .tweet_sender import TweetSender

PARALLEL_UPDATES = 0

RESULT_SUCCESS = "success"
# A measurement taken while other traffic exceeded the share: shown, not judged.
RESULT_BUSY = "busy"


@dataclass(frozen=True, kw_only=True)
class IspWatchSensorDescription(SensorEntityDescription):
    """How a sensor reads its value from the latest snapshot."""

    value_fn: Callable[[LineSnapshot], float | int | str | datetime | None]
    # Speeds from an old test are not the current speed: after a failed test they are
    # unavailable, as in Home Assistant's own integrations, rather than stale.
    needs_fresh_measurement: bool = False
    attributes_fn: Callable[[LineSnapshot], dict[str, Any]] | None = None


def _measured[ValueT](
    read: Callable[[Measurement], ValueT],
) -> Callable[[LineSnapshot], ValueT | None]:
    return lambda snapshot: (
        read(snapshot.last_measurement) if snapshot.last_measurement else None
    )


def _last_result(snapshot: LineSnapshot) -> str | None:
    outcome = snapshot.last_outcome
    if outcome is None:
        return None
    if isinstance(outcome, Measurement):
        return RESULT_BUSY if outcome.busy else RESULT_SUCCESS
    return outcome.kind.value


def _other_traffic(snapshot: LineSnapshot) -> dict[str, Any]:
    """The other traffic during the last measurement, and what it made of it."""
    measurement = snapshot.last_measurement
    if measurement is None:
        return {}
    return {
        "traffic_verdict": measurement.verdict,
        "other_download_mbps": measurement.other_download_mbps,
        "other_download_bytes": measurement.other_download_bytes,
        "other_upload_mbps": measurement.other_upload_mbps,
        "other_upload_bytes": measurement.other_upload_bytes,
        "deferrals": measurement.deferrals,
    }


def _other_direction(direction: Direction) -> Callable[[LineSnapshot], dict[str, Any]]:
    def read(snapshot: LineSnapshot) -> dict[str, Any]:
        measurement = snapshot.last_measurement
        if measurement is None:
            return {}
        return {
            "busy": measurement.busy,
            "other_traffic_mbps": (
                measurement.other_download_mbps
                if direction is Direction.DOWNLOAD
                else measurement.other_upload_mbps
            ),
        }

    return read


def _last_test(snapshot: LineSnapshot) -> datetime | None:
    """When the last test finished; during an outage, when the outage was found.

    While the internet is down, the schedule only checks every few minutes whether it
    is back. Those checks are not speed tests: moving this time with each of them
    would add a row to the device's activity log every few minutes.
    """
    if snapshot.line.outage is not None:
        return snapshot.line.outage.start
    return snapshot.last_outcome.finished if snapshot.last_outcome else None


def _server(snapshot: LineSnapshot) -> str | None:
    if snapshot.last_measurement is None:
        return None
    server = snapshot.last_measurement.server
    return f"{server.sponsor}, {server.name} ({server.country})"


SENSORS: tuple[IspWatchSensorDescription, ...] = (
    IspWatchSensorDescription(
        key="download",
        translation_key="download",
        device_class=SensorDeviceClass.DATA_RATE,
        native_unit_of_measurement=UnitOfDataRate.MEGABITS_PER_SECOND,
        state_class=SensorStateClass.MEASUREMENT,
        suggested_display_precision=1,
        needs_fresh_measurement=True,
        value_fn=_measured(lambda measurement: measurement.download_mbps),
        attributes_fn=_other_direction(Direction.DOWNLOAD),
    ),
    IspWatchSensorDescription(
        key="upload",
        translation_key="upload",
        device_class=SensorDeviceClass.DATA_RATE,
        native_unit_of_measurement=UnitOfDataRate.MEGABITS_PER_SECOND,
        state_class=SensorStateClass.MEASUREMENT,
        suggested_display_precision=1,
        needs_fresh_measurement=True,
        value_fn=_measured(lambda measurement: measurement.upload_mbps),
        attributes_fn=_other_direction(Direction.UPLOAD),
    ),
    IspWatchSensorDescription(
        key="ping",
        translation_key="ping",
        device_class=SensorDeviceClass.DURATION,
        native_unit_of_measurement=UnitOfTime.MILLISECONDS,
        state_class=SensorStateClass.MEASUREMENT,
        suggested_display_precision=0,
        needs_fresh_measurement=True,
        value_fn=_measured(lambda measurement: measurement.ping_ms),
    ),
    IspWatchSensorDescription(
        key="jitter",
        translation_key="jitter",
        device_class=SensorDeviceClass.DURATION,
        native_unit_of_measurement=UnitOfTime.MILLISECONDS,
        state_class=SensorStateClass.MEASUREMENT,
        suggested_display_precision=1,
        needs_fresh_measurement=True,
        value_fn=_measured(lambda measurement: measurement.jitter_ms),
    ),
    IspWatchSensorDescription(
        key="download_latency",
        translation_key="download_latency",
        device_class=SensorDeviceClass.DURATION,
        native_unit_of_measurement=UnitOfTime.MILLISECONDS,
        state_class=SensorStateClass.MEASUREMENT,
        suggested_display_precision=0,
        needs_fresh_measurement=True,
        value_fn=_measured(lambda measurement: measurement.download_latency_ms),
    ),
    IspWatchSensorDescription(
        key="upload_latency",
        translation_key="upload_latency",
        device_class=SensorDeviceClass.DURATION,
        native_unit_of_measurement=UnitOfTime.MILLISECONDS,
        state_class=SensorStateClass.MEASUREMENT,
        suggested_display_precision=0,
        needs_fresh_measurement=True,
        value_fn=_measured(lambda measurement: measurement.upload_latency_ms),
    ),
    IspWatchSensorDescription(
        key="last_test_data",
        translation_key="last_test_data",
        device_class=SensorDeviceClass.DATA_SIZE,
        native_unit_of_measurement=UnitOfInformation.BYTES,
        suggested_unit_of_measurement=UnitOfInformation.MEGABYTES,
        suggested_display_precision=1,
        state_class=SensorStateClass.MEASUREMENT,
        value_fn=lambda snapshot: (
            snapshot.last_outcome.bytes_received + snapshot.last_outcome.bytes_sent
            if snapshot.last_outcome
            else None
        ),
    ),
    IspWatchSensorDescription(
        key="total_test_data",
        translation_key="total_test_data",
        device_class=SensorDeviceClass.DATA_SIZE,
        native_unit_of_measurement=UnitOfInformation.BYTES,
        suggested_unit_of_measurement=UnitOfInformation.GIGABYTES,
        suggested_display_precision=2,
        state_class=SensorStateClass.TOTAL_INCREASING,
        value_fn=lambda snapshot: snapshot.total_bytes,
    ),
    IspWatchSensorDescription(
        key="server",
        translation_key="server",
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=_server,
    ),
    IspWatchSensorDescription(
        key="last_test",
        translation_key="last_test",
        device_class=SensorDeviceClass.TIMESTAMP,
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=_last_test,
    ),
    IspWatchSensorDescription(
        key="last_test_result",
        translation_key="last_test_result",
        device_class=SensorDeviceClass.ENUM,
        options=[RESULT_SUCCESS, RESULT_BUSY, *(kind.value for kind in FailureKind)],
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=_last_result,
        attributes_fn=_other_traffic,
    ),
)
# With the router's byte counters: what monitoring costs the household's traffic.
TEST_SHARE_OF_WAN = IspWatchSensorDescription(
    key="test_share_of_wan",
    translation_key="test_share_of_wan",
    native_unit_of_measurement=PERCENTAGE,
    state_class=SensorStateClass.MEASUREMENT,
    suggested_display_precision=1,
    value_fn=lambda snapshot: (
        None
        if snapshot.wan_month is None
        or (share := snapshot.wan_month.test_share_percent) is None
        else round(share, 2)
    ),
    attributes_fn=lambda snapshot: (
        {}
        if snapshot.wan_month is None
        else {
            "since": snapshot.wan_month.since.isoformat(),
            "wan_bytes": snapshot.wan_month.wan_bytes,
            "test_bytes": snapshot.wan_month.test_bytes,
        }
    ),
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: IspWatchConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the sensors of a watched connection."""
    coordinator = entry.runtime_data.coordinator
    entities: list[SensorEntity] = [
        IspWatchSensor(coordinator, description) for description in SENSORS
    ]
    if coordinator.settings.traffic.wan_sensors:
        entities.append(IspWatchSensor(coordinator, TEST_SHARE_OF_WAN))
    entities.extend(
        ComplianceSensor(coordinator, description) for description in COMPLIANCE_SENSORS
    )
    entities.append(CampaignSensor(coordinator, CAMPAIGN))
    if (sender := entry.runtime_data.sender) is not None:
        entities.append(OutboxSensor(sender, OUTBOX))
    async_add_entities(entities)


class IspWatchSensor(IspWatchEntity, SensorEntity):
    """A value from the latest tests."""

    entity_description: IspWatchSensorDescription

    @property
    @override
    def available(self) -> bool:
        """Speeds are unavailable after a failed test; other values stay."""
        if self.entity_description.needs_fresh_measurement and (
            self.coordinator.data.last_test_failed
        ):
            return False
        return super().available

    @property
    @override
    def native_value(self) -> float | int | str | datetime | None:
        """The value from the latest snapshot."""
        return self.entity_description.value_fn(self.coordinator.data)

    @property
    @override
    def extra_state_attributes(self) -> dict[str, Any] | None:
        """Details behind the value, for the sensors that have them."""
        read = self.entity_description.attributes_fn
        return None if read is None else read(self.coordinator.data)


OUTBOX = SensorEntityDescription(
    key="outbox",
    translation_key="outbox",
    native_unit_of_measurement="posts",
    state_class=SensorStateClass.MEASUREMENT,
)


class OutboxSensor(IspWatchEntity[TweetSender], SensorEntity):
    """Posts waiting to go out, with the last post and the last error."""

    @property
    @override
    def native_value(self) -> int:
        """How many posts are queued."""
        return len(self.coordinator.data.items)

    @property
    @override
    def extra_state_attributes(self) -> dict[str, Any]:
        """The last post and why the queue is waiting, if it is."""
        outbox = self.coordinator.data
        last = outbox.last_sent
        return {
            "dry_run": self.coordinator.dry_run,
            "paused_reason": outbox.paused_reason,
            "last_error": outbox.last_error,
            "last_post_time": last.sent_at.isoformat() if last else None,
            "last_post_text": last.text if last else None,
            "last_post_url": last.url if last else None,
            "next_attempt": (
                when.isoformat()
                if (when := outbox.next_attempt_at(dt_util.utcnow()))
                else None
            ),
        }


@dataclass(frozen=True, kw_only=True)
class ComplianceSensorDescription(SensorEntityDescription):
    """A monthly compliance figure of one direction, and the speed it rests on."""

    direction: Direction
    contract_field: ContractField


def _percent(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


@dataclass(frozen=True, slots=True, kw_only=True)
class _Figure:
    """How a figure is read from the month, and the contract speed it judges by."""

    value_fn: Callable[[MonthlyCompliance], float | int | None]
    # Shares only: how many tests reached the speed.
    count_fn: Callable[[MonthlyCompliance], int | None] | None
    speed_fn: Callable[[ContractSpeeds], float | None]


_FIGURES: dict[ContractField, _Figure] = {
    ContractField.MAXIMUM: _Figure(
        value_fn=lambda month: _percent(month.reached_maximum_percent),
        count_fn=lambda month: month.reached_maximum,
        speed_fn=lambda speeds: speeds.maximum_mbps,
    ),
    ContractField.NORMALLY_AVAILABLE: _Figure(
        value_fn=lambda month: _percent(month.reached_normally_available_percent),
        count_fn=lambda month: month.reached_normally_available,
        speed_fn=lambda speeds: speeds.normally_available_mbps,
    ),
    ContractField.MINIMUM: _Figure(
        value_fn=lambda month: month.below_minimum,
        count_fn=None,
        speed_fn=lambda speeds: speeds.minimum_mbps,
    ),
}
_SHARE: dict[str, Any] = {
    "native_unit_of_measurement": PERCENTAGE,
    "state_class": SensorStateClass.MEASUREMENT,
    "suggested_display_precision": 0,
}
_COUNT: dict[str, Any] = {
    "native_unit_of_measurement": "tests",
    "state_class": SensorStateClass.MEASUREMENT,
}

COMPLIANCE_SENSORS: tuple[ComplianceSensorDescription, ...] = (
    ComplianceSensorDescription(
        key="download_reaching_maximum",
        translation_key="download_reaching_maximum",
        direction=Direction.DOWNLOAD,
        contract_field=ContractField.MAXIMUM,
        **_SHARE,
    ),
    ComplianceSensorDescription(
        key="download_reaching_normally_available",
        translation_key="download_reaching_normally_available",
        direction=Direction.DOWNLOAD,
        contract_field=ContractField.NORMALLY_AVAILABLE,
        **_SHARE,
    ),
    ComplianceSensorDescription(
        key="download_below_minimum",
        translation_key="download_below_minimum",
        direction=Direction.DOWNLOAD,
        contract_field=ContractField.MINIMUM,
        **_COUNT,
    ),
    ComplianceSensorDescription(
        key="upload_reaching_maximum",
        translation_key="upload_reaching_maximum",
        direction=Direction.UPLOAD,
        contract_field=ContractField.MAXIMUM,
        **_SHARE,
    ),
    ComplianceSensorDescription(
        key="upload_reaching_normally_available",
        translation_key="upload_reaching_normally_available",
        direction=Direction.UPLOAD,
        contract_field=ContractField.NORMALLY_AVAILABLE,
        **_SHARE,
    ),
    ComplianceSensorDescription(
        key="upload_below_minimum",
        translation_key="upload_below_minimum",
        direction=Direction.UPLOAD,
        contract_field=ContractField.MINIMUM,
        **_COUNT,
    ),
)


class ComplianceSensor(IspWatchEntity, SensorEntity):
    """How this calendar month's tests kept to one of the contract's speeds.

    Replayed from the stored history at every update, so it survives restarts; the
    coordinator updates it at local midnight on the first, so a new month starts even
    without a test.
    """

    entity_description: ComplianceSensorDescription

    @property
    def _contract_speed(self) -> float | None:
        description = self.entity_description
        speeds = self.coordinator.settings.contract.speeds(description.direction)
        return _FIGURES[description.contract_field].speed_fn(speeds)

    @property
    def _month(self) -> MonthlyCompliance:
        return self.coordinator.monthly_compliance(
            self.entity_description.direction, dt_util.utcnow()
        )

    @property
    @override
    def available(self) -> bool:
        """Unavailable while the contract does not state the speed it judges by."""
        return self._contract_speed is not None and super().available

    @property
    @override
    def native_value(self) -> float | int | None:
        """The month's figure; unknown before the month's first counted test."""
        return _FIGURES[self.entity_description.contract_field].value_fn(self._month)

    @property
    @override
    def extra_state_attributes(self) -> dict[str, Any]:
        """The counts behind the figure, the month, and its first and last test."""
        month = self._month
        attributes: dict[str, Any] = {
            "contract_speed": self._contract_speed,
            "month": f"{month.month_start:%Y-%m}",
            "tests": month.tests,
            "tests_not_counted": month.excluded,
            "first_test": _iso(month.first_test),
            "last_test": _iso(month.last_test),
        }
        count_fn = _FIGURES[self.entity_description.contract_field].count_fn
        if count_fn is not None:
            attributes["tests_reaching"] = count_fn(month)
        return attributes


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


CAMPAIGN = SensorEntityDescription(
    key="campaign",
    translation_key="campaign",
    device_class=SensorDeviceClass.ENUM,
    options=[phase.value for phase in CampaignPhase],
)
VERDICT_DEVIATION = "deviation"
VERDICT_NO_DEVIATION = "no_deviation"


class CampaignSensor(IspWatchEntity, SensorEntity):
    """Where the measurement campaign stands, its days, its next test, its verdict."""

    @property
    @override
    def native_value(self) -> str:
        """Idle, running, complete or cancelled."""
        return self.coordinator.campaign.phase.value

    @property
    @override
    def extra_state_attributes(self) -> dict[str, Any]:
        """Tests per measuring day, the days planned, the next test, the outcome.

        While running, a day that can no longer get its 10 tests is left out: it
        will be measured again on a later day.
        """
        coordinator = self.coordinator
        campaign = coordinator.campaign
        progress = coordinator.campaign_progress(dt_util.utcnow())
        done = dict(progress.tests_per_day)
        planned_days = {moment.date() for moment in progress.planned}
        verdict = coordinator.campaign_verdict()
        outcome = None
        if verdict is not None:
            outcome = VERDICT_DEVIATION if verdict.deviation else VERDICT_NO_DEVIATION
        return {
            "started": _iso(campaign.started),
            "ended": _iso(campaign.ended),
            "tests_done": sum(done.values()),
            "tests_per_day": {day.isoformat(): count for day, count in done.items()},
            "measuring_days": [
                day.isoformat() for day in sorted(done.keys() | planned_days)
            ],
            "next_test": _iso(progress.next_test),
            "verdict": outcome,
            "ended_because": campaign.problem.value if campaign.problem else None,
        }
