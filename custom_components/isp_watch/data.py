"""What a loaded entry holds: its settings, read once, and the objects that run it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Self

from homeassistant.config_entries import ConfigEntry

from .compliance import Contract, ContractField, ContractSpeeds
from .connectivity import WatchSettings
from .const import (
    BUSY_DEFERRAL_DELAY,
    BYTES_PER_GB,
    CONF_BUSY_SHARE,
    CONF_CONFIRM_DELAY,
    CONF_CONTRACT_MAXIMUM_DOWNLOAD,
    CONF_CONTRACT_MAXIMUM_UPLOAD,
    CONF_CONTRACT_MINIMUM_DOWNLOAD,
    CONF_CONTRACT_MINIMUM_UPLOAD,
    CONF_CONTRACT_NORMAL_DOWNLOAD,
    CONF_CONTRACT_NORMAL_UPLOAD,
    CONF_DRY_RUN,
    CONF_EVALUATION_WINDOW,
    CONF_MAX_CONFIRM_TESTS,
    CONF_MAX_DEFERRALS,
    CONF_MAX_JITTER,
    CONF_MAX_LOADED_LATENCY,
    CONF_MAX_PING,
    CONF_MIN_DOWNLOAD,
    CONF_MIN_UPLOAD,
    CONF_MONTHLY_DATA_BUDGET,
    CONF_OUTAGE_PROBE_INTERVAL,
    CONF_SCAN_INTERVAL,
    CONF_SERVER_ID,
    CONF_SOURCE_ADDRESS,
    CONF_TWEET_COOLDOWN,
    CONF_TWEET_DAILY_CAP,
    CONF_WAN_DOWNLOAD_SENSOR,
    CONF_WAN_UPLOAD_SENSOR,
    CONF_WATCH_FAILURES,
    CONF_WATCH_INTERVAL,
    DEFAULT_SERVER_ID,
    EVIDENCE_MAX_AGE,
    OPTION_DEFAULTS,
    OUTBOX_MAX_AGE,
    OUTBOX_MAX_ITEMS,
    POST_RETRY_INITIAL,
    POST_RETRY_MAX,
    RESTORE_MARGIN,
    SPEEDTEST_DEADLINE,
    SPEEDTEST_REQUEST_TIMEOUT,
)
from .evaluation import EvaluationSettings, ScheduleSettings, Thresholds
from .models import Direction
from .outbox import OutboxPolicy
from .speedtest_client import SpeedTestSettings
from .traffic import DeferralPolicy

if TYPE_CHECKING:
    from .coordinator import IspWatchCoordinator
    from .tweet_sender import TweetSender

# Where each contract speed is stored.
CONTRACT_KEYS: Mapping[Direction, Mapping[ContractField, str]] = {
    Direction.DOWNLOAD: {
        ContractField.MAXIMUM: CONF_CONTRACT_MAXIMUM_DOWNLOAD,
        ContractField.NORMALLY_AVAILABLE: CONF_CONTRACT_NORMAL_DOWNLOAD,
        ContractField.MINIMUM: CONF_CONTRACT_MINIMUM_DOWNLOAD,
    },
    Direction.UPLOAD: {
        ContractField.MAXIMUM: CONF_CONTRACT_MAXIMUM_UPLOAD,
        ContractField.NORMALLY_AVAILABLE: CONF_CONTRACT_NORMAL_UPLOAD,
        ContractField.MINIMUM: CONF_CONTRACT_MINIMUM_UPLOAD,
    },
}


def contract_speeds(values: Mapping[str, Any], direction: Direction) -> ContractSpeeds:
    """One direction's contract speeds from entry data or a form; absent is None."""
    keys = CONTRACT_KEYS[direction]

    def read(field: ContractField) -> float | None:
        value = values.get(keys[field])
        return None if value is None else float(value)

    return ContractSpeeds(
        maximum_mbps=read(ContractField.MAXIMUM),
        normally_available_mbps=read(ContractField.NORMALLY_AVAILABLE),
        minimum_mbps=read(ContractField.MINIMUM),
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class TrafficSettings:
    """How the line's other traffic is watched and what it does to a test."""

    wan_sensors: Mapping[Direction, str]
    """The router's WAN sensor per direction; only the directions chosen."""
    share: float
    """0.10: busy when other traffic exceeded 10% of the measured rate."""
    deferral: DeferralPolicy


@dataclass(frozen=True, slots=True, kw_only=True)
class IspWatchSettings:
    """Everything the user set for one watched connection, typed for the pure modules.

    Read once when the entry loads: the options flow reloads the entry on every change.
    """

    thresholds: Thresholds
    evaluation: EvaluationSettings
    schedule: ScheduleSettings
    speed_test: SpeedTestSettings
    monthly_budget_bytes: int
    """0: no budget."""
    outbox: OutboxPolicy
    dry_run: bool
    contract: Contract
    watch: WatchSettings | None
    """None: the connectivity watch between tests is off."""
    traffic: TrafficSettings

    @classmethod
    def from_config(cls, data: Mapping[str, Any], options: Mapping[str, Any]) -> Self:
        """Read an entry's data and options.

        The config flow stores every option; an option it did not know yet when the
        entry was made takes its default.
        """
        options = {**OPTION_DEFAULTS, **options}
        window = int(options[CONF_EVALUATION_WINDOW])
        schedule = ScheduleSettings(
            interval=timedelta(minutes=float(options[CONF_SCAN_INTERVAL])),
            confirm_delay=timedelta(minutes=float(options[CONF_CONFIRM_DELAY])),
            max_confirm_tests=int(options[CONF_MAX_CONFIRM_TESTS]),
            outage_probe_interval=timedelta(
                minutes=float(options[CONF_OUTAGE_PROBE_INTERVAL])
            ),
        )
        server_id = str(options[CONF_SERVER_ID])
        watch_minutes = float(options[CONF_WATCH_INTERVAL])
        return cls(
            thresholds=Thresholds(
                min_download_mbps=float(options[CONF_MIN_DOWNLOAD]),
                min_upload_mbps=float(options[CONF_MIN_UPLOAD]),
                max_ping_ms=float(options[CONF_MAX_PING]),
                # 0: no limit.
                max_jitter_ms=float(options[CONF_MAX_JITTER]) or None,
                max_loaded_latency_ms=float(options[CONF_MAX_LOADED_LATENCY]) or None,
            ),
            evaluation=EvaluationSettings(
                window=window,
                # The evidence must be able to hold a whole window of scheduled tests.
                max_age=max(EVIDENCE_MAX_AGE, schedule.interval * (window + 1)),
                hysteresis=RESTORE_MARGIN,
            ),
            schedule=schedule,
            speed_test=SpeedTestSettings(
                server_ids=() if server_id == DEFAULT_SERVER_ID else (int(server_id),),
                request_timeout=SPEEDTEST_REQUEST_TIMEOUT,
                deadline=SPEEDTEST_DEADLINE.total_seconds(),
                source_address=data.get(CONF_SOURCE_ADDRESS),
            ),
            monthly_budget_bytes=int(
                float(options[CONF_MONTHLY_DATA_BUDGET]) * BYTES_PER_GB
            ),
            outbox=OutboxPolicy(
                max_items=OUTBOX_MAX_ITEMS,
                max_age=OUTBOX_MAX_AGE,
                cooldown=timedelta(hours=float(options[CONF_TWEET_COOLDOWN])),
                daily_cap=int(options[CONF_TWEET_DAILY_CAP]),
                backoff_initial=POST_RETRY_INITIAL,
                backoff_max=POST_RETRY_MAX,
            ),
            dry_run=bool(options[CONF_DRY_RUN]),
            contract=Contract(
                download=contract_speeds(data, Direction.DOWNLOAD),
                upload=contract_speeds(data, Direction.UPLOAD),
            ),
            watch=WatchSettings(
                interval=timedelta(minutes=watch_minutes),
                failures_to_down=int(options[CONF_WATCH_FAILURES]),
            )
            if watch_minutes > 0
            else None,
            traffic=TrafficSettings(
                wan_sensors={
                    direction: str(sensor)
                    for direction, key in (
                        (Direction.DOWNLOAD, CONF_WAN_DOWNLOAD_SENSOR),
                        (Direction.UPLOAD, CONF_WAN_UPLOAD_SENSOR),
                    )
                    if (sensor := options[key])
                },
                share=float(options[CONF_BUSY_SHARE]) / 100,
                deferral=DeferralPolicy(
                    max_deferrals=int(options[CONF_MAX_DEFERRALS]),
                    delay=BUSY_DEFERRAL_DELAY,
                ),
            ),
        )

    @classmethod
    def from_entry(cls, entry: ConfigEntry[Any]) -> Self:
        """Read a config entry."""
        return cls.from_config(entry.data, entry.options)


@dataclass(slots=True, kw_only=True)
class IspWatchRuntimeData:
    """What a loaded config entry holds."""

    settings: IspWatchSettings
    coordinator: IspWatchCoordinator
    sender: TweetSender | None


type IspWatchConfigEntry = ConfigEntry[IspWatchRuntimeData]
