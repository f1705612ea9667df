"""The data types every part of ISP Watch shares, and the one way they are stored.

This is the ground floor: plain dataclasses and enums, no I/O, no Home Assistant. The
speed-test client produces these types, the evaluation judges them, the outbox keeps
X's answers in them, and the stores persist them.

Persisted dataclasses inherit Stored: their JSON form follows from their fields and type
hints (datetimes as ISO 8601, enums by value, nested dataclasses as objects, tuples and
lists as arrays), so a new field needs no hand-written conversion in two directions.
"""

from __future__ import annotations

from collections.abc import Mapping
import dataclasses
from dataclasses import dataclass
from datetime import datetime
from enum import Enum, StrEnum
import functools
import types
from typing import (
    Any,
    ClassVar,
    Self,
    TypeAliasType,
    Union,
    cast,
    get_args,
    get_origin,
    get_type_hints,
)


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
        for field in dataclasses.fields(value):
            stored[field.name] = to_json(getattr(value, field.name))
        return stored
    if isinstance(value, datetime):
        return value.isoformat()
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
    if origin is tuple:
        item_hint = get_args(hint)[0]
        return tuple(from_json(item_hint, item) for item in value)
    if origin is list:
        item_hint = get_args(hint)[0]
        return [from_json(item_hint, item) for item in value]
    if hint is Any:
        return value
    if isinstance(hint, type):
        if dataclasses.is_dataclass(hint):
            return _from_fields(hint, value)
        if issubclass(hint, datetime):
            return datetime.fromisoformat(value)
        if issubclass(hint, Enum):
            return hint(value)
        if hint in (int, float, str, bool):
            return hint(value)
    raise TypeError(f"no stored form for {hint!r}")


def _from_union(arms: tuple[Any, ...], value: Any) -> Any:
    if value is None and type(None) in arms:
        return None
    present = [arm for arm in arms if arm is not type(None)]
    if len(present) == 1:
        return from_json(present[0], value)
    # Several stored classes: the stored "type" says which.
    tag = value["type"]
    for arm in present:
        if getattr(arm, "stored_type", None) == tag:
            return from_json(arm, value)
    raise ValueError(f"unknown stored type {tag!r}")


def _from_fields(cls: Any, data: Mapping[str, Any]) -> Any:
    hints = _field_hints(cls)
    values: dict[str, Any] = {}
    for field in dataclasses.fields(cls):
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
def _field_hints(cls: Any) -> dict[str, Any]:
    return get_type_hints(cls)


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
    distance_km: float


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
    jitter_ms: float | None = None
    """Mean absolute difference between consecutive latency samples; None in tests
    stored before it was measured, as are the two below."""
    download_latency_ms: float | None = None
    """Median latency while downloading; also None if no probe answered under load."""
    upload_latency_ms: float | None = None
    """Median latency while uploading."""


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
