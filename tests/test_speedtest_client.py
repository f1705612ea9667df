"""The speed-test client and its child runner, against the fake speedtest.net."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
import json
import os
from pathlib import Path

import pytest

from custom_components.isp_watch import speedtest_client as st
from custom_components.isp_watch.speedtest_client import (
    FailureKind,
    Measurement,
    SpeedTestClient,
    SpeedTestSettings,
    outcome_from_dict,
)
from tests.fake_speedtest import SERVER_IDS, FakeSpeedtest

FAST = SpeedTestSettings(request_timeout=3.0, deadline=60)


@pytest.fixture
def client(fake_speedtest: FakeSpeedtest) -> SpeedTestClient:
    """A client whose child processes reach the fake."""
    return SpeedTestClient(environment=fake_speedtest.environment())


def _runner_children() -> Iterator[int]:
    """Process ids of speed-test runners started by this process."""
    me = str(os.getpid())
    for status in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = status.read_text().rsplit(")", 1)[1].split()
            cmdline = (status.parent / "cmdline").read_bytes()
        except OSError:
            continue
        if fields[1] == me and b"speedtest_runner.py" in cmdline:
            yield int(status.parent.name)


async def test_measurement_matches_the_line(
    client: SpeedTestClient, fake_speedtest: FakeSpeedtest
) -> None:
    """A test reports the fake's rates, the bytes it served, and its latency."""
    outcome = await client.run_test(SpeedTestSettings(request_timeout=5.0))

    assert isinstance(outcome, Measurement), outcome
    assert outcome.download_mbps == pytest.approx(
        fake_speedtest.download_mbps, rel=0.15
    )
    assert outcome.upload_mbps == pytest.approx(fake_speedtest.upload_mbps, rel=0.15)
    assert outcome.ping_ms == pytest.approx(fake_speedtest.latency_ms, abs=10)
    # The fake may have pushed a little more into socket buffers than was read.
    assert outcome.bytes_received == pytest.approx(
        fake_speedtest.bytes_served, rel=0.05
    )
    assert outcome.bytes_sent == fake_speedtest.bytes_received
    assert outcome.server.id == SERVER_IDS[0]
    assert outcome.server.sponsor == "Example Hosting 0"
    assert outcome.server.country == "Netherlands"
    assert outcome.server.distance_km > 0
    assert outcome.isp == "Example Fibre"
    assert outcome.started < outcome.finished
    assert outcome.started.tzinfo is not None
    stored = outcome.as_dict()
    assert "203.0.113.9" not in json.dumps(stored)
    assert outcome_from_dict(json.loads(json.dumps(stored))) == outcome
    # HTTPS: the configuration came through a TLS tunnel, as with secure=True.
    assert fake_speedtest.count("CONNECT www.speedtest.net:443") >= 1


async def test_fixed_server(
    client: SpeedTestClient, fake_speedtest: FakeSpeedtest
) -> None:
    """A fixed server id is the server measured against."""
    fake_speedtest.test_length = 1
    outcome = await client.run_test(
        SpeedTestSettings(server_ids=(SERVER_IDS[2],), request_timeout=5.0)
    )
    assert isinstance(outcome, Measurement), outcome
    assert outcome.server.id == SERVER_IDS[2]


@pytest.mark.parametrize(
    ("fault", "value", "kind", "reason"),
    [
        ("config_status", 403, FailureKind.SERVICE_UNAVAILABLE, "HTTP 403"),
        ("config_status", 503, FailureKind.SERVICE_UNAVAILABLE, "HTTP 503"),
        ("config_malformed", True, FailureKind.SERVICE_UNAVAILABLE, "configuration"),
        ("no_servers", True, FailureKind.NO_SERVER, "no test servers"),
        ("dead_latency", True, FailureKind.NO_SERVER, "latency"),
        ("download_status", 404, FailureKind.INVALID_RESULT, "HTTP 404"),
        ("download_status", 500, FailureKind.INVALID_RESULT, "HTTP 500"),
        ("download_partial", True, FailureKind.INVALID_RESULT, "requests failed"),
        ("download_reset", True, FailureKind.INVALID_RESULT, "requests failed"),
        ("upload_status", 500, FailureKind.INVALID_RESULT, "HTTP 500"),
    ],
)
async def test_faults_become_typed_failures(
    client: SpeedTestClient,
    fake_speedtest: FakeSpeedtest,
    fault: str,
    value: object,
    kind: FailureKind,
    reason: str,
) -> None:
    """Each fault ends in its failure kind, never in a number."""
    fake_speedtest.test_length = 1
    setattr(fake_speedtest.faults, fault, value)

    outcome = await client.run_test(FAST)

    assert isinstance(outcome, st.TestFailure), outcome
    assert outcome.kind is kind
    assert reason in outcome.reason
    assert "203.0.113.9" not in outcome.reason
    assert outcome_from_dict(outcome.as_dict()) == outcome


async def test_stalled_downloads(
    client: SpeedTestClient, fake_speedtest: FakeSpeedtest
) -> None:
    """Downloads that stall mid-body end as a timeout once their sockets give up."""
    fake_speedtest.test_length = 1
    fake_speedtest.faults.download_stall = True
    outcome = await client.run_test(SpeedTestSettings(request_timeout=1.0))
    assert isinstance(outcome, st.TestFailure)
    assert outcome.kind is FailureKind.TIMEOUT
    assert "stalled" in outcome.reason


async def test_bytes_of_a_failed_test_are_counted(
    client: SpeedTestClient, fake_speedtest: FakeSpeedtest
) -> None:
    """A test whose uploads failed still used the data it downloaded."""
    fake_speedtest.test_length = 1
    fake_speedtest.faults.upload_status = 500
    outcome = await client.run_test(FAST)
    assert isinstance(outcome, st.TestFailure)
    assert outcome.bytes_received > 0
    assert outcome.bytes_sent > 0


async def test_no_internet(
    client: SpeedTestClient, fake_speedtest: FakeSpeedtest
) -> None:
    """Nothing answers: a connection failure, not a slow line."""
    fake_speedtest.stop()
    outcome = await client.run_test(FAST)
    assert isinstance(outcome, st.TestFailure)
    assert outcome.kind is FailureKind.CONNECTION
    probe = await client.probe(FAST)
    assert probe is not None
    assert probe.kind is FailureKind.CONNECTION
    servers = await client.list_servers(FAST)
    assert isinstance(servers, st.TestFailure)
    assert servers.kind is FailureKind.CONNECTION


async def test_unknown_server_id(client: SpeedTestClient) -> None:
    """A fixed server that is no longer offered means no server, not a number."""
    outcome = await client.run_test(SpeedTestSettings(server_ids=(999,)))
    assert isinstance(outcome, st.TestFailure)
    assert outcome.kind is FailureKind.NO_SERVER


async def test_probe_and_server_list(
    client: SpeedTestClient, fake_speedtest: FakeSpeedtest
) -> None:
    """A probe fetches only the configuration; the list comes nearest first."""
    assert await client.probe(FAST) is None
    assert fake_speedtest.count("speedtest-servers") == 0
    assert fake_speedtest.bytes_served == 0

    servers = await client.list_servers(FAST)
    assert isinstance(servers, list)
    assert [server.id for server in servers] == list(SERVER_IDS)
    distances = [server.distance_km for server in servers]
    assert distances == sorted(distances)


async def test_probe_sees_a_refusing_service(
    client: SpeedTestClient, fake_speedtest: FakeSpeedtest
) -> None:
    """A probe that speedtest.net refuses is not an outage."""
    fake_speedtest.faults.config_status = 403
    failure = await client.probe(FAST)
    assert failure is not None
    assert failure.kind is FailureKind.SERVICE_UNAVAILABLE
    servers = await client.list_servers(FAST)
    assert isinstance(servers, st.TestFailure)


async def test_cancel_stops_the_child(
    client: SpeedTestClient, fake_speedtest: FakeSpeedtest
) -> None:
    """Cancelling a running test ends its process at once."""
    fake_speedtest.test_length = 30
    task = asyncio.create_task(client.run_test(SpeedTestSettings()))
    while fake_speedtest.count("random") == 0:
        await asyncio.sleep(0.05)
    assert list(_runner_children())

    task.cancel()
    async with asyncio.timeout(2):
        with pytest.raises(asyncio.CancelledError):
            await task

    assert not list(_runner_children())


async def test_deadline(client: SpeedTestClient, fake_speedtest: FakeSpeedtest) -> None:
    """A test that outlives its deadline is stopped and reported as a timeout."""
    fake_speedtest.test_length = 30
    outcome = await client.run_test(SpeedTestSettings(deadline=2))
    assert isinstance(outcome, st.TestFailure)
    assert outcome.kind is FailureKind.TIMEOUT
    assert not list(_runner_children())


async def test_runner_that_crashes() -> None:
    """A runner that prints nothing is an invalid result, not a crash of ours."""
    outcome = await SpeedTestClient(python="/bin/false").run_test(FAST)
    assert isinstance(outcome, st.TestFailure)
    assert outcome.kind is FailureKind.INVALID_RESULT
    assert "exited with code 1" in outcome.reason
