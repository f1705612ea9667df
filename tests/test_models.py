"""The stored form of the shared types: one way, read back exactly, lenient with age."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
import json
from typing import Any, ClassVar

import pytest

from custom_components.isp_watch.models import (
    FailureKind,
    Measurement,
    Stored,
    TestFailure as SpeedTestFailure,  # aliased: pytest would take Test* for tests
    TestServer as SpeedTestServer,
    outcome_from_dict,
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
    id=4242, name="Springfield", sponsor="Example Fiber", country="US", distance_km=12.5
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
        span: timedelta

    with pytest.raises(TypeError, match="no stored form"):
        Unstorable.from_dict({"span": 60})
