"""The stored form of the shared types: one way, read back exactly, lenient with age."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
import json
from typing import Any, ClassVar

import pytest

from custom_components.isp_watch.models import (
    TRANSIENT,
    FailureKind,
    Measurement,
    Stored,
    TestFailure as SpeedTestFailure,  # aliased: pytest would take Test* for tests
    TestServer as SpeedTestServer,
    outcome_from_dict,
    read_records,
)

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


@dataclass(frozen=True, slots=True, kw_only=True)
class Sample(Stored):
    """Every kind of field the stored form knows."""

    stored_type: ClassVar[str | None] = "sample"

    kind: FailureKind
    at: datetime
    servers: tuple[SpeedTestServer, ...]
    counts: list[int]
    server: SpeedTestServer | None
    note: str | None
    raw: Any
    retries: int = 0


SERVER = SpeedTestServer(
    id=4242,
    name="Springfield",
    sponsor="Example Fiber",
    country="US",
    distance_km=12.5,
    host="speedtest.example.net:8080",
)


def _through_json(value: Stored) -> dict[str, Any]:
    stored: dict[str, Any] = json.loads(json.dumps(value.as_dict()))
    return stored


def test_every_field_kind_reads_back() -> None:
    sample = Sample(
        kind=FailureKind.TIMEOUT,
        at=T0,
        servers=(SERVER, SERVER),
        counts=[1, 2],
        server=SERVER,
        note=None,
        raw={"free": ["form"]},
        retries=2,
    )

    stored = _through_json(sample)

    assert stored["type"] == "sample"
    assert stored["kind"] == "timeout"
    assert stored["at"] == "2026-03-02T08:00:00+00:00"
    assert stored["servers"][0] == {
        "id": 4242,
        "name": "Springfield",
        "sponsor": "Example Fiber",
        "country": "US",
        "distance_km": 12.5,
        "host": "speedtest.example.net:8080",
    }
    assert Sample.from_dict(stored) == sample


def test_missing_fields_take_their_default_or_none() -> None:
    stored = {"kind": "timeout", "at": T0.isoformat(), "servers": [], "counts": []}

    sample = Sample.from_dict(stored | {"raw": 1})

    assert (sample.server, sample.note, sample.retries) == (None, None, 0)


def test_a_missing_required_field_is_refused() -> None:
    with pytest.raises(TypeError):
        Sample.from_dict({"kind": "timeout", "at": T0.isoformat()})


def test_outcomes_are_told_apart_by_their_stored_type() -> None:
    measurement = Measurement(
        download_mbps=95.5,
        upload_mbps=19.0,
        ping_ms=14.2,
        bytes_received=119_375_000,
        bytes_sent=23_750_000,
        server=SERVER,
        isp="Example Fiber",
        started=T0,
        finished=T0 + timedelta(seconds=30),
    )
    failure = SpeedTestFailure(
        kind=FailureKind.CONNECTION,
        reason="could not reach speedtest.net",
        started=T0,
        finished=T0 + timedelta(seconds=5),
    )

    assert outcome_from_dict(_through_json(measurement)) == measurement
    assert outcome_from_dict(_through_json(failure)) == failure
    with pytest.raises(ValueError, match="unknown stored type"):
        outcome_from_dict(_through_json(failure) | {"type": "probe"})


def test_a_field_type_without_stored_form_is_refused() -> None:
    @dataclass(frozen=True, slots=True, kw_only=True)
    class Unstorable(Stored):
        amount: Decimal

    with pytest.raises(TypeError, match="no stored form"):
        Unstorable.from_dict({"amount": 60})


SAMPLE: dict[str, Any] = {
    "kind": "timeout",
    "at": T0.isoformat(),
    "servers": [],
    "counts": [1],
    "raw": None,
}


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"at": "2026-03-02T08:00:00"}, ValueError),
        ({"at": 1_772_438_400}, TypeError),
        ({"counts": [True]}, TypeError),
        ({"counts": [1.5]}, TypeError),
        ({"counts": "12"}, TypeError),
        ({"retries": None}, TypeError),
        ({"kind": "from_a_newer_version"}, ValueError),
        ({"servers": [SERVER.as_dict() | {"distance_km": "far"}]}, TypeError),
        ({"servers": [SERVER.as_dict() | {"id": "4242"}]}, TypeError),
        ({"servers": ["Springfield"]}, TypeError),
    ],
)
def test_a_value_of_the_wrong_kind_is_refused(
    changes: dict[str, Any], error: type[Exception]
) -> None:
    """Stored files come from outside: a value is what its field says, or refused."""
    with pytest.raises(error):
        Sample.from_dict(SAMPLE | changes)


def test_a_number_that_is_not_finite_is_refused_or_unknown() -> None:
    """A required number must be finite; an optional one that is not reads as None."""
    nan_distance = SERVER.as_dict() | {"distance_km": float("nan")}
    assert SpeedTestServer.from_dict(nan_distance).distance_km is None
    assert SpeedTestServer.from_dict(nan_distance | {"distance_km": None}) == (
        SpeedTestServer.from_dict(nan_distance)
    )
    failure = SpeedTestFailure(
        kind=FailureKind.TIMEOUT, reason="", started=T0, finished=T0
    ).as_dict()
    with pytest.raises(TypeError):
        outcome_from_dict(failure | {"bytes_sent": float("inf")})
    with pytest.raises(TypeError):
        outcome_from_dict("failure")


def test_records_are_read_one_by_one() -> None:
    """One record that cannot be read is set aside with the reason; the rest count."""
    good = SERVER.as_dict()
    readable, unreadable = read_records(
        [good, {"id": 1}, good], SpeedTestServer.from_dict
    )
    assert readable == [SERVER, SERVER]
    assert [item.record for item in unreadable] == [{"id": 1}]
    assert "name" in unreadable[0].problem

    readable, unreadable = read_records({"not": "a list"}, SpeedTestServer.from_dict)
    assert readable == []
    assert unreadable[0].problem == "not a list of records"


@dataclass(frozen=True, slots=True, kw_only=True)
class Span(Stored):
    """Days, durations and state that does not outlive a restart."""

    day: date
    start: datetime
    length: timedelta
    busy: bool = field(default=False, metadata=TRANSIENT)


SPAN = Span(day=date(2026, 3, 2), start=T0, length=timedelta(minutes=1, seconds=0.5))


def test_dates_and_durations_read_back() -> None:
    stored = _through_json(SPAN)

    assert stored == {
        "day": "2026-03-02",
        "start": "2026-03-02T08:00:00+00:00",
        "length": 60.5,
    }
    assert Span.from_dict(stored) == SPAN


def test_a_time_keeps_its_offset() -> None:
    berlin_summer = timezone(timedelta(hours=2))
    span = Span(day=SPAN.day, start=T0.astimezone(berlin_summer), length=SPAN.length)

    restored = Span.from_dict(_through_json(span))

    assert restored.start.utcoffset() == timedelta(hours=2)
    assert restored.start == T0


def test_a_transient_field_is_not_kept() -> None:
    stored = _through_json(Span(day=SPAN.day, start=T0, length=SPAN.length, busy=True))

    assert "busy" not in stored
    assert not Span.from_dict(stored | {"busy": True}).busy


@pytest.mark.parametrize(
    "damage",
    [
        {"day": "Monday"},
        {"day": 20260302},
        {"length": "a minute"},
        {"length": True},
        {"length": float("nan")},
    ],
)
def test_a_damaged_day_or_duration_is_refused(damage: dict[str, Any]) -> None:
    with pytest.raises((TypeError, ValueError)):
        Span.from_dict(_through_json(SPAN) | damage)
