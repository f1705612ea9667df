"""Child side of a speed test: measure one test, print its answer.

speedtest_client starts this file as a plain script, so it imports nothing from the
integration::

    python -P speedtest_runner.py '<arguments as JSON>'

Arguments: ``operation`` (``"test"``, ``"probe"`` or ``"servers"``), ``server_ids``
(list of int; empty for the best by latency among the nearest), ``secure`` (bool),
``timeout`` (seconds per blocking socket operation), ``source_address`` (str or null)
and ``library_path`` (the folder speedtest-cli is installed in, or null).

speedtest-cli speaks the speedtest.net protocol: the configuration, the server list
and the best server by latency. The transfers are this runner's own engine, using only
the requests speedtest-cli makes (``GET .../random{N}x{N}.jpg``, ``POST .../upload.php``
with its body), through the same proxy environment:

* parallel streams, more of them on a fast line, each asking for requests sized to
  keep it busy for a second or two; a connection is reused while the server keeps it
  open, and a reuse that fails is retried once on a new connection, without reuse;
* the bytes delivered are sampled every 100 ms: for download the bytes the kernel
  received (Linux ``TCP_INFO`` ``tcpi_bytes_received``), and for upload the bytes the
  server acknowledged (``tcpi_bytes_acked``, plus the segments it acknowledged
  selectively beyond a loss, ``tcpi_sacked``), never bytes still in a send buffer.
  Through a proxy or TLS the kernel's counts are the proxy's or include the
  encryption, and elsewhere there are none: there download counts the body bytes read
  and upload only the server's ``size=N``;
* a direction stops once two consecutive 1.5 s windows agree within 4 % for half a
  second, and reports the rate over those windows: the ramp-up never counts. Hard
  limits: the configuration's test length (4 to 8 s) and 500 MB per direction;
* ping is the median of 10 latency probes to the chosen server, made as speedtest-cli
  makes them (half of connect plus request: about one round trip); jitter is the mean
  absolute difference of consecutive probes; latency under load is the median of
  probes made every 250 ms while each direction runs.

The answer is one JSON object on one line of standard output, written with
``os.write`` to file descriptor 1. speedtest-cli is imported while ``sys.stdout`` and
``sys.stderr`` are text buffers without a file descriptor: given real ones it wraps
descriptors 1 and 2 in ``FileIO`` objects that close them when collected, which would
race with the answer. Nothing else writes to standard output. The answer's ``type``:

* ``"measurement"``: ``download_mbps``, ``upload_mbps``, ``ping_ms``, ``jitter_ms``,
  ``ping_samples``, ``download_latency_ms`` and ``upload_latency_ms`` (null if no
  probe answered under load), ``bytes_received``, ``bytes_sent``, ``server`` (``id``,
  ``name``, ``sponsor``, ``country``, ``distance_km``), ``isp`` and
  ``interface_use``: the address the test's connections went to (``peer``: the
  server's or the proxy's) and per direction the text of ``/proc/net/dev`` before and
  after it (``before``, ``after``; null where unreadable), the ``seconds`` between
  them and the ``test_bytes`` the test's connections moved on the wire that way. The
  client's IP address is never written.
* ``"failure"``: ``kind`` (a speedtest_client.FailureKind value), ``reason`` (short
  English, without addresses), ``bytes_received`` and ``bytes_sent`` used anyway.
* ``"reachable"`` (probe) and ``"servers"`` with ``servers``, nearest first.

speedtest-cli hides many failures: dead latency probes still choose a server with a
ping of 1,800,000 ms, and some failures escape as bare TimeoutError,
ConnectionResetError, NameError or KeyError. This runner watches the requests the
library makes and reports a typed failure instead. In the engine any request that
fails ends the direction: an HTTP error, a body cut short or reset, or a server that
stops answering (a stream that goes quiet is waited for until its socket timeout, so
a stall is a timeout, never a low number).

SIGTERM and SIGINT set the shutdown flag speedtest-cli and the engine poll. The test
runs in a daemon thread, so the main thread can answer ``cancelled`` and exit at once
even while the library is blocked in a socket call it does not interrupt.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
import contextlib
from dataclasses import dataclass, field
import functools
import gzip
import http.client
import io
import itertools
import json
import math
import os
from pathlib import Path
import platform
import re
import signal
import socket
import ssl
import struct
import sys
import threading
import time
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
    """What the test's requests did and used, updated live by their threads."""

    attempts: Counter[str] = field(default_factory=Counter)
    problems: dict[str, list[Problem]] = field(default_factory=dict)
    downloaded: int = 0
    uploaded: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def attempt(self, purpose: str) -> None:
        """Count a request about to be made."""
        with self.lock:
            self.attempts[purpose] += 1

    def fail(self, purpose: str, problem: Problem) -> None:
        """Remember a request that failed."""
        with self.lock:
            self.problems.setdefault(purpose, []).append(problem)

    def used(self) -> dict[str, int]:
        """The data used so far: body bytes read, and upload bytes delivered."""
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
        # Only the server list: the configuration is read in the constructor, before
        # this is in place, and the transfers are the engine's own.
        purpose = "server list"
        ledger.attempt(purpose)
        try:
            response = open_request(request, *args)
        except (OSError, http.client.HTTPException) as error:
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


# -- measurement engine ------------------------------------------------------------

# Rates are judged on samples of delivered bytes taken this often.
SAMPLE_INTERVAL: Final = 0.1
# The longest a sample may take to read; a slower one is left out.
SAMPLE_SKEW: Final = 0.005
# The recent rate, for sizing streams and requests, is the rate over this long.
RATE_WINDOW: Final = 1.0
# A direction is steady when the rates of two such consecutive windows differ by no
# more than STEADY_TOLERANCE. Shorter windows are too coarse: a window holds whole
# reads and whole paced writes, ±10 % of 1 s at 40 Mbit/s.
STEADY_WINDOW: Final = 1.5
STEADY_TOLERANCE: Final = 0.04
# ... at this many samples in a row, so that noise does not pass for a plateau.
STEADY_SAMPLES: Final = 5
# Hard limits of one direction, whatever the line does. Two directions that never
# settle, plus the configuration, the server choice and the pings (about 5 s at 50 ms
# round trip on a busy machine), stay within 25 s per test; 10 s did not.
MAX_DIRECTION_SECONDS: Final = 8.0
# The configuration's test length (real: 10 s) applies, but never more than the limit
# above nor less than this: the steady part of a shorter direction would be too short
# to judge.
MIN_DIRECTION_SECONDS: Final = 4.0
MAX_DIRECTION_BYTES: Final = 500_000_000
# Parallel connections: a few to begin with, more when each carries a lot; one TCP
# connection on a long path cannot fill a fast line on its own.
FIRST_STREAMS: Final = 4
MAX_STREAMS: Final = 8
BITS_PER_STREAM: Final = 50_000_000
# How long one request should keep a connection busy at the rate seen so far: long
# enough that a new request (and without keep-alive a new slow start) costs little.
DOWNLOAD_REQUEST_SECONDS: Final = 2.0
UPLOAD_REQUEST_SECONDS: Final = 1.0
# Image sides speedtest-cli asks for, and the bytes real servers send for each.
IMAGE_BYTES: Final = {
    350: 245388,
    500: 505544,
    750: 1118012,
    1000: 1986284,
    1500: 4468241,
    2000: 7907740,
    2500: 12407926,
    3000: 17816816,
    3500: 24262167,
    4000: 31625365,
}
FIRST_IMAGE: Final = 750
# Upload sizes speedtest-cli may send, and its body: "content1=" and this text repeated.
UPLOAD_SIZES: Final = (32768, 65536, 131072, 262144, 524288, 1048576, 7340032)
FIRST_UPLOAD: Final = 262144
UPLOAD_TEXT: Final = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
# Uploads are handed to the socket in pieces, so a stop is noticed within one piece.
SEND_PIECE: Final = 256 * 1024
READ_BUFFER: Final = 64 * 1024
# Linux's struct tcp_info: the 64-bit fields tcpi_bytes_acked and tcpi_bytes_received,
# at these offsets; the first counts upload, the second download.
TCP_INFO_SIZE: Final = 232
KERNEL_COUNT_OFFSET: Final = {"upload": 120, "download": 128}
# ... and the 32-bit tcpi_snd_mss and tcpi_sacked: the segment size, and the segments
# the peer has received beyond a gap left by a loss (selective acknowledgement).
SEND_SEGMENT_OFFSET: Final = 16
SACKED_SEGMENTS_OFFSET: Final = 28
# What a connection put on the wire, for the host's other traffic: tcpi_bytes_sent
# (retransmissions included, Linux 4.19+) for upload, tcpi_bytes_received for download.
WIRE_COUNT_OFFSET: Final = {"upload": 200, "download": 128}
# The host's interface counters, read before and after each direction; the parent
# finds the interface that carried the test and parses them (traffic.py).
PROC_NET_DEV: Final = Path("/proc/net/dev")
PROC_NET_DEV_LIMIT: Final = 256 * 1024
# Latency: samples before the transfers, and how often during them.
PING_SAMPLES: Final = 10
LOADED_LATENCY_INTERVAL: Final = 0.25
# A stream that delivered nothing for this long is waited for at the end of a direction.
SILENCE: Final = 0.5


def upload_body() -> memoryview:
    """The largest body speedtest-cli sends; every smaller one is a prefix of it."""
    size = UPLOAD_SIZES[-1]
    text = UPLOAD_TEXT * (size // len(UPLOAD_TEXT) + 1)
    return memoryview((b"content1=" + text)[:size])


def kernel_count(sock: socket.socket, purpose: str) -> int | None:
    """Bytes the peer has received (upload) or the kernel received (download).

    Where the kernel tells (Linux): it counts what crossed the line, whether or not a
    busy process has read it yet, and never what still waits in a send buffer.
    """
    info = tcp_info(sock)
    if info is None:
        return None
    count = tcp_info_field(info, KERNEL_COUNT_OFFSET[purpose], 8)
    if purpose == "download" or count is None:
        return count
    # After a loss the acknowledged count stands still until the gap is filled, then
    # jumps by everything that arrived meanwhile: a window that begins during the gap
    # would be credited with bytes that crossed the line before it (up to 1.8 % too
    # much at 50 Mbit/s). The segments received beyond the gap count when they arrive.
    segment = tcp_info_field(info, SEND_SEGMENT_OFFSET, 4)
    beyond_gap = tcp_info_field(info, SACKED_SEGMENTS_OFFSET, 4)
    if segment is None or beyond_gap is None:
        return count
    return count + beyond_gap * segment


def wire_count(sock: socket.socket, purpose: str) -> int | None:
    """Bytes the connection sent (retransmissions too) or received, TLS included."""
    info = tcp_info(sock)
    return None if info is None else tcp_info_field(info, WIRE_COUNT_OFFSET[purpose], 8)


def tcp_info(sock: socket.socket) -> bytes | None:
    """Linux's struct tcp_info of a connection; None where the kernel has none."""
    option = getattr(socket, "TCP_INFO", None)
    if option is None:
        return None
    try:
        return sock.getsockopt(socket.IPPROTO_TCP, option, TCP_INFO_SIZE)
    except OSError:
        return None


def tcp_info_field(info: bytes, offset: int, size: int) -> int | None:
    """An unsigned field of struct tcp_info; None where this kernel's is shorter."""
    if len(info) < offset + size:
        return None
    return int.from_bytes(info[offset : offset + size], "little")


def read_interface_counters() -> str | None:
    """The text of the host's interface counters; None where there are none."""
    try:
        with PROC_NET_DEV.open(encoding="ascii", errors="replace") as counters:
            return counters.read(PROC_NET_DEV_LIMIT)
    except OSError:
        return None


def windowed_rate(samples: list[tuple[float, int]], end: float, window: float) -> float:
    """Bytes per second delivered in (end - window, end], from interpolated samples."""
    return (delivered_at(samples, end) - delivered_at(samples, end - window)) / window


def delivered_at(samples: list[tuple[float, int]], moment: float) -> float:
    """Bytes delivered by `moment`, interpolated between the samples around it."""
    earlier = (samples[0][0], float(samples[0][1]))
    for when, count in samples:
        if when >= moment:
            span = when - earlier[0]
            if span <= 0:
                return float(count)
            return earlier[1] + (count - earlier[1]) * (moment - earlier[0]) / span
        earlier = (when, float(count))
    return earlier[1]


def steady_rate(samples: list[tuple[float, int]], since: float) -> float | None:
    """The rate once it stopped changing, judged on samples after `since`.

    Steady: the rates of the last two windows differ by no more than the tolerance.
    A ramp still under way makes the later window faster, so it is never taken for
    the line's rate; the figure is the rate over both windows.
    """
    end = samples[-1][0]
    if end - 2 * STEADY_WINDOW < since:
        return None
    later = windowed_rate(samples, end, STEADY_WINDOW)
    earlier = windowed_rate(samples, end - STEADY_WINDOW, STEADY_WINDOW)
    if min(later, earlier) <= 0:
        return None
    if max(later, earlier) > min(later, earlier) * (1 + STEADY_TOLERANCE):
        return None
    return (later + earlier) / 2


def late_rate(samples: list[tuple[float, int]], since: float) -> float:
    """For a direction that never became steady: the rate over its second half."""
    end = samples[-1][0]
    span = (end - since) / 2
    return windowed_rate(samples, end, span) if span > 0 else 0.0


def median(values: list[float]) -> float:
    """The middle value (the mean of the middle two)."""
    ordered = sorted(values)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return (ordered[middle - 1] + ordered[middle]) / 2


def jitter(samples: list[float]) -> float:
    """Mean absolute difference between consecutive samples."""
    steps = [abs(later - earlier) for earlier, later in itertools.pairwise(samples)]
    return sum(steps) / len(steps) if steps else 0.0


@dataclass(frozen=True, slots=True)
class Route:
    """How to reach a test server: directly, or through the environment's proxy."""

    url: urllib.parse.SplitResult
    proxy: urllib.parse.SplitResult | None
    source_address: str | None
    timeout: float

    @classmethod
    def to(cls, url: str, source_address: str | None, timeout: float) -> Route:
        """The route speedtest-cli's opener takes to `url` (proxy environment)."""
        parts = urllib.parse.urlsplit(url)
        proxy_url = urllib.request.getproxies().get(parts.scheme)
        if proxy_url and urllib.request.proxy_bypass(parts.hostname or ""):
            proxy_url = None
        proxy = urllib.parse.urlsplit(proxy_url) if proxy_url else None
        return cls(parts, proxy, source_address, timeout)

    def target(self, path: str) -> str:
        """What the request line names: an absolute URI for a plain-HTTP proxy."""
        if self.proxy is not None and self.url.scheme == "http":
            return f"http://{self.url.netloc}{path}"
        return path

    def connect(self) -> socket.socket:
        """A new connection to the server (or to the proxy)."""
        hop = self.proxy or self.url
        default_port = 443 if hop.scheme == "https" else 80
        sock = socket.create_connection(
            (hop.hostname or "", hop.port or default_port),
            self.timeout,
            (self.source_address, 0) if self.source_address else None,
        )
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.url.scheme != "https":
            return sock
        if self.proxy is not None:
            port = self.url.port or 443
            sock.sendall(
                f"CONNECT {self.url.hostname}:{port} HTTP/1.1\r\n"
                f"Host: {self.url.hostname}:{port}\r\n\r\n".encode()
            )
            reply = http.client.HTTPResponse(sock, method="CONNECT")
            reply.begin()
            if reply.status != 200:
                sock.close()
                raise urllib.error.HTTPError(
                    self.url.geturl(), reply.status, "proxy refused", reply.msg, None
                )
        return ssl.create_default_context().wrap_socket(
            sock, server_hostname=self.url.hostname
        )

    @property
    def counts_in_kernel(self) -> bool:
        """Whether the socket's own counts are bytes exchanged with the server.

        Through a proxy, or inside TLS, they count the proxy's acknowledgements or the
        encryption too; then upload counts only the server's ``size=N``, and download
        the body bytes read.
        """
        return (
            self.proxy is None
            and self.url.scheme == "http"
            and hasattr(socket, "TCP_INFO")
        )


def request_head(route: Route, method: str, path: str, extra: str = "") -> bytes:
    """A request's head, as speedtest-cli would send it but for keep-alive."""
    return (
        f"{method} {route.target(path)} HTTP/1.1\r\n"
        f"Host: {route.url.netloc}\r\n"
        f"User-Agent: {USER_AGENT}\r\n"
        "Cache-Control: no-cache\r\n"
        f"{extra}\r\n"
    ).encode()


USER_AGENT: Final = (
    f"Mozilla/5.0 ({platform.system()}; U; 64bit; en-us) "
    f"Python/{platform.python_version()} (KHTML, like Gecko) speedtest-cli/2.1.3"
)


class StreamEnded(Exception):  # noqa: N818 - the normal end of a stream, not an error
    """The direction is over; the stream leaves quietly."""


class Stream(threading.Thread):
    """One connection's worth of transfers, counting what it delivered."""

    def __init__(self, direction: Direction, index: int) -> None:
        """A stream of `direction`; its requests are numbered from `index`."""
        super().__init__(name=f"{direction.purpose} {index}", daemon=True)
        self.direction = direction
        self.index = index
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None
        self._counted = 0
        self._kernel_base = 0
        self._kernel_start = 0
        self._wire_base = 0
        self._wire_known = True
        self._answered = False
        self.keep_alive = True
        # Kept by the sampler: when the stream last delivered anything.
        self.last_count = 0
        self.last_progress = time.monotonic()

    # -- what the sampler reads ----------------------------------------------------

    def delivered(self) -> int:
        """Bytes delivered so far, as the kernel counts them where it can."""
        with self._lock:
            if self.direction.by_kernel:
                return self._kernel_base + self._kernel_now()
            return self._counted

    def used(self) -> int:
        """Body bytes moved: read (download) or delivered (upload)."""
        if self.direction.purpose == "download":
            with self._lock:
                return self._counted
        return self.delivered()

    def wire(self) -> int | None:
        """Bytes this stream's connections moved on the wire; None where unknown."""
        with self._lock:
            if self._sock is None:
                return self._wire_base if self._wire_known else None
            count = wire_count(self._sock, self.direction.purpose)
            if count is None or not self._wire_known:
                return None
            return self._wire_base + count

    def _kernel_now(self) -> int:
        """What the open connection delivered (the lock is held)."""
        if self._sock is None:
            return 0
        count = kernel_count(self._sock, self.direction.purpose)
        return max(0, count - self._kernel_start) if count is not None else 0

    def abort(self) -> None:
        """Wake the stream from any blocking call, dropping unsent data."""
        with self._lock:
            if self._sock is not None:
                with contextlib.suppress(OSError):
                    self._sock.setsockopt(
                        socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                    )
                    self._sock.shutdown(socket.SHUT_RDWR)

    # -- the stream's own thread ---------------------------------------------------

    def run(self) -> None:
        """Transfer until the direction ends or something fails."""
        direction = self.direction
        try:
            while not direction.stopping.is_set():
                if not self.transfer_once():
                    return
        except StreamEnded:
            pass
        except (OSError, http.client.HTTPException, ShortBody) as error:
            if not direction.stopping.is_set():
                direction.fail(diagnose(error))
        finally:
            self.close()

    def transfer_once(self) -> bool:
        """One request, on the open connection if the server keeps it; go on?"""
        fresh = self._sock is None
        self._answered = False
        if fresh:
            self.open()
        try:
            return self.exchange()
        except http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError:
            if fresh or self.direction.stopping.is_set() or self._answered:
                raise
            # The server closed a connection it had kept open: the request never
            # reached it. Once more on a new connection, and no reuse from now on.
            self.keep_alive = False
            self.close()
            self.open()
            return self.exchange()

    def open(self) -> None:
        """A new connection, visible to the sampler."""
        sock = self.direction.route.connect()
        self.direction.note_peer(sock)
        with self._lock:
            self._sock = sock
            # Linux counts the SYN as one acknowledged byte: the count starts here.
            self._kernel_start = kernel_count(sock, self.direction.purpose) or 0
        if self.direction.stopping.is_set():
            raise StreamEnded

    def close(self) -> None:
        """Close the connection, keeping what it delivered."""
        with self._lock:
            sock = self._sock
            if sock is None:
                return
            self._kernel_base += self._kernel_now()
            wire = wire_count(sock, self.direction.purpose)
            self._wire_known = self._wire_known and wire is not None
            self._wire_base += wire or 0
            self._sock = None
            sock.close()

    @property
    def sock(self) -> socket.socket:
        """The open connection; a stream that has none left is over."""
        if self._sock is None:
            raise StreamEnded
        return self._sock

    def send(self, data: bytes | memoryview) -> None:
        """Hand `data` to the connection, a piece at a time, while the test runs."""
        sock = self.sock
        view = memoryview(data)
        for start in range(0, len(view), SEND_PIECE):
            if self.direction.stopping.is_set():
                raise StreamEnded
            sock.sendall(view[start : start + SEND_PIECE])

    def response(self, method: str) -> http.client.HTTPResponse:
        """The server's answer to the request just sent."""
        response = http.client.HTTPResponse(self.sock, method=method)
        response.begin()
        self._answered = True
        if response.status != 200:
            response.close()
            self.direction.fail(Problem(SERVICE_UNAVAILABLE, f"HTTP {response.status}"))
            raise StreamEnded
        return response

    def finish(self, response: http.client.HTTPResponse) -> None:
        """Done with a response: keep the connection only if both sides may."""
        response.close()
        if response.will_close or not self.keep_alive:
            self.close()

    def exchange(self) -> bool:
        """One request and its answer; whether the stream should go on."""
        raise NotImplementedError


class DownloadStream(Stream):
    """Fetches images, as speedtest-cli does, and counts the body bytes read."""

    def exchange(self) -> bool:
        """One image; an empty one ends the stream (nothing to measure there)."""
        direction = self.direction
        side = direction.next_image(self)
        number = direction.next_request()
        path = f"{direction.folder}/random{side}x{side}.jpg?x={cache_buster()}.{number}"
        close = "" if self.keep_alive else "Connection: close\r\n"
        self.sock.sendall(request_head(direction.route, "GET", path, close))
        response = self.response("GET")
        buffer = memoryview(bytearray(READ_BUFFER))
        received = 0
        while not direction.stopping.is_set():
            size = response.readinto(buffer)
            if not size:
                break
            received += size
            with self._lock:
                self._counted += size
        if direction.stopping.is_set():
            raise StreamEnded
        if response.length is not None and response.length > 0:
            raise ShortBody
        self.finish(response)
        return received > 0


class UploadStream(Stream):
    """Posts prebuilt bodies, as speedtest-cli does, and counts what arrived."""

    def exchange(self) -> bool:
        """One upload; the server's ``size=N`` confirms it."""
        direction = self.direction
        size = direction.next_upload(self)
        path = f"{direction.route.url.path}?x={cache_buster()}.0"
        extra = (
            f"Content-Length: {size}\r\n"
            "Content-Type: application/x-www-form-urlencoded\r\n"
            + ("" if self.keep_alive else "Connection: close\r\n")
        )
        head = request_head(direction.route, "POST", path, extra)
        self.sock.sendall(head)
        with self._lock:
            # Request heads are acknowledged too; only bodies count.
            self._kernel_start += len(head)
        self.send(direction.body[:size])
        response = self.response("POST")
        reply = response.read(64)
        match = re.match(rb"size=(\d+)", reply)
        confirmed = min(int(match.group(1)), size) if match else size
        with self._lock:
            if not direction.by_kernel:
                self._counted += confirmed
        self.finish(response)
        return True


def cache_buster() -> str:
    """speedtest-cli's ``x=<unix ms>``."""
    return str(int(time.time() * 1000))


@dataclass
class DirectionResult:
    """What one direction measured."""

    bits_per_second: float
    delivered: int
    latencies_ms: list[float]
    interface: dict[str, Any] = field(default_factory=dict)
    """The host's interface counters around the direction (see interface_use)."""
    peer: str | None = None


class Direction:
    """One direction of the test: streams, samples, the steady rate."""

    def __init__(
        self,
        purpose: str,
        route: Route,
        *,
        time_limit: float,
        shutdown: threading.Event,
        body: memoryview,
        latency: Callable[[], float | None],
    ) -> None:
        """Measure `purpose` ("download" or "upload") over `route`."""
        self.purpose = purpose
        self.route = route
        self.time_limit = min(
            max(time_limit, MIN_DIRECTION_SECONDS), MAX_DIRECTION_SECONDS
        )
        self.shutdown = shutdown
        self.body = body
        self.latency = latency
        self.folder = route.url.path.rpartition("/")[0]
        self.by_kernel = route.counts_in_kernel
        self.stopping = threading.Event()
        self.problems: list[Problem] = []
        self.attempts = 0
        self.streams: list[Stream] = []
        self.samples: list[tuple[float, int]] = []
        self._lock = threading.Lock()
        self._per_stream_rate = 0.0
        self.peer: str | None = None

    def note_peer(self, sock: socket.socket) -> None:
        """Keep the address the test's connections go to.

        Its route names the interface whose counters tell the host's other traffic.
        """
        if self.peer is None:
            with contextlib.suppress(OSError):
                self.peer = str(sock.getpeername()[0])

    def wire(self) -> int | None:
        """Bytes all streams moved on the wire; None where the kernel cannot tell."""
        counts = [stream.wire() for stream in self.streams]
        if any(count is None for count in counts):
            return None
        return sum(count for count in counts if count is not None)

    def fail(self, problem: Problem) -> None:
        """A request failed: the direction ends, its numbers are refused."""
        with self._lock:
            self.problems.append(problem)
        self.stopping.set()

    def next_request(self) -> int:
        """Count a request; its number."""
        with self._lock:
            self.attempts += 1
            return self.attempts - 1

    def next_image(self, stream: Stream) -> int:
        """The image side that keeps a connection busy for about its target time."""
        wanted = self._per_stream_rate * DOWNLOAD_REQUEST_SECONDS
        fitting = [side for side, size in IMAGE_BYTES.items() if size <= wanted]
        return max([FIRST_IMAGE, *fitting])

    def next_upload(self, stream: Stream) -> int:
        """The upload size that keeps a connection busy for about its target time."""
        self.next_request()
        wanted = self._per_stream_rate * UPLOAD_REQUEST_SECONDS
        if self.by_kernel:
            # A stream is idle for a round trip after each body while it waits for the
            # server's answer, so the body rounds up: between 1 and 7 MiB there is no
            # size, and 1 MiB would leave a fast stream idle a tenth of its time.
            larger = [size for size in UPLOAD_SIZES if size >= wanted]
            return max(FIRST_UPLOAD, larger[0] if larger else UPLOAD_SIZES[-1])
        # Counted only when the server confirms a whole body: smaller bodies give the
        # samples a finer grain.
        wanted /= 4
        return max([FIRST_UPLOAD, *(size for size in UPLOAD_SIZES if size <= wanted)])

    def delivered(self) -> int:
        """Bytes delivered by all streams."""
        return sum(stream.delivered() for stream in self.streams)

    def sample(self) -> int:
        """Take a sample of the bytes delivered, noting which streams moved.

        A sample is kept only if it was taken at one moment: on a busy machine this
        thread may be preempted while it reads the counts, and a count newer than its
        time stamp would show a rate above the line's.
        """
        before = time.monotonic()
        counts = [stream.delivered() for stream in self.streams]
        after = time.monotonic()
        for stream, delivered in zip(self.streams, counts, strict=True):
            if delivered != stream.last_count:
                stream.last_count = delivered
                stream.last_progress = after
        total = sum(counts)
        if after - before <= SAMPLE_SKEW:
            self.samples.append(((before + after) / 2, total))
        return total

    def add_streams(self, count: int) -> None:
        """Start more streams."""
        kind = DownloadStream if self.purpose == "download" else UploadStream
        for _ in range(count):
            stream = kind(self, len(self.streams))
            self.streams.append(stream)
            stream.start()

    def run(self, report: Callable[[int], None]) -> DirectionResult:
        """Measure until steady or a limit; `report` gets the bytes used as they go."""
        latencies: list[float] = []
        prober = threading.Thread(
            target=self.probe_latency, args=(latencies,), daemon=True
        )
        counters_before = read_interface_counters()
        start = time.monotonic()
        self.samples = [(start, 0)]
        self.add_streams(FIRST_STREAMS)
        prober.start()
        since = start
        rate: float | None = None
        steady_ticks = 0
        try:
            while True:
                self.stopping.wait(SAMPLE_INTERVAL)
                delivered = self.sample()
                now = time.monotonic()
                report(sum(stream.used() for stream in self.streams))
                if self.stopping.is_set() or self.shutdown.is_set():
                    break
                if not any(stream.is_alive() for stream in self.streams):
                    break
                over = (
                    now - start >= self.time_limit or delivered >= MAX_DIRECTION_BYTES
                )
                if rate is None and not over:
                    recent = windowed_rate(
                        self.samples, now, min(RATE_WINDOW, now - start)
                    )
                    self._per_stream_rate = recent / len(self.streams)
                    wanted = min(MAX_STREAMS, math.ceil(recent * 8 / BITS_PER_STREAM))
                    if wanted > len(self.streams):
                        self.add_streams(wanted - len(self.streams))
                        since = now  # the new streams ramp up from here
                        continue
                    steady = steady_rate(self.samples, since)
                    steady_ticks = steady_ticks + 1 if steady is not None else 0
                    if steady_ticks < STEADY_SAMPLES:
                        continue
                    rate = steady
                # A stream that has gone quiet is not cut off with the others: its
                # own socket timeout tells a server that stopped answering.
                if not any(
                    stream.is_alive() and now - stream.last_progress > SILENCE
                    for stream in self.streams
                ):
                    break
        finally:
            self.stopping.set()
            for stream in self.streams:
                stream.abort()
            for stream in self.streams:
                stream.join()
            prober.join()
        counters_after = read_interface_counters()
        seconds = time.monotonic() - start
        used = sum(stream.used() for stream in self.streams)
        report(used)
        if rate is None:
            rate = late_rate(self.samples, since)
        wire = self.wire()
        interface = {
            "before": counters_before,
            "after": counters_after,
            "seconds": seconds,
            # Where the kernel cannot tell, the payload is the best there is.
            "test_bytes": used if wire is None else wire,
        }
        return DirectionResult(rate * 8, used, latencies, interface, self.peer)

    def probe_latency(self, latencies: list[float]) -> None:
        """Latency samples while the streams run."""
        while not self.stopping.wait(LOADED_LATENCY_INTERVAL):
            sample = self.latency()
            if sample is not None and not self.stopping.is_set():
                latencies.append(sample)


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
        """A whole test: best server, latency, download, upload."""
        tester = self.connect()
        server_ids = [int(server_id) for server_id in self.arguments["server_ids"]]
        self.load_servers(tester, server_ids)
        self.check_stopped()
        best = self.best_server(tester)
        self.check_stopped()
        # Built before any clock runs: building bodies while sending costs the CPU
        # the measurement needs.
        body = upload_body()
        pings = self.ping(best)
        self.check_stopped()
        download = self.measure("download", best, tester.config, body)
        self.check_stopped()
        upload = self.measure("upload", best, tester.config, body)
        self.check_stopped()
        return {
            "type": "measurement",
            "download_mbps": download.bits_per_second / 1_000_000,
            "upload_mbps": upload.bits_per_second / 1_000_000,
            "ping_ms": round(median(pings), 3),
            "jitter_ms": round(jitter(pings), 3),
            "ping_samples": len(pings),
            "download_latency_ms": loaded_latency(download),
            "upload_latency_ms": loaded_latency(upload),
            "bytes_received": download.delivered,
            "bytes_sent": upload.delivered,
            "server": server_info(best),
            "isp": str(tester.config["client"].get("isp", "")),
            "nearby_hosts": nearby_hosts(tester, best),
            "interface_use": {
                "peer": download.peer or upload.peer,
                "download": download.interface,
                "upload": upload.interface,
            },
        }

    def ping(self, server: dict[str, Any]) -> list[float]:
        """Latency samples to the chosen server, one after the other."""
        samples: list[float] = []
        for _ in range(PING_SAMPLES):
            if self.shutdown.is_set():
                break
            sample = self.latency_sample(server)
            if sample is not None:
                samples.append(sample)
        if len(samples) < PING_SAMPLES // 2:
            self.check_stopped()
            raise Failed(
                NO_SERVER,
                f"the test server answered {len(samples)} of {PING_SAMPLES} "
                "latency probes",
            )
        return samples

    def latency_sample(self, server: dict[str, Any]) -> float | None:
        """One latency probe as speedtest-cli makes it: half of connect plus request.

        A new connection, straight to the server (latency probes ignore proxies), so
        the figure means what speedtest-cli's ping means: about one round trip.
        """
        url = urllib.parse.urlsplit(server["url"])
        folder = url.path.rpartition("/")[0]
        source = self.arguments.get("source_address")
        kind = (
            http.client.HTTPSConnection
            if url.scheme == "https"
            else http.client.HTTPConnection
        )
        connection = kind(
            url.netloc,
            timeout=float(self.arguments["timeout"]),
            source_address=(source, 0) if source else None,
        )
        started = time.perf_counter()
        try:
            connection.request(
                "GET",
                f"{folder}/latency.txt?x={cache_buster()}",
                headers={"User-Agent": USER_AGENT},
            )
            response = connection.getresponse()
            answer = response.read(9)
        except OSError, http.client.HTTPException:
            return None
        finally:
            connection.close()
        if response.status != 200 or answer != b"test=test":
            return None
        return (time.perf_counter() - started) / 2 * 1000

    def measure(
        self, purpose: str, server: dict[str, Any], config: dict[str, Any], body: Any
    ) -> DirectionResult:
        """One direction with the engine, judged before its figure is used."""
        route = Route.to(
            server["url"],
            self.arguments.get("source_address") or None,
            float(self.arguments["timeout"]),
        )
        length = config["length"]["download" if purpose == "download" else "upload"]
        direction = Direction(
            purpose,
            route,
            time_limit=float(length),
            shutdown=self.shutdown,
            body=body,
            latency=functools.partial(self.latency_sample, server),
        )

        def report(delivered: int) -> None:
            if purpose == "download":
                self.ledger.downloaded = delivered
            else:
                self.ledger.uploaded = delivered

        result = direction.run(report)
        self.check_stopped()
        plural = f"{purpose}s"
        if problems := direction.problems:
            attempts = direction.attempts
            if all(problem.kind == TIMEOUT for problem in problems):
                raise Failed(TIMEOUT, f"{len(problems)} of {attempts} {plural} stalled")
            raise Failed(
                INVALID_RESULT,
                f"{len(problems)} of {attempts} {plural} failed ({summary(problems)})",
            )
        if result.delivered <= 0 or result.bits_per_second <= 0:
            raise Failed(INVALID_RESULT, f"no data in {plural}")
        return result

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


def loaded_latency(result: DirectionResult) -> float | None:
    """The median latency while a direction ran, if any probe answered."""
    if not result.latencies_ms:
        return None
    return round(median(result.latencies_ms), 3)


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
