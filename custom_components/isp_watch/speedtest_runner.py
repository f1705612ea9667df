"""Child side of a speed test: run one operation with speedtest-cli, print its answer.

speedtest_client starts this file as a plain script, so it imports nothing from the
integration::

    python -P speedtest_runner.py '<arguments as JSON>'

Arguments: ``operation`` (``"test"``, ``"probe"`` or ``"servers"``), ``server_ids``
(list of int; empty for the best by latency among the nearest), ``secure`` (bool),
``timeout`` (seconds per blocking socket operation), ``source_address`` (str or null)
and ``library_path`` (the folder speedtest-cli is installed in, or null).

The answer is one JSON object on one line of standard output, written with
``os.write`` to file descriptor 1. speedtest-cli is imported while ``sys.stdout`` and
``sys.stderr`` are text buffers without a file descriptor: given real ones it wraps
descriptors 1 and 2 in ``FileIO`` objects that close them when collected, which would
race with the answer. Nothing else writes to standard output. The answer's ``type``:

* ``"measurement"``: ``download_mbps``, ``upload_mbps``, ``ping_ms``,
  ``bytes_received``, ``bytes_sent``, ``server`` (``id``, ``name``, ``sponsor``,
  ``country``, ``distance_km``) and ``isp``. The client's IP address is never written.
* ``"failure"``: ``kind`` (a speedtest_client.FailureKind value), ``reason`` (short
  English, without addresses), ``bytes_received`` and ``bytes_sent`` used anyway.
* ``"reachable"`` (probe) and ``"servers"`` with ``servers``, nearest first.

speedtest-cli hides many failures: a download that fails counts 0 bytes, an upload
answered with an HTTP error counts as sent, dead latency probes still choose a server
with a ping of 1,800,000 ms, a stopped test returns numbers from partial data, and some
failures escape as bare TimeoutError, ConnectionResetError, NameError or KeyError. This
runner watches every request the library makes and reports a typed failure instead of
numbers that would look like a slow line.

SIGTERM and SIGINT set the shutdown flag speedtest-cli polls. The test runs in a daemon
thread (the library's own threads inherit that), so the main thread can answer
``cancelled`` and exit at once even while the library is blocked in a socket call it
does not interrupt.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
import functools
import gzip
import http.client
import io
import json
import math
import os
import re
import signal
import ssl
import sys
import threading
from types import FrameType
from typing import Any, Final
import urllib.error
import urllib.parse
import urllib.request
import warnings

# The failure kinds, as speedtest_client.FailureKind spells them.
SERVICE_UNAVAILABLE: Final = "service_unavailable"
NO_SERVER: Final = "no_server"
CONNECTION: Final = "connection"
TIMEOUT: Final = "timeout"
INVALID_RESULT: Final = "invalid_result"
CANCELLED: Final = "cancelled"

# speedtest-cli counts a latency probe that failed as 3600 s and reports half the mean
# of three probes: one dead probe adds 600,000 ms, three make 1,800,000 ms.
ONE_PROBE_DEAD_MS: Final = 3600 / 3 / 2 * 1000
ALL_PROBES_DEAD_MS: Final = 3 * ONE_PROBE_DEAD_MS
# Servers near the best one whose hosts a measurement names for the connectivity watch.
NEARBY_HOSTS_KEPT: Final = 2
# How often the main thread looks at the shutdown flag, and how long the test then gets
# to notice it and report the data it used before the answer goes out without it.
POLL_INTERVAL: Final = 0.05
STOP_GRACE: Final = 0.3
IMAGE_PATH: Final = re.compile(r"/random\d+x\d+\.jpg$")


class ShutdownEvent(threading.Event):
    """The flag speedtest-cli polls, under the deprecated name it still calls."""

    # Event.isSet warns on every call on 3.14; with warnings as errors every download
    # thread would die and the test "succeed" with 0 bytes.
    isSet = threading.Event.is_set  # noqa: N815 - the name speedtest-cli calls


class Failed(Exception):  # noqa: N818 - reads as "raise Failed(kind, reason)"
    """A test that must not report numbers, and why."""

    def __init__(self, kind: str, reason: str) -> None:
        """Keep the kind and the reason."""
        super().__init__(reason)
        self.kind = kind
        self.reason = reason


class ShortBody(Exception):  # noqa: N818 - names what happened, like IncompleteRead
    """A response body that ended cleanly before its Content-Length."""


@dataclass(frozen=True, slots=True)
class Problem:
    """What went wrong with one request: the kind it stands for, and a detail."""

    kind: str
    detail: str


def root_cause(error: BaseException) -> BaseException:
    """The error below urllib's and speedtest-cli's wrappers."""
    while True:
        if isinstance(error, urllib.error.HTTPError):
            return error
        if isinstance(error, urllib.error.URLError) and isinstance(
            error.reason, BaseException
        ):
            error = error.reason
        elif (
            type(error).__name__ in {"ConfigRetrievalError", "ServersRetrievalError"}
            and error.args
            and isinstance(error.args[0], BaseException)
        ):
            error = error.args[0]
        else:
            return error


def diagnose(error: BaseException) -> Problem:
    """What a failed request says about the line, without any address in it."""
    cause = root_cause(error)
    if isinstance(cause, urllib.error.HTTPError):
        return Problem(SERVICE_UNAVAILABLE, f"HTTP {cause.code}")
    if isinstance(cause, TimeoutError):
        return Problem(TIMEOUT, "timed out")
    if isinstance(cause, ssl.SSLCertVerificationError):
        # An intercepting network or a broken CA store; not a line that is down.
        return Problem(SERVICE_UNAVAILABLE, "certificate not trusted")
    if isinstance(cause, gzip.BadGzipFile):
        return Problem(SERVICE_UNAVAILABLE, "broken gzip body")
    if isinstance(cause, ShortBody | http.client.IncompleteRead):
        return Problem(CONNECTION, "body cut short")
    if isinstance(cause, OSError):
        return Problem(CONNECTION, cause.strerror or type(cause).__name__)
    return Problem(SERVICE_UNAVAILABLE, f"unusable answer ({type(cause).__name__})")


def overall(problems: list[Problem]) -> Problem:
    """One problem for several requests of the same purpose that all failed."""
    # A refusal proves speedtest.net answered; a refused connection beats a timeout.
    priority = {SERVICE_UNAVAILABLE: 0, CONNECTION: 1}
    return min(problems, key=lambda problem: priority.get(problem.kind, 2))


def summary(problems: list[Problem]) -> str:
    """The distinct details of some problems, for a reason."""
    return ", ".join(sorted({problem.detail for problem in problems})[:3])


@dataclass
class Ledger:
    """What every request of the test did, updated live by the library's threads."""

    attempts: Counter[str] = field(default_factory=Counter)
    problems: dict[str, list[Problem]] = field(default_factory=dict)
    downloaded: int = 0
    upload_bodies: list[Any] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def attempt(self, purpose: str, request: urllib.request.Request) -> None:
        """Count a request about to be made."""
        with self.lock:
            self.attempts[purpose] += 1
            if purpose == "upload":
                self.upload_bodies.append(request.data)

    def fail(self, purpose: str, problem: Problem) -> None:
        """Remember a request that failed."""
        with self.lock:
            self.problems.setdefault(purpose, []).append(problem)

    def add_downloaded(self, size: int) -> None:
        """Count download body bytes as speedtest-cli reads them."""
        with self.lock:
            self.downloaded += size

    @property
    def uploaded(self) -> int:
        """Upload body bytes handed to the sockets so far, as speedtest-cli counts."""
        with self.lock:
            bodies = list(self.upload_bodies)
        return sum(sum(body.total) for body in bodies)

    def used(self) -> dict[str, int]:
        """The data used so far."""
        return {"bytes_received": self.downloaded, "bytes_sent": self.uploaded}


class WatchedResponse:
    """A response whose reads are counted, and whose failure reaches the ledger once."""

    def __init__(
        self, response: Any, ledger: Ledger, purpose: str, *, failed: bool
    ) -> None:
        """Wrap `response` of a request made for `purpose` (`failed` if it has)."""
        self._response = response
        self._ledger = ledger
        self._purpose = purpose
        self._failed = failed
        self._received = 0
        # The body length http.client expects: None when unknown, 0 for a 204.
        self._expected: int | None = response.length

    def read(self, size: int = -1) -> bytes:
        """Read from the body, noting a body that broke off."""
        try:
            data: bytes = self._response.read(size)
        except (OSError, http.client.HTTPException) as error:
            self._fail(error)
            raise
        self._received += len(data)
        if self._purpose == "download":
            self._ledger.add_downloaded(len(data))
        # http.client reports a connection closed before Content-Length as a plain end
        # of the body; only the count tells a short body from a whole one.
        if (
            not data
            and size
            and self._expected is not None
            and self._received < self._expected
        ):
            self._fail(ShortBody())
        return data

    def _fail(self, error: BaseException) -> None:
        if not self._failed:
            self._failed = True
            self._ledger.fail(self._purpose, diagnose(error))

    def __getattr__(self, name: str) -> Any:
        """Everything else as the response has it."""
        return getattr(self._response, name)


def watch(opener: Any, ledger: Ledger) -> None:
    """Enter every request speedtest-cli's `opener` makes in the `ledger`."""
    open_request = opener.open

    def watched_open(request: urllib.request.Request, *args: Any) -> Any:
        if request.data is not None:
            purpose = "upload"
        elif IMAGE_PATH.search(urllib.parse.urlsplit(request.full_url).path):
            purpose = "download"
        else:
            purpose = "server list"
        ledger.attempt(purpose, request)
        try:
            response = open_request(request, *args)
        except (OSError, http.client.HTTPException) as error:
            # speedtest-cli's SpeedtestUploadTimeout (the normal end of an upload at
            # its time limit) is neither, so it passes without counting as a failure.
            ledger.fail(purpose, diagnose(error))
            raise
        failed = response.status != 200
        if failed:
            ledger.fail(
                purpose, Problem(SERVICE_UNAVAILABLE, f"HTTP {response.status}")
            )
        return WatchedResponse(response, ledger, purpose, failed=failed)

    # The library looks the method up on every request, so the instance attribute wins.
    opener.open = watched_open


def import_speedtest(library_path: str | None) -> Any:
    """Import speedtest-cli, adapted to run quietly and correctly here."""
    if library_path and library_path not in sys.path:
        # Home Assistant may install requirements into a folder only its own process
        # puts on sys.path.
        sys.path.append(library_path)
    # speedtest-cli's results call datetime.utcnow(), deprecated since 3.12; with
    # warnings as errors Speedtest() would raise it.
    warnings.filterwarnings(
        "ignore",
        message=r"datetime\.datetime\.utcnow\(\) is deprecated",
        category=DeprecationWarning,
    )
    # Without a file descriptor behind them, speedtest-cli keeps these streams instead
    # of wrapping descriptors 1 and 2 in FileIO objects that close them when collected.
    streams = sys.stdout, sys.stderr
    sys.stdout = sys.stderr = io.StringIO()
    try:
        import speedtest  # noqa: PLC0415 - after the streams are swapped
    finally:
        sys.stdout, sys.stderr = streams
    # A gzip body that breaks off while it is read leaves a GzipDecodedResponse whose
    # GzipFile.__init__ never ran; its __del__ would then print an AttributeError.
    # These defaults are what GzipFile.__init__ sets first.
    for name in ("mode", "fileobj", "_buffer"):
        setattr(speedtest.GzipDecodedResponse, name, None)
    return speedtest


class Runner:
    """One operation of speedtest-cli, judged before anything leaves this process."""

    def __init__(
        self, speedtest: Any, arguments: dict[str, Any], shutdown: ShutdownEvent
    ) -> None:
        """Prepare the operation the arguments name."""
        self.speedtest = speedtest
        self.arguments = arguments
        self.shutdown = shutdown
        self.ledger = Ledger()
        timeout = float(arguments["timeout"])
        # speedtest-cli builds latency probes with a fixed 10 s timeout; every other
        # connection gets the configured one explicitly, which a default cannot change.
        for name in ("SpeedtestHTTPConnection", "SpeedtestHTTPSConnection"):
            connection = getattr(speedtest, name)
            setattr(speedtest, name, functools.partial(connection, timeout=timeout))

    def supervise(self) -> dict[str, Any]:
        """Run the operation in a daemon thread and answer, even when stopped."""
        answers: list[dict[str, Any]] = []
        worker = threading.Thread(
            target=lambda: answers.append(self.run()), name="speed test", daemon=True
        )
        worker.start()
        while worker.is_alive() and not self.shutdown.is_set():
            worker.join(POLL_INTERVAL)
        # Stopping: the library checks the flag only between reads, and not at all while
        # it fetches the configuration or probes latency.
        worker.join(STOP_GRACE)
        if answers:
            return answers[0]
        return self.failure(CANCELLED, "the test was stopped")

    def run(self) -> dict[str, Any]:
        """The operation's answer; a failure whatever went wrong."""
        operation = {
            "test": self.run_test,
            "probe": self.probe,
            "servers": self.list_servers,
        }[self.arguments["operation"]]
        try:
            return operation()
        except Failed as failure:
            return self.failure(failure.kind, failure.reason)
        except Exception as error:  # noqa: BLE001 - the parent must get an answer
            # Everything speedtest-cli cannot digest ends here (a server list entry
            # without an id, say); its input came from speedtest.net.
            return self.failure(
                SERVICE_UNAVAILABLE,
                f"speedtest-cli could not use the answer ({type(error).__name__})",
            )

    def failure(self, kind: str, reason: str) -> dict[str, Any]:
        """A failure in the form the parent reads, with the data used so far."""
        return {"type": "failure", "kind": kind, "reason": reason} | self.ledger.used()

    def check_stopped(self) -> None:
        """A stopped test ends here, whatever numbers it has."""
        if self.shutdown.is_set():
            raise Failed(CANCELLED, "the test was stopped")

    # -- operations ----------------------------------------------------------------

    def probe(self) -> dict[str, Any]:
        """Only the configuration: a few kilobytes that tell whether the line is up."""
        self.connect()
        return {"type": "reachable"}

    def list_servers(self) -> dict[str, Any]:
        """The offered servers, nearest first."""
        tester = self.connect()
        self.load_servers(tester, [])
        servers = [
            server_info(server)
            for distance in sorted(tester.servers)
            for server in tester.servers[distance]
        ]
        return {"type": "servers", "servers": servers}

    def run_test(self) -> dict[str, Any]:
        """A whole test: best server, download, upload."""
        tester = self.connect()
        server_ids = [int(server_id) for server_id in self.arguments["server_ids"]]
        self.load_servers(tester, server_ids)
        self.check_stopped()
        best = self.best_server(tester)
        self.check_stopped()
        tester.download()
        self.check_stopped()
        self.judge("download", "downloads", tester.results.bytes_received)
        # Each upload body is built when it is sent: pre-allocating would hold them all
        # in memory at once, ~150 MB with speedtest.net's real configuration.
        tester.upload(pre_allocate=False)
        self.check_stopped()
        self.judge("upload", "uploads", tester.results.bytes_sent)
        results = tester.results
        return {
            "type": "measurement",
            "download_mbps": results.download / 1_000_000,
            "upload_mbps": results.upload / 1_000_000,
            "ping_ms": float(best["latency"]),
            "bytes_received": int(results.bytes_received),
            "bytes_sent": int(results.bytes_sent),
            "server": server_info(best),
            "isp": str(tester.config["client"].get("isp", "")),
            "nearby_hosts": nearby_hosts(tester, best),
        }

    # -- phases --------------------------------------------------------------------

    def connect(self) -> Any:
        """speedtest-cli's tester, once it has read the speedtest.net configuration."""
        try:
            tester = self.speedtest.Speedtest(
                timeout=float(self.arguments["timeout"]),
                secure=bool(self.arguments["secure"]),
                source_address=self.arguments.get("source_address") or None,
                shutdown_event=self.shutdown,
            )
        except Exception as error:  # noqa: BLE001 - bare NameError, KeyError, OSError too
            problem = diagnose(error)
            raise Failed(
                problem.kind, f"speedtest.net configuration: {problem.detail}"
            ) from None
        watch(tester._opener, self.ledger)  # noqa: SLF001 - adapting the library
        return tester

    def load_servers(self, tester: Any, server_ids: list[int]) -> None:
        """Load the server list, keeping only `server_ids` if any are given."""
        try:
            tester.get_servers(servers=list(server_ids))
        except self.speedtest.NoMatchedServers:
            pass  # judged below: the list may not have arrived at all
        except self.speedtest.SpeedtestServersError:
            raise Failed(SERVICE_UNAVAILABLE, "server list: malformed") from None
        except (OSError, http.client.HTTPException) as error:
            # A gzip body that broke off escapes speedtest-cli unwrapped.
            problem = diagnose(error)
            raise Failed(problem.kind, f"server list: {problem.detail}") from None
        if tester.servers:
            return
        problems = self.ledger.problems.get("server list", [])
        if len(problems) >= self.ledger.attempts["server list"]:
            problem = overall(problems)
            raise Failed(problem.kind, f"server list: {problem.detail}")
        if server_ids:
            wanted = ", ".join(str(server_id) for server_id in server_ids)
            raise Failed(NO_SERVER, f"test server {wanted} is not offered")
        raise Failed(NO_SERVER, "speedtest.net offered no test servers")

    def best_server(self, tester: Any) -> dict[str, Any]:
        """The server with the lowest latency among the nearest, if it answered."""
        try:
            best: dict[str, Any] = tester.get_best_server()
        except (OSError, http.client.HTTPException) as error:
            # A probe that stalls or breaks off while its body is read escapes bare.
            problem = diagnose(error)
            kind = TIMEOUT if problem.kind == TIMEOUT else NO_SERVER
            raise Failed(kind, f"latency probe: {problem.detail}") from None
        ping = float(best["latency"])
        if ping >= ALL_PROBES_DEAD_MS:
            raise Failed(NO_SERVER, "no test server answered the latency probes")
        if ping >= ONE_PROBE_DEAD_MS:
            raise Failed(
                INVALID_RESULT,
                f"latency probes failed in part on every test server ({ping:.0f} ms)",
            )
        return best

    def judge(self, purpose: str, plural: str, counted: int) -> None:
        """Refuse the numbers of a phase in which any request failed."""
        if problems := self.ledger.problems.get(purpose):
            attempts = self.ledger.attempts[purpose]
            if all(problem.kind == TIMEOUT for problem in problems):
                raise Failed(TIMEOUT, f"{len(problems)} of {attempts} {plural} stalled")
            raise Failed(
                INVALID_RESULT,
                f"{len(problems)} of {attempts} {plural} failed ({summary(problems)})",
            )
        if counted <= 0:
            raise Failed(INVALID_RESULT, f"no data in {plural}")


def server_info(server: dict[str, Any]) -> dict[str, Any]:
    """The server fields worth keeping."""
    # speedtest-cli computes the distance from the coordinates speedtest.net sends;
    # lat="nan" makes it NaN, which is no distance, not a reason to fail the test.
    distance = float(server.get("d", 0.0))
    return {
        "id": int(server["id"]),
        "name": str(server.get("name", "")),
        "sponsor": str(server.get("sponsor", "")),
        "country": str(server.get("country", "")),
        "distance_km": round(distance, 1) if math.isfinite(distance) else None,
        "host": str(server.get("host", "")),
    }


def nearby_hosts(tester: Any, best: dict[str, Any]) -> list[str]:
    """Hosts of the nearest servers other than the best, from the list already loaded.

    The connectivity watch probes them besides the best server, so that one server's
    maintenance does not look like an outage; no request to speedtest.net is added.
    """
    hosts: list[str] = []
    for server in getattr(tester, "closest", None) or []:
        host = str(server.get("host", ""))
        if host and host != best.get("host") and host not in hosts:
            hosts.append(host)
    return hosts[:NEARBY_HOSTS_KEPT]


def write_answer(answer: dict[str, Any]) -> None:
    """Write the answer to file descriptor 1 in full."""
    data = memoryview(json.dumps(answer).encode() + b"\n")
    while data:
        data = data[os.write(1, data) :]


def main() -> None:
    """Run the operation the arguments name and write its answer."""
    arguments: dict[str, Any] = json.loads(sys.argv[1])
    shutdown = ShutdownEvent()

    def stop(_signal: int, _frame: FrameType | None) -> None:
        shutdown.set()

    # Before the import, so a stop that comes early is not lost.
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    speedtest = import_speedtest(arguments.get("library_path"))
    write_answer(Runner(speedtest, arguments, shutdown).supervise())


if __name__ == "__main__":
    main()
