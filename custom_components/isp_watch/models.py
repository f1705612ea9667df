"""The data types every part of ISP Watch shares, and the one way they are stored.

This is the ground floor: plain dataclasses and enums, no I/O, no Home Assistant. The
speed-test client produces these types, the evaluation judges them, the outbox keeps
X's answers in them, and the stores persist them.

Persisted dataclasses inherit Stored: their JSON form follows from their fields and type
hints (datetimes as ISO 8601 with their offset, dates as ISO 8601, durations as seconds,
enums by value, nested dataclasses as objects, tuples and lists as arrays), so a new
field needs no hand-written conversion in two directions. A field marked TRANSIENT is
neither written nor read: it takes its default when read back.

Reading is strict about what a value is: a number must be a finite number (JSON writers
turn NaN into null), a moment must name its time zone, a text must be text. Stored
files and the runner's answers come from outside, and one bad value must be refused
where it enters, not deep inside the evaluation.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
import dataclasses
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import Enum, StrEnum
import functools
import math
import types
from typing import (
    Any,
    ClassVar,
    Final,
    Self,
    TypeAliasType,
    Union,
    cast,
    get_args,
    get_origin,
    get_type_hints,
)

TRANSIENT: Final[Mapping[str, Any]] = types.MappingProxyType({"stored": False})
"""Field metadata: state that must not outlive a restart (the field needs a default)."""


class Stored:
    """A dataclass kept in a JSON store; its stored form follows from its fields.

    Reading is lenient where old files need it: a field missing from the stored data
    takes its default, and an optional field without a default reads as None. Keys
    that are not fields are ignored.
    """

    __slots__ = ()

    stored_type: ClassVar[str | None] = None
    """Written as "type" so that a union of stored classes can be read back."""

    def as_dict(self) -> dict[str, Any]:
        """The JSON-safe form."""
        return cast("dict[str, Any]", to_json(self))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        """Read the JSON-safe form.

        Raises:
            KeyError, TypeError, ValueError: The data does not describe this class.
        """
        return cast("Self", from_json(cls, data))


def to_json(value: object) -> Any:
    """The JSON-safe form of a stored dataclass or of one of its field values."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        tag = getattr(value, "stored_type", None)
        stored: dict[str, Any] = {"type": tag} if tag else {}
        for field in _stored_fields(type(value)):
            stored[field.name] = to_json(getattr(value, field.name))
        return stored
    if isinstance(value, date):  # a datetime too
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, list | tuple):
        return [to_json(item) for item in value]
    return value


def from_json(hint: Any, value: Any) -> Any:
    """Read `value` as the type `hint` names: a stored dataclass, a field type, a union.

    Raises:
        KeyError, TypeError, ValueError: The value does not fit the type.
    """
    if isinstance(hint, TypeAliasType):
        hint = hint.__value__
    origin = get_origin(hint)
    if origin is Union or origin is types.UnionType:
        return _from_union(get_args(hint), value)
    if origin is tuple or origin is list:
        if not isinstance(value, list | tuple):
            raise TypeError(f"expected a list, got {type(value).__name__}")
        item_hint = get_args(hint)[0]
        items = [from_json(item_hint, item) for item in value]
        return tuple(items) if origin is tuple else items
    if hint is Any:
        return value
    if isinstance(hint, type):
        if dataclasses.is_dataclass(hint):
            return _from_fields(hint, value)
        if issubclass(hint, datetime):
            return _moment(value)
        if issubclass(hint, date):
            if not isinstance(value, str):
                raise TypeError(f"expected a date, got {type(value).__name__}")
            return date.fromisoformat(value)
        if issubclass(hint, timedelta):
            return timedelta(seconds=_primitive(float, value))
        if issubclass(hint, Enum):
            return hint(value)
        if hint in (int, float, str, bool):
            return _primitive(hint, value)
    raise TypeError(f"no stored form for {hint!r}")


def _moment(value: Any) -> datetime:
    if not isinstance(value, str):
        raise TypeError(f"expected a time, got {type(value).__name__}")
    moment = datetime.fromisoformat(value)
    # A moment without a zone cannot be compared with the UTC times of everything else.
    if moment.utcoffset() is None:
        raise ValueError(f"time without a time zone: {value!r}")
    return moment


def _primitive(hint: type, value: Any) -> Any:
    # bool is an int in Python, but true is no count of bytes.
    if hint is bool or isinstance(value, bool):
        if hint is bool and isinstance(value, bool):
            return value
    elif hint is float and isinstance(value, int | float):
        if not math.isfinite(value):
            raise ValueError(f"not a finite number: {value!r}")
        return float(value)
    elif isinstance(value, hint):
        return value
    raise TypeError(f"expected {hint.__name__}, got {type(value).__name__}")


def _from_union(arms: tuple[Any, ...], value: Any) -> Any:
    if value is None and type(None) in arms:
        return None
    # An optional number that is not finite is unknown: a NaN from outside is dropped.
    if (
        isinstance(value, float)
        and not math.isfinite(value)
        and type(None) in arms
        and float in arms
    ):
        return None
    present = [arm for arm in arms if arm is not type(None)]
    if len(present) == 1:
        return from_json(present[0], value)
    # Several stored classes: the stored "type" says which.
    if not isinstance(value, Mapping):
        raise TypeError(f"expected an object, got {type(value).__name__}")
    tag = value.get("type")
    for arm in present:
        if getattr(arm, "stored_type", None) == tag:
            return from_json(arm, value)
    raise ValueError(f"unknown stored type {tag!r}")


def _from_fields(cls: Any, data: Any) -> Any:
    if not isinstance(data, Mapping):
        raise TypeError(f"expected an object, got {type(data).__name__}")
    hints = _field_hints(cls)
    values: dict[str, Any] = {}
    for field in _stored_fields(cls):
        hint = hints[field.name]
        if field.name in data:
            values[field.name] = from_json(hint, data[field.name])
        elif (
            field.default is dataclasses.MISSING
            and field.default_factory is dataclasses.MISSING
            and type(None) in get_args(hint)
        ):
            values[field.name] = None
    return cls(**values)


@functools.cache
def _stored_fields(cls: Any) -> tuple[dataclasses.Field[Any], ...]:
    return tuple(
        field for field in dataclasses.fields(cls) if field.metadata.get("stored", True)
    )


@functools.cache
def _field_hints(cls: Any) -> dict[str, Any]:
    return get_type_hints(cls)


class Direction(StrEnum):
    """A direction of transfer, seen from the home."""

    DOWNLOAD = "download"
    UPLOAD = "upload"


class Verdict(StrEnum):
    """The judgement of a test by the other traffic on the line during it."""

    BUSY = "busy"
    """Other traffic exceeded the share of the measured rate: the test is shown, but
    neither the slow judgement nor the compliance figures count it."""
    QUIET = "quiet"
    UNKNOWN = "unknown"
    """A source could not be read: the test counts, as a false "busy" would hide a
    slow line."""


class FailureKind(StrEnum):
    """Why a test produced no measurement."""

    SERVICE_UNAVAILABLE = "service_unavailable"
    """speedtest.net answered 403/5xx, or sent a broken configuration or server list."""
    NO_SERVER = "no_server"
    """No reachable test server: probes dead, no servers, the fixed server gone."""
    CONNECTION = "connection"
    """Could not connect at all: the internet may be down."""
    TIMEOUT = "timeout"
    """The deadline passed, or requests stalled."""
    INVALID_RESULT = "invalid_result"
    """Numbers were produced but are not trustworthy; the reason says why."""
    CANCELLED = "cancelled"
    """The test was stopped."""


@dataclass(frozen=True, slots=True, kw_only=True)
class TestServer(Stored):
    """A speedtest.net test server."""

    id: int
    name: str
    sponsor: str
    country: str
    distance_km: float | None = None
    """None when speedtest.net's coordinates gave no distance (a NaN, say)."""
    host: str = ""
    """The server's "host:port" as the server list gives it; empty in old records."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Measurement(Stored):
    """A speed test that produced trustworthy numbers."""

    stored_type: ClassVar[str | None] = "measurement"

    download_mbps: float
    upload_mbps: float
    ping_ms: float
    bytes_received: int
    bytes_sent: int
    server: TestServer
    isp: str
    """The client's ISP as speedtest.net names it; the external IP is never kept."""
    started: datetime
    finished: datetime
    nearby_hosts: tuple[str, ...] = ()
    """"host:port" of other servers near the one used, for the connectivity watch."""
    jitter_ms: float | None = None
    """Mean absolute difference between consecutive latency samples; None in tests
    stored before it was measured, as are the two below."""
    download_latency_ms: float | None = None
    """Median latency while downloading; also None if no probe answered under load."""
    upload_latency_ms: float | None = None
    """Median latency while uploading."""
    verdict: Verdict | None = None
    """Busy, quiet or unknown by the other traffic during the test; None in tests
    stored before it was judged, as are the figures below."""
    other_download_bytes: int | None = None
    """Other traffic while downloading: the busiest source's bytes (the host's or the
    router's), None where no source could tell."""
    other_download_mbps: float | None = None
    """That traffic's average rate."""
    other_upload_bytes: int | None = None
    """Other traffic while uploading, as for download."""
    other_upload_mbps: float | None = None
    """That traffic's average rate."""
    deferrals: int = 0
    """How often this scheduled test waited for a busy line before it ran."""
    host_traffic: tuple[object, ...] = dataclasses.field(
        default=(), metadata=TRANSIENT, compare=False, repr=False
    )
    """The host's readings (traffic.TrafficReading) from the runner's interface
    counters, until the coordinator judges the test with them; never stored."""

    @property
    def busy(self) -> bool:
        """Whether other traffic made the test say little about the line."""
        return self.verdict is Verdict.BUSY


@dataclass(frozen=True, slots=True, kw_only=True)
class TestFailure(Stored):
    """A test that produced no trustworthy numbers, and why."""

    stored_type: ClassVar[str | None] = "failure"

    kind: FailureKind
    reason: str
    """Short English explanation, without secrets or addresses."""
    started: datetime
    finished: datetime
    bytes_received: int = 0
    """Data a failed test used anyway; it counts toward data budgets."""
    bytes_sent: int = 0


type TestOutcome = Measurement | TestFailure


def outcome_from_dict(data: Mapping[str, Any]) -> TestOutcome:
    """Read a stored measurement or failure.

    Raises:
        KeyError, TypeError, ValueError: The data is neither.
    """
    return cast("TestOutcome", from_json(TestOutcome, data))


@dataclass(frozen=True, slots=True, kw_only=True)
class UnreadableRecord:
    """A stored record that could not be read, as it was, and why."""

    record: Any
    problem: str


def read_records[ItemT](
    records: Any, read: Callable[[Any], ItemT]
) -> tuple[list[ItemT], list[UnreadableRecord]]:
    """Read each record on its own: one that does not fit is set aside, not fatal."""
    if not isinstance(records, list):
        return [], [UnreadableRecord(record=records, problem="not a list of records")]
    readable: list[ItemT] = []
    unreadable: list[UnreadableRecord] = []
    for record in records:
        try:
            readable.append(read(record))
        except (KeyError, TypeError, ValueError) as error:
            unreadable.append(
                UnreadableRecord(record=record, problem=describe_problem(error))
            )
    return readable, unreadable


def describe_problem(error: Exception) -> str:
    """A short English description of why a record could not be read."""
    if isinstance(error, KeyError):
        return f"missing {error}"
    return str(error)[:200]


class PostResult(StrEnum):
    """What X made of a post."""

    POSTED = "posted"
    # Duplicate content: the same text went out before (often our own attempt that
    # timed out after X had created it), so it counts as posted and is never retried.
    DUPLICATE = "duplicate"
    AUTH_FAILED = "auth_failed"
    READ_ONLY = "read_only"
    NOT_ENROLLED = "not_enrolled"
    NO_CREDITS = "no_credits"
    RATE_LIMITED = "rate_limited"
    TRANSIENT = "transient"
    # X refused this post as it is (too long, invalid): a retry would get the same.
    REJECTED = "rejected"


@dataclass(frozen=True, slots=True, kw_only=True)
class PostOutcome:
    """X's answer to a post."""

    result: PostResult
    tweet_id: str | None = None
    url: str | None = None
    # UTC; set for RATE_LIMITED.
    retry_at: datetime | None = None
    # Short and safe for logs: X's own words or an exception's class, never a key.
    detail: str = ""
