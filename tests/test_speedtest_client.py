"""The speed-test client and its child runner, against the fake speedtest.net."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
import json
import os
from pathlib import Path
import signal
import sys

import pytest

from custom_components.isp_watch.models import (
    FailureKind,
    Measurement,
    TestFailure as SpeedTestFailure,  # aliased: pytest would take Test* for tests
    TestServer as SpeedTestServer,
    outcome_from_dict,
)
from custom_components.isp_watch.speedtest_client import (
    SpeedTestClient,
    SpeedTestSettings,
)
from fakes.speedtest import CLIENT_IP, ISP, RECEIVE_BUFFER, SERVER_IDS, FakeSpeedtest
from tests.common import LOADED_MACHINE_MS, child_processes, runner_children

# Short timeouts: the faults below stall for good, so each ends at its first timeout.
QUICK = SpeedTestSettings(request_timeout=1.0, deadline=60)
# speedtest-cli keeps up to 8 downloads open; when its clock stops, each may leave a
# few of the fake's 16 KiB writes unread in its buffers (12 in all, measured), which
# the fake counts as served.
UNREAD_WHEN_STOPPED = 8 * 64 * 1024
# An upload stream's bytes in flight when a direction ends: at most what the fake's
# receive buffer (64 KiB, doubled by the kernel) takes, for each of up to 8 streams.
UNACKED_WHEN_STOPPED = 8 * 2 * RECEIVE_BUFFER


@pytest.fixture
def line(fake_speedtest: FakeSpeedtest) -> FakeSpeedtest:
    """The fake line, set for short tests: 1 s phases, small uploads, 2 ms latency."""
    fake_speedtest.test_length = 1
    fake_speedtest.upload_ratio = 3
    fake_speedtest.latency_ms = 2
    return fake_speedtest


@pytest.fixture
def client(fake_speedtest: FakeSpeedtest) -> SpeedTestClient:
    """A client whose child processes reach the fake, with warnings as errors.

    speedtest-cli calls deprecated functions; a warning must never spoil a test (with
    a plain threading.Event every download thread would die and report 0 bytes).
    """
    environment = fake_speedtest.environment() | {"PYTHONWARNINGS": "error"}
    return SpeedTestClient(environment=environment)


async def _until(condition: Callable[[], object]) -> None:
    """Wait until `condition()` is true (the test's own timeout bounds the wait)."""
    while not condition():
        await asyncio.sleep(0.02)


def _assert_private(outcome: Measurement | SpeedTestFailure) -> None:
    """Neither the stored form nor the repr holds the client's IP address."""
    assert CLIENT_IP not in json.dumps(outcome.as_dict())
    assert CLIENT_IP not in repr(outcome)
    assert outcome_from_dict(json.loads(json.dumps(outcome.as_dict()))) == outcome


async def test_measurement_matches_the_line(
    client: SpeedTestClient, fake_speedtest: FakeSpeedtest
) -> None:
    """A test reports the line's rates and latency, the bytes moved, and its server."""
    outcome = await client.run_test(SpeedTestSettings(request_timeout=5.0))
    fake_speedtest.settle()

    assert isinstance(outcome, Measurement), outcome
    assert outcome.download_mbps == pytest.approx(
        fake_speedtest.download_mbps, rel=0.15
    )
    assert outcome.upload_mbps == pytest.approx(fake_speedtest.upload_mbps, rel=0.15)
    # The nearest server's latency; the next one's is 50 ms more.
    assert (
        fake_speedtest.latency_ms
        <= outcome.ping_ms
        <= fake_speedtest.latency_ms + LOADED_MACHINE_MS
    )
    # The fake answers every probe after at least its latency, loaded or not.
    assert outcome.jitter_ms is not None
    assert outcome.download_latency_ms is not None
    assert outcome.download_latency_ms >= fake_speedtest.latency_ms
    assert outcome.upload_latency_ms is not None
    assert outcome.upload_latency_ms >= fake_speedtest.latency_ms
    # Upload counts bytes the server acknowledged; what was still on its way when the
    # direction ended arrives uncounted.
    in_flight = fake_speedtest.bytes_received - outcome.bytes_sent
    assert 0 <= in_flight <= UNACKED_WHEN_STOPPED
    unread = fake_speedtest.bytes_served - outcome.bytes_received
    assert 0 <= unread <= UNREAD_WHEN_STOPPED
    assert outcome.server == SpeedTestServer(
        id=SERVER_IDS[0],
        name="Town 0",
        sponsor="Example Hosting 0",
        country="Netherlands",
        distance_km=41.1,
        # What the connectivity watch probes between tests.
        host=f"127.0.0.1:{fake_speedtest.port}",
    )
    assert outcome.isp == ISP
    assert outcome.started.tzinfo is UTC
    assert outcome.started < outcome.finished
    _assert_private(outcome)
    # secure=True: the configuration came through a TLS tunnel to www.speedtest.net.
    assert fake_speedtest.count("CONNECT www.speedtest.net:443") >= 1
    assert fake_speedtest.count("GET https://www.speedtest.net/speedtest-config") == 1
    assert fake_speedtest.count("GET http://www.speedtest.net/") == 0


async def test_fixed_server(line: FakeSpeedtest, client: SpeedTestClient) -> None:
    """One server id: only that server is probed and measured against."""
    outcome = await client.run_test(SpeedTestSettings(server_ids=(SERVER_IDS[2],)))

    assert isinstance(outcome, Measurement), outcome
    assert outcome.server.id == SERVER_IDS[2]
    # speedtest-cli's three probes, then the engine's samples: all to that server.
    assert line.count("/speedtest2/latency.txt") >= 3 + 10
    assert line.count("/speedtest0/") == line.count("/speedtest1/") == 0


async def test_best_of_several_servers(
    line: FakeSpeedtest, client: SpeedTestClient
) -> None:
    """Several server ids: the one with the lowest latency wins, not the nearest."""
    # Nearer than server 2, but slower by more than a loaded machine adds.
    line.servers[1].extra_latency_ms = line.servers[2].extra_latency_ms + 50

    outcome = await client.run_test(
        SpeedTestSettings(server_ids=(SERVER_IDS[1], SERVER_IDS[2]))
    )

    assert isinstance(outcome, Measurement), outcome
    assert outcome.server.id == SERVER_IDS[2]
    assert line.count("/speedtest1/latency.txt") == 3
    assert line.count("/speedtest0/") == line.count("/speedtest1/random") == 0


@pytest.mark.parametrize(
    ("fault", "value", "kind", "reason"),
    [
        ("config_status", 403, "service_unavailable", "configuration: HTTP 403"),
        ("config_status", 503, "service_unavailable", "configuration: HTTP 503"),
        ("config_status", 204, "service_unavailable", "unusable answer (KeyError)"),
        ("config_malformed", True, "service_unavailable", "(SpeedtestConfigError)"),
        ("config_incomplete", True, "service_unavailable", "(NameError)"),
        ("broken_gzip", True, "service_unavailable", "broken gzip body"),
        ("config_stall", True, "timeout", "configuration: timed out"),
        ("servers_status", 403, "service_unavailable", "server list: HTTP 403"),
        ("servers_malformed", True, "service_unavailable", "server list: malformed"),
        ("servers_stall", True, "timeout", "server list: timed out"),
        ("servers_unusable", True, "service_unavailable", "use the answer (TypeError)"),
        ("no_servers", True, "no_server", "speedtest.net offered no test servers"),
        ("dead_latency", True, "no_server", "no test server answered the latency"),
        ("latency_stall", True, "timeout", "latency probe: timed out"),
        (
            "lossy_latency",
            True,
            "invalid_result",
            "failed in part on every test server",
        ),
    ],
)
async def test_faults_before_the_measurement(
    line: FakeSpeedtest,
    client: SpeedTestClient,
    fault: str,
    value: object,
    kind: str,
    reason: str,
) -> None:
    """speedtest.net or its servers fail: a typed failure, and nothing is measured."""
    setattr(line.faults, fault, value)

    outcome = await client.run_test(QUICK)

    assert isinstance(outcome, SpeedTestFailure), outcome
    assert (outcome.kind, reason in outcome.reason) == (kind, True), outcome.reason
    assert line.count("random") == line.count("POST") == 0
    assert outcome.bytes_received == outcome.bytes_sent == 0
    _assert_private(outcome)


@pytest.mark.parametrize(
    ("fault", "value", "kind", "reason"),
    [
        ("download_status", 404, "invalid_result", "downloads failed (HTTP 404)"),
        ("download_status", 500, "invalid_result", "downloads failed (HTTP 500)"),
        ("download_status", 204, "invalid_result", "downloads failed (HTTP 204)"),
        ("download_empty", True, "invalid_result", "no data in downloads"),
        ("download_partial", True, "invalid_result", "failed (body cut short)"),
        ("download_reset", True, "invalid_result", "(Connection reset by peer)"),
        ("download_stall", True, "timeout", "downloads stalled"),
    ],
)
async def test_download_faults(
    line: FakeSpeedtest,
    client: SpeedTestClient,
    fault: str,
    value: object,
    kind: str,
    reason: str,
) -> None:
    """Downloads that fail are never a speed; the upload is not even started."""
    setattr(line.faults, fault, value)

    outcome = await client.run_test(QUICK)

    assert isinstance(outcome, SpeedTestFailure), outcome
    assert (outcome.kind, reason in outcome.reason) == (kind, True), outcome.reason
    assert line.count("POST") == 0
    # What was read before the failure still counts as data used.
    assert 0 <= line.bytes_served - outcome.bytes_received <= UNREAD_WHEN_STOPPED
    assert (outcome.bytes_received > 0) == (line.bytes_served > 0)
    _assert_private(outcome)


@pytest.mark.parametrize(
    ("fault", "value", "reason"),
    [
        ("upload_status", 500, "uploads failed (HTTP 500)"),
        ("upload_reset", True, "uploads failed (Connection reset by peer)"),
    ],
)
async def test_upload_faults(
    line: FakeSpeedtest,
    client: SpeedTestClient,
    fault: str,
    value: object,
    reason: str,
) -> None:
    """speedtest-cli counts refused uploads as sent at full speed; they are refused."""
    setattr(line.faults, fault, value)

    outcome = await client.run_test(QUICK)
    line.settle()

    assert isinstance(outcome, SpeedTestFailure), outcome
    assert outcome.kind is FailureKind.INVALID_RESULT
    assert reason in outcome.reason
    assert outcome.bytes_received > 0
    assert outcome.bytes_sent >= line.bytes_received > 0


async def test_one_failed_download_spoils_the_test(
    line: FakeSpeedtest, client: SpeedTestClient
) -> None:
    """A single download that failed among many is enough to refuse the numbers."""
    line.faults.download_status = 404
    line.faults.limit = 1

    outcome = await client.run_test(QUICK)

    assert isinstance(outcome, SpeedTestFailure), outcome
    assert outcome.kind is FailureKind.INVALID_RESULT
    assert outcome.reason.startswith("1 of ")
    assert "downloads failed (HTTP 404)" in outcome.reason
    # The direction ends at once; what the other streams read still counts.
    assert 0 <= line.bytes_served - outcome.bytes_received <= UNREAD_WHEN_STOPPED


async def test_fixed_server_no_longer_offered(
    line: FakeSpeedtest, client: SpeedTestClient
) -> None:
    """A fixed server that the list lacks is no server, unless the list never came."""
    outcome = await client.run_test(SpeedTestSettings(server_ids=(999,)))
    assert isinstance(outcome, SpeedTestFailure), outcome
    assert outcome.kind is FailureKind.NO_SERVER
    assert outcome.reason == "test server 999 is not offered"
    assert line.count("latency.txt") == 0

    line.faults.servers_status = 503
    outcome = await client.run_test(SpeedTestSettings(server_ids=(999,)))
    assert isinstance(outcome, SpeedTestFailure), outcome
    assert outcome.kind is FailureKind.SERVICE_UNAVAILABLE
    assert outcome.reason == "server list: HTTP 503"


async def test_internet_down(line: FakeSpeedtest, client: SpeedTestClient) -> None:
    """Nothing answers: a connection failure for every operation, not a slow line."""
    line.stop()

    outcome = await client.run_test(QUICK)
    probe = await client.probe(QUICK)
    servers = await client.list_servers(QUICK)

    for failure in (outcome, probe, servers):
        assert isinstance(failure, SpeedTestFailure), failure
        assert failure.kind is FailureKind.CONNECTION
        assert failure.reason == "speedtest.net configuration: Connection refused"


async def test_certificate_is_verified(
    line: FakeSpeedtest, fake_speedtest: FakeSpeedtest
) -> None:
    """Without the fake's CA, HTTPS to speedtest.net fails; plain HTTP does not."""
    environment = fake_speedtest.environment()
    del environment["SSL_CERT_FILE"]
    client = SpeedTestClient(environment=environment)

    failure = await client.probe(QUICK)
    assert isinstance(failure, SpeedTestFailure)
    assert failure.kind is FailureKind.SERVICE_UNAVAILABLE
    assert failure.reason == "speedtest.net configuration: certificate not trusted"

    assert await client.probe(SpeedTestSettings(secure=False)) is None
    assert line.count("GET http://www.speedtest.net/speedtest-config.php") == 1


async def test_source_address(line: FakeSpeedtest, client: SpeedTestClient) -> None:
    """Every connection of a test leaves from the source address it is given."""
    outcome = await client.run_test(SpeedTestSettings(source_address="127.0.0.2"))

    assert isinstance(outcome, Measurement), outcome
    assert line.peers == {"127.0.0.2"}
    assert line.count("latency.txt") > 0
    assert line.count("POST") > 0

    failure = await client.probe(SpeedTestSettings(source_address="192.0.2.1"))
    assert isinstance(failure, SpeedTestFailure)
    assert failure.kind is FailureKind.CONNECTION
    assert "Cannot assign requested address" in failure.reason


async def test_cancel_stops_the_child(
    line: FakeSpeedtest, client: SpeedTestClient
) -> None:
    """Cancelling a running test ends its process."""
    line.test_length = 30
    task = asyncio.create_task(client.run_test(SpeedTestSettings()))
    await _until(lambda: line.count("random") > 0)
    assert list(runner_children())

    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    assert not list(runner_children())


async def test_cancel_while_the_library_is_blocked(
    line: FakeSpeedtest, client: SpeedTestClient
) -> None:
    """The child also ends while speedtest-cli waits on a socket it does not watch."""
    line.faults.config_stall = True
    task = asyncio.create_task(client.run_test(SpeedTestSettings(request_timeout=30)))
    await _until(lambda: line.count("speedtest-config.php") > 0)

    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    assert not list(runner_children())


async def test_stopped_from_outside(
    line: FakeSpeedtest, client: SpeedTestClient
) -> None:
    """A runner interrupted by someone else (Ctrl-C) reports a cancelled test."""
    line.test_length = 30
    task = asyncio.create_task(client.run_test(SpeedTestSettings()))
    await _until(lambda: line.bytes_served > 0)
    for pid in runner_children():
        os.kill(pid, signal.SIGINT)

    outcome = await task

    assert isinstance(outcome, SpeedTestFailure), outcome
    assert outcome.kind is FailureKind.CANCELLED
    assert outcome.bytes_received > 0
    assert not list(runner_children())


async def test_deadline(line: FakeSpeedtest, client: SpeedTestClient) -> None:
    """A test that outlives its deadline is stopped; the data it used still counts."""
    # The server goes silent once the download runs, and the runner would wait a
    # minute for it: only the deadline ends this test, however busy the machine.
    task = asyncio.create_task(
        client.run_test(SpeedTestSettings(request_timeout=60, deadline=20))
    )
    await _until(lambda: line.bytes_served > 0 or task.done())
    line.faults.silent = True

    outcome = await task

    assert isinstance(outcome, SpeedTestFailure), outcome
    assert outcome.kind is FailureKind.TIMEOUT
    assert outcome.reason == "no result within 20 s"
    assert outcome.bytes_received > 0
    assert not list(runner_children())


async def test_probe_and_server_list(
    line: FakeSpeedtest, client: SpeedTestClient
) -> None:
    """A probe fetches only the configuration; the list comes nearest first."""
    assert await client.probe(QUICK) is None
    assert line.count("speedtest-config.php") == 1
    assert line.count("speedtest-servers") == line.bytes_served == 0

    servers = await client.list_servers(QUICK)

    assert isinstance(servers, list)
    assert [server.id for server in servers] == list(SERVER_IDS)
    assert servers[1] == SpeedTestServer(
        id=SERVER_IDS[1],
        name="Town 1",
        sponsor="Example Hosting 1",
        country="Netherlands",
        distance_km=70.1,
        host=f"127.0.0.1:{line.port}",
    )
    assert line.count("latency.txt") == line.bytes_served == 0


async def test_probe_and_server_list_refused(
    line: FakeSpeedtest, client: SpeedTestClient
) -> None:
    """speedtest.net refusing is a failure of the service, not of the line."""
    line.faults.servers_status = 403
    servers = await client.list_servers(QUICK)
    assert isinstance(servers, SpeedTestFailure)
    assert servers.kind is FailureKind.SERVICE_UNAVAILABLE
    assert servers.reason == "server list: HTTP 403"

    line.faults.config_status = 403
    probe = await client.probe(QUICK)
    assert isinstance(probe, SpeedTestFailure)
    assert probe.kind is FailureKind.SERVICE_UNAVAILABLE
    assert probe.reason == "speedtest.net configuration: HTTP 403"


def test_stored_forms_round_trip() -> None:
    """History entries survive JSON; fields older entries lack read as 0 or None."""
    started = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
    measurement = Measurement(
        download_mbps=95.5,
        upload_mbps=20.25,
        ping_ms=12.5,
        bytes_received=120_000_000,
        bytes_sent=30_000_000,
        server=SpeedTestServer(
            id=1, name="Town", sponsor="Host", country="NL", distance_km=3.5
        ),
        isp="Example Fibre",
        started=started,
        finished=started + timedelta(seconds=25),
        jitter_ms=1.25,
        download_latency_ms=40.5,
        upload_latency_ms=80.0,
    )
    failure = SpeedTestFailure(
        kind=FailureKind.TIMEOUT,
        reason="no result within 180 s",
        started=started,
        finished=started + timedelta(minutes=3),
        bytes_received=5,
        bytes_sent=7,
    )
    for outcome in (measurement, failure):
        stored = json.loads(json.dumps(outcome.as_dict()))
        assert outcome_from_dict(stored) == outcome
    assert measurement.as_dict()["type"] == "measurement"
    assert failure.as_dict()["type"] == "failure"
    measured_before_jitter = measurement.as_dict()
    for name in ("jitter_ms", "download_latency_ms", "upload_latency_ms"):
        del measured_before_jitter[name]
    old_measurement = outcome_from_dict(measured_before_jitter)
    assert isinstance(old_measurement, Measurement)
    assert old_measurement.jitter_ms is None
    assert old_measurement.download_latency_ms is None
    assert old_measurement.upload_latency_ms is None
    assert old_measurement.download_mbps == measurement.download_mbps
    legacy = failure.as_dict()
    del legacy["bytes_received"], legacy["bytes_sent"]
    assert outcome_from_dict(legacy) == SpeedTestFailure(
        kind=FailureKind.TIMEOUT,
        reason="no result within 180 s",
        started=started,
        finished=started + timedelta(minutes=3),
    )


def _answer_with(**raw: str) -> str:
    """A complete measurement answer with some values as raw JSON text."""
    answer = {
        "type": "measurement",
        "download_mbps": 95.5,
        "upload_mbps": 20.0,
        "ping_ms": 12.5,
        "bytes_received": 1000,
        "bytes_sent": 1000,
        "server": {
            "id": 1,
            "name": "T",
            "sponsor": "H",
            "country": "NL",
            "distance_km": 3.5,
        },
        "isp": "Example Fibre",
    }
    text = json.dumps(answer)
    for key, value in raw.items():
        text = text.replace(f'"{key}": {json.dumps(answer[key])}', f'"{key}": {value}')
    return text


@pytest.mark.parametrize(
    ("script", "reason"),
    [
        ("exit 3", "the test runner exited with code 3"),
        ("kill -KILL $$", "the test runner was ended by signal 9"),
        ("echo 'Traceback'; echo 'not json'", "the test runner exited with code 0"),
        ('echo \'{"type": "measurement"}\'', "the test runner's answer was unreadable"),
        ('echo \'{"type": "servers"}\'', "the test runner's answer was unreadable"),
        # Python's json writes and reads NaN and Infinity; no speed is either.
        (
            f"echo '{_answer_with(download_mbps='NaN')}'",
            "the test runner's answer was unreadable",
        ),
        (
            f"echo '{_answer_with(upload_mbps='Infinity')}'",
            "the test runner's answer was unreadable",
        ),
        (
            f"echo '{_answer_with(bytes_sent='true')}'",
            "the test runner's answer was unreadable",
        ),
    ],
)
async def test_runner_without_an_answer(
    tmp_path: Path, script: str, reason: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A child that dies or talks nonsense is a failed test, not a crash of ours."""
    python = tmp_path / "python"
    python.write_text(f"#!/bin/sh\n{script}\n")
    python.chmod(0o755)
    client = SpeedTestClient(python=str(python))

    outcome = await client.run_test(QUICK)

    assert isinstance(outcome, SpeedTestFailure), outcome
    assert outcome.kind is FailureKind.INVALID_RESULT
    assert outcome.reason == reason
    assert "speed test runner" in caplog.text


async def test_speedtest_cli_outside_the_interpreters_path(
    line: FakeSpeedtest, fake_speedtest: FakeSpeedtest
) -> None:
    """An interpreter that does not see speedtest-cli is told where it lives.

    Home Assistant may install requirements into a folder only its own process puts on
    sys.path; the base interpreter of this virtual environment is such a child.
    """
    client = SpeedTestClient(
        python=sys._base_executable, environment=fake_speedtest.environment()
    )

    assert await client.probe(QUICK) is None
    assert line.count("speedtest-config.php") == 1


def _stubborn_runner(tmp_path: Path) -> str:
    """An interpreter stand-in that ignores SIGTERM and never answers: `sleep`."""
    python = tmp_path / "python"
    python.write_text("#!/bin/sh\ntrap '' TERM\nexec sleep 60\n")
    python.chmod(0o755)
    return str(python)


def _sleepers() -> list[int]:
    """Children of this process that have become the stubborn runner's `sleep`."""
    return [pid for pid, _, name, _ in child_processes() if name == "sleep"]


async def test_runner_that_ignores_sigterm_is_killed(tmp_path: Path) -> None:
    """A child that does not stop when asked is killed; the deadline still holds."""
    client = SpeedTestClient(python=_stubborn_runner(tmp_path))

    outcome = await client.run_test(SpeedTestSettings(deadline=0.5))

    assert isinstance(outcome, SpeedTestFailure), outcome
    assert outcome.kind is FailureKind.TIMEOUT
    assert outcome.reason == "no result within 0.5 s"
    assert (outcome.bytes_received, outcome.bytes_sent) == (0, 0)


async def test_cancelled_again_while_stopping(tmp_path: Path) -> None:
    """A second cancellation during the stop kills the child at once."""
    client = SpeedTestClient(python=_stubborn_runner(tmp_path))
    task = asyncio.create_task(client.run_test(QUICK))
    await _until(_sleepers)
    (pid,) = _sleepers()

    task.cancel()
    await asyncio.sleep(0.1)  # now in the grace period of the stop
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    # Killed and reaped: the process is gone, not even a zombie.
    await _until(lambda: not Path(f"/proc/{pid}").exists())


async def test_runner_that_cannot_start(tmp_path: Path) -> None:
    """An interpreter that is not there is a failed test, not an exception."""
    client = SpeedTestClient(python=str(tmp_path / "missing"))

    outcome = await client.probe(QUICK)

    assert isinstance(outcome, SpeedTestFailure), outcome
    assert outcome.kind is FailureKind.INVALID_RESULT
    assert outcome.reason == "the test runner could not start (FileNotFoundError)"


@pytest.fixture
def steady_line(fake_speedtest: FakeSpeedtest) -> FakeSpeedtest:
    """A line with room for the engine to find the steady rate (10 s per direction)."""
    fake_speedtest.test_length = 10
    fake_speedtest.latency_ms = 2
    fake_speedtest.set_rates(download_mbps=40.0, upload_mbps=20.0)
    return fake_speedtest


@pytest.mark.parametrize("keep_alive", [False, True])
async def test_engine_reports_the_paced_rate(
    steady_line: FakeSpeedtest, client: SpeedTestClient, keep_alive: bool
) -> None:
    """Both directions come within 5 % of the line's rate, with or without reuse."""
    steady_line.keep_alive = keep_alive

    outcome = await client.run_test(SpeedTestSettings(request_timeout=5.0))
    steady_line.settle()

    assert isinstance(outcome, Measurement), outcome
    assert outcome.download_mbps == pytest.approx(40.0, rel=0.05)
    assert outcome.upload_mbps == pytest.approx(20.0, rel=0.05)
    # Only the requests speedtest-cli makes; connections reused only when allowed.
    posts = steady_line.count("POST ")
    assert posts == steady_line.count("/upload.php?x=") > 0
    if not keep_alive:
        assert steady_line.count("random") > 4


async def test_ramp_up_is_not_taken_for_the_rate(
    steady_line: FakeSpeedtest, client: SpeedTestClient
) -> None:
    """A line that ramps up like TCP's slow start still reports its steady rate."""
    steady_line.set_ramp(3.0)

    outcome = await client.run_test(SpeedTestSettings(request_timeout=5.0))

    assert isinstance(outcome, Measurement), outcome
    assert outcome.download_mbps == pytest.approx(40.0, rel=0.05)
    assert outcome.upload_mbps == pytest.approx(20.0, rel=0.05)


async def test_server_stops_answering_during_download(
    steady_line: FakeSpeedtest, client: SpeedTestClient
) -> None:
    """A server that goes silent mid-download is a stalled test, not a slow line."""
    task = asyncio.create_task(client.run_test(QUICK))
    await _until(lambda: steady_line.bytes_served > 1_000_000)
    steady_line.faults.silent = True

    outcome = await task

    assert isinstance(outcome, SpeedTestFailure), outcome
    assert outcome.kind is FailureKind.TIMEOUT
    assert "downloads stalled" in outcome.reason
    assert steady_line.count("POST") == 0


async def test_receiver_stalls_mid_upload(
    steady_line: FakeSpeedtest, client: SpeedTestClient
) -> None:
    """Bytes still in the send buffer when the receiver stops are never counted."""
    task = asyncio.create_task(client.run_test(QUICK))
    await _until(lambda: steady_line.bytes_received > 1_000_000)
    steady_line.faults.silent = True

    outcome = await task

    assert isinstance(outcome, SpeedTestFailure), outcome
    assert outcome.kind is FailureKind.TIMEOUT
    assert "uploads stalled" in outcome.reason
    # Acknowledged: what the fake read, plus at most its receive buffers.
    assert steady_line.bytes_received <= outcome.bytes_sent
    assert outcome.bytes_sent <= steady_line.bytes_received + UNACKED_WHEN_STOPPED


async def test_transfers_through_a_proxy(
    steady_line: FakeSpeedtest, fake_speedtest: FakeSpeedtest
) -> None:
    """Behind a proxy the transfers take it too; upload counts what the server got."""
    environment = fake_speedtest.environment() | {"no_proxy": ""}
    proxied = SpeedTestClient(environment=environment)

    outcome = await proxied.run_test(SpeedTestSettings(request_timeout=5.0))
    steady_line.settle()

    assert isinstance(outcome, Measurement), outcome
    assert steady_line.count("GET http://127.0.0.1:") > 0
    assert steady_line.count("POST http://127.0.0.1:") > 0
    assert outcome.download_mbps == pytest.approx(40.0, rel=0.05)
    assert outcome.upload_mbps == pytest.approx(20.0, rel=0.05)
    # Confirmed by the server's size=N: never more than it read.
    assert 0 < outcome.bytes_sent <= steady_line.bytes_received
