"""ISP Watch's runner and unmodified speedtest-cli, side by side on a shaped link.

Run from the repository root, as root (it builds network namespaces):

    .venv/bin/python benchmarks/accuracy.py            # medians of 3 runs
    .venv/bin/python benchmarks/accuracy.py --quick    # one run each
    .venv/bin/python benchmarks/accuracy.py --busy     # also with one core kept busy
    .venv/bin/python benchmarks/accuracy.py --jitter 0,5,20   # jitter against the truth

The link is built here, with nothing outside the namespaces it creates:

* two network namespaces, client and server, joined by a veth pair;
* ``tc tbf`` on each sender's end of the pair sets the rate of that direction;
* the round-trip time comes from a delay line in the client namespace
  (benchmarks/delay_line.c, compiled with gcc at start): the client's routes lead into
  a TUN device, and the delay line moves the packets between it and the veth end after
  half the round-trip time each way (this kernel has no netem). It runs at real-time
  priority (chrt), so that a busy machine slows the clients, not the link: without it,
  one busy core cut even a good client to 0.63-0.80 of a 1000 Mbit/s link. It takes
  and hands over whole segments of up to 64 KB (segmentation offload, as a network
  card does): copying every packet alone kept a raw gigabit upload at 50 ms below
  0.80 of the link on two cores;
* the fake speedtest.net of the test suite runs in the server namespace, with its
  configuration over TLS through a proxy CONNECT, as in production, and no pacing of
  its own: the link is the bottleneck.

For every rate the ceiling is calibrated first with raw TCP flows (counted by the
kernel: download at the receiver, upload at the sender), then the two clients run
alternately. The table shows, per direction,
what each reported divided by the link's rate, the data the whole test moved over the
link, the test's duration and the CPU time of the child process.

``--busy`` runs every test twice in turn, once as above and once while another process
keeps one core busy, and shows both figures and their difference: a baseline measured
in the same run, on the same link, minutes apart.

``--jitter`` gives the delay line a delay variation: every other TCP connection the
client opens is held that much longer on its way out. Each latency probe is a
connection of its own, so consecutive probes differ by exactly the variation, which is
the true jitter; the table shows the runner's jitter beside it (speedtest-cli reports
none). Its default link is 100 Mbit/s at 20 ms.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
from pathlib import Path
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RUNNER = ROOT / "custom_components" / "isp_watch" / "speedtest_runner.py"
DELAY_LINE_SOURCE = Path(__file__).with_name("delay_line.c")

CLIENT_ADDRESS = "10.77.0.1"
SERVER_ADDRESS = "10.77.0.2"
CALIBRATION_PORT = 5201
CALIBRATION_FLOWS = 8
CALIBRATION_SECONDS = 5.0
CALIBRATION_SKIP = 2.0
# Rates (Mbit/s) and round-trip times (ms) the issue asks for.
LINKS = [(10, 20), (50, 20), (100, 20), (300, 20), (1000, 20), (1000, 50)]
# Jitter is measured before the transfers: the rate matters little.
JITTER_LINKS = [(100, 20)]


IP = shutil.which("ip") or "/usr/sbin/ip"
# The delay line is the link: it runs at real-time priority, so that a busy machine
# slows the clients, as on a real line, and not the link's own timing.
CHRT = shutil.which("chrt")
REAL_TIME = [CHRT, "--fifo", "10"] if CHRT else []


def run(*command: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run a command quietly; fail loudly if it fails and `check`."""
    return subprocess.run(command, check=check, capture_output=True, text=True)


class Link:
    """The two namespaces, the veth pair, the TUN device and the delay line."""

    def __init__(self, work: Path) -> None:
        """Build the link (no rate, no delay yet)."""
        tag = os.getpid()
        self.client = f"ispw-cli-{tag}"
        self.server = f"ispw-srv-{tag}"
        self.delay_line_binary = work / "delay_line"
        self.delay_line: subprocess.Popen[bytes] | None = None
        run(
            "gcc",
            "-O2",
            "-o",
            str(self.delay_line_binary),
            str(DELAY_LINE_SOURCE),
        )
        run("ip", "netns", "add", self.client)
        run("ip", "netns", "add", self.server)
        run("ip", "link", "add", "veth-c", "netns", self.client, "type", "veth",
            "peer", "name", "veth-s", "netns", self.server)  # fmt: skip
        c, s = self.in_client, self.in_server
        for namespace in (c, s):
            namespace("sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1")
            namespace("ip", "link", "set", "lo", "up")
        # The client's address lives on the TUN device; the veth end has none, and
        # strict reverse-path filtering keeps the kernel from taking the frames the
        # delay line reads off it (they would arrive undelayed).
        c("ip", "tuntap", "add", "dev", "tun-c", "mode", "tun")
        c("ip", "addr", "add", f"{CLIENT_ADDRESS}/24", "dev", "tun-c")
        c("ip", "link", "set", "tun-c", "up", "txqueuelen", "1000")
        c("ip", "link", "set", "veth-c", "up")
        c("sysctl", "-qw", "net.ipv4.conf.all.rp_filter=1")
        c("sysctl", "-qw", "net.ipv4.conf.veth-c.rp_filter=1")
        s("ip", "addr", "add", f"{SERVER_ADDRESS}/24", "dev", "veth-s")
        s("ip", "link", "set", "veth-s", "up")
        self.client_mac = self.mac(c, "veth-c")
        self.server_mac = self.mac(s, "veth-s")
        s("ip", "neigh", "replace", CLIENT_ADDRESS, "lladdr", self.client_mac,
          "dev", "veth-s", "nud", "permanent")  # fmt: skip
        # veth leaves TCP checksums to the receiving kernel. Without checksum offload
        # there is no segmentation offload either: the server sends packets of one
        # MTU, each with its checksum. The client's segments of up to 64 KB are split
        # into packets when they leave the veth end (delay_line.c).
        s(sys.executable, __file__, "--no-offload", "veth-s")

    def in_client(
        self, *command: str, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """Run a command in the client namespace."""
        return run("ip", "netns", "exec", self.client, *command, check=check)

    def in_server(
        self, *command: str, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """Run a command in the server namespace."""
        return run("ip", "netns", "exec", self.server, *command, check=check)

    @staticmethod
    def mac(namespace: Any, device: str) -> str:
        """The MAC address of a device."""
        shown = json.loads(namespace("ip", "-j", "link", "show", device).stdout)
        return str(shown[0]["address"])

    def shape(self, mbps: int, rtt_ms: float, variation_ms: float = 0.0) -> None:
        """Set both directions to `mbps` and the round trip to `rtt_ms`.

        With a variation, every other new TCP connection's round trip is that much
        longer.
        """
        rate_bytes = mbps * 1_000_000 / 8
        # A burst of a millisecond (at least ten packets) and a queue of 25 ms.
        burst = max(15_140, int(rate_bytes / 1000))
        for namespace, device in (
            (self.in_client, "veth-c"),
            (self.in_server, "veth-s"),
        ):
            rate = f"{mbps}mbit"
            # A new qdisc, not a changed one: a whole segment of 64 KB queued under a
            # fast rate would never fit the smaller burst of a slow one.
            namespace("tc", "qdisc", "del", "dev", device, "root", check=False)
            namespace("tc", "qdisc", "add", "dev", device, "root", "tbf",
                      "rate", rate, "burst", str(burst), "latency", "25ms")  # fmt: skip
        self.stop_delay_line()
        self.delay_line = subprocess.Popen(
            [*REAL_TIME, IP, "netns", "exec", self.client, str(self.delay_line_binary),
             "tun-c", "veth-c", self.server_mac, str(int(rtt_ms * 1000 / 2)),
             str(int(variation_ms * 1000))],
        )  # fmt: skip
        time.sleep(0.2)

    def stop_delay_line(self) -> None:
        """Stop the delay line if it runs."""
        if self.delay_line is not None:
            self.delay_line.terminate()
            self.delay_line.wait()
            self.delay_line = None

    def wire_bytes(self) -> int:
        """Bytes that crossed the client's end of the link, both ways, so far.

        What left is counted by its tbf queue, with the headers of every packet: the
        device counts a segment of up to 64 KB with its headers once.
        """
        shown = json.loads(
            self.in_client("ip", "-j", "-s", "link", "show", "veth-c").stdout
        )
        queue = json.loads(
            self.in_client("tc", "-s", "-j", "qdisc", "show", "dev", "veth-c").stdout
        )
        return int(shown[0]["stats64"]["rx"]["bytes"]) + int(queue[0]["bytes"])

    def remove(self) -> None:
        """Take everything down."""
        self.stop_delay_line()
        run("ip", "netns", "del", self.client, check=False)
        run("ip", "netns", "del", self.server, check=False)


# -- server namespace: the fake speedtest.net and the calibration endpoint ----------


def serve(address: str) -> None:
    """Run the fake and the calibration endpoint until stdin closes."""
    sys.path.insert(0, str(ROOT))
    from http.server import ThreadingHTTPServer

    from fakes import speedtest as fake_speedtest

    # Large writes: the fake must keep up with a gigabit link on a busy machine.
    fake_speedtest.CHUNK = 256 * 1024

    class ShapedFake(fake_speedtest.FakeSpeedtest):
        def start(self) -> None:
            owner = self

            class Handler(self.handler):  # type: ignore[name-defined,misc]
                pass

            Handler.owner = owner
            server = ThreadingHTTPServer((address, 0), Handler)
            server.daemon_threads = True
            server.socket.listen(64)
            self.port = server.server_address[1]
            self._server = server
            threading.Thread(target=server.serve_forever, daemon=True).start()

        def servers_xml(self) -> bytes:
            return super().servers_xml().replace(b"127.0.0.1", address.encode())

    fake = ShapedFake(
        Path(tempfile.mkdtemp()),
        download_mbps=1_000_000.0,
        upload_mbps=1_000_000.0,
        latency_ms=0.0,
        test_length=10,
    )
    fake.receive_buffer = None
    fake.keep_alive = True
    fake.start()
    threading.Thread(target=calibration_endpoint, args=(address,), daemon=True).start()
    print(json.dumps({"port": fake.port, "ca_file": str(fake.ca_file)}), flush=True)
    sys.stdin.read()


def calibration_endpoint(address: str) -> None:
    """'D': send until the client closes. 'U': read until the client closes."""
    listener = socket.create_server((address, CALIBRATION_PORT), backlog=64)
    while True:
        connection, _ = listener.accept()
        threading.Thread(
            target=calibration_flow, args=(connection,), daemon=True
        ).start()


def calibration_flow(connection: socket.socket) -> None:
    """One flow of the calibration, as the client asks."""
    with connection, contextlib.suppress(OSError):
        if connection.recv(1) == b"D":
            payload = b"\0" * (256 * 1024)
            while True:
                connection.sendall(payload)
        drain(connection)


def drain(connection: socket.socket) -> None:
    """Read until the peer closes."""
    buffer = bytearray(256 * 1024)
    with contextlib.suppress(OSError):
        while connection.recv_into(buffer):
            pass


# -- client namespace ----------------------------------------------------------------


def no_offload(device: str) -> None:
    """Turn off a device's checksum offload (ethtool's ioctl; no ethtool here)."""
    import ctypes
    import fcntl
    import struct

    set_tx_checksum = 0x17
    siocethtool = 0x8946
    value = ctypes.create_string_buffer(struct.pack("II", set_tx_checksum, 0))
    request = struct.pack("16sP", device.encode(), ctypes.addressof(value))
    with socket.socket() as sock:
        fcntl.ioctl(sock, siocethtool, request.ljust(40, b"\0"))


def calibrate(direction: str) -> None:
    """Print the raw TCP rate (bit/s) of flows in `direction`, as the kernel counts.

    The kernel's counts at two moments are exact, where counting reads would credit
    data that waited in a buffer to the wrong side of a moment; all flows count the
    same window. Upload is counted by the sender, as the runner counts it: what the
    server acknowledged, selectively beyond a loss too. The receiver's own count
    holds back whatever arrived beyond a gap until the gap is filled, and a window
    that begins during one is credited with bytes from before it (up to 3 % at
    10 Mbit/s here, where tbf drops upload packets on the wire).
    """
    sys.path.insert(0, str(ROOT))
    from custom_components.isp_watch.speedtest_runner import kernel_count

    purpose = "download" if direction == "download" else "upload"
    begin = time.monotonic() + CALIBRATION_SKIP
    end = begin + CALIBRATION_SECONDS - CALIBRATION_SKIP
    flows = [
        socket.create_connection((SERVER_ADDRESS, CALIBRATION_PORT))
        for _ in range(CALIBRATION_FLOWS)
    ]

    def send(sock: socket.socket) -> None:
        payload = b"\0" * (256 * 1024)
        with contextlib.suppress(OSError):
            while time.monotonic() < end + 0.5:
                sock.sendall(payload)
            sock.shutdown(socket.SHUT_WR)

    threads = []
    for sock in flows:
        sock.sendall(b"D" if purpose == "download" else b"U")
        work = drain if purpose == "download" else send
        threads.append(threading.Thread(target=work, args=(sock,), daemon=True))
    for thread in threads:
        thread.start()
    time.sleep(max(0.0, begin - time.monotonic()))
    before = sum(kernel_count(sock, purpose) or 0 for sock in flows)
    time.sleep(max(0.0, end - time.monotonic()))
    after = sum(kernel_count(sock, purpose) or 0 for sock in flows)
    for sock in flows:
        sock.close()
    print((after - before) * 8 / (end - begin))


def speedtest_cli(answer_file: str) -> None:
    """A whole test with unmodified speedtest-cli, as Home Assistant's core runs it."""
    import speedtest

    tester = speedtest.Speedtest(secure=True)
    tester.get_servers([])
    tester.get_best_server()
    tester.download()
    tester.upload()
    results = tester.results
    Path(answer_file).write_text(
        json.dumps(
            {
                "download_mbps": results.download / 1e6,
                "upload_mbps": results.upload / 1e6,
                "ping_ms": results.ping,
            }
        )
    )


# -- the orchestration ---------------------------------------------------------------


def child_cpu() -> float:
    """CPU seconds of all waited-for children so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def keep_a_core_busy() -> subprocess.Popen[bytes]:
    """Another process that spins on one core until it is stopped."""
    return subprocess.Popen([sys.executable, "-c", "while True: pass"])


def ceiling(link: Link, mbps: int, *, busy: bool = False) -> dict[str, float]:
    """What raw TCP flows carry over the link, ÷ its rate, per direction."""
    rates: dict[str, float] = {}
    for direction in ("download", "upload"):
        spinner = keep_a_core_busy() if busy else None
        try:
            measured = link.in_client(
                sys.executable, __file__, "--calibrate", direction
            )
        finally:
            if spinner is not None:
                spinner.kill()
                spinner.wait()
        rates[direction] = float(measured.stdout) / (mbps * 1e6)
    return rates


def one_test(
    link: Link,
    client: str,
    environment: dict[str, str],
    work: Path,
    *,
    busy: bool = False,
) -> dict[str, Any]:
    """One whole test by `client`; its figures, data, duration and CPU."""
    answer_file = work / "answer.json"
    answer_file.unlink(missing_ok=True)
    if client == "runner":
        arguments = json.dumps({
            "operation": "test", "server_ids": [], "secure": True, "timeout": 10.0,
            "source_address": None, "library_path": None,
        })  # fmt: skip
        command = [sys.executable, "-P", str(RUNNER), arguments]
    else:
        command = [sys.executable, __file__, "--speedtest-cli", str(answer_file)]
    spinner = keep_a_core_busy() if busy else None
    try:
        wire = link.wire_bytes()
        cpu = child_cpu()
        started = time.monotonic()
        done = subprocess.run(
            [IP, "netns", "exec", link.client, *command],
            capture_output=True,
            env=environment,
            check=False,
            timeout=300,
        )
        duration = time.monotonic() - started
        # Read before the spinner is waited for: its CPU time is not the client's.
        cpu = child_cpu() - cpu
        wire = link.wire_bytes() - wire
    finally:
        if spinner is not None:
            spinner.kill()
            spinner.wait()
    if client == "runner":
        lines = done.stdout.decode().strip().splitlines()
        answer = json.loads(lines[-1]) if lines else {}
    else:
        answer = json.loads(answer_file.read_text()) if answer_file.exists() else {}
    if "download_mbps" not in answer:
        print(
            f"  {client} failed: {answer or done.stderr.decode()[-500:]}",
            file=sys.stderr,
        )
    return answer | {"wire_bytes": wire, "duration": duration, "cpu": cpu}


def middle(outcomes: list[dict[str, Any]], key: str) -> float:
    """The median of one figure over the outcomes that have it; NaN if none has."""
    values = [
        float(outcome[key]) for outcome in outcomes if outcome.get(key) is not None
    ]
    return statistics.median(values) if values else math.nan


def succeeded(outcomes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The outcomes that are measurements."""
    return [outcome for outcome in outcomes if "download_mbps" in outcome]


def accuracy_row(
    link_name: str,
    mbps: int,
    client: str,
    outcomes: list[dict[str, Any]],
    ceiling: dict[str, float],
) -> str:
    """One row of the accuracy table."""
    good = succeeded(outcomes)
    if not good:
        return f"| {link_name} | {client} | failed | | | | | | 0/{len(outcomes)} |"
    return (
        f"| {link_name} | {client} "
        f"| {middle(good, 'download_mbps') / mbps:.3f} "
        f"| {middle(good, 'upload_mbps') / mbps:.3f} "
        f"| {ceiling['download']:.3f} / {ceiling['upload']:.3f} "
        f"| {middle(good, 'wire_bytes') / 1e6:.0f} "
        f"| {middle(good, 'duration'):.1f} "
        f"| {middle(good, 'cpu'):.1f} "
        f"| {len(good)}/{len(outcomes)} |"
    )


def busy_row(
    link_name: str,
    mbps: int,
    client: str,
    outcomes: tuple[list[dict[str, Any]], list[dict[str, Any]]],
    ceilings: tuple[dict[str, float], dict[str, float]],
) -> str:
    """One row of the table with one core kept busy, beside the quiet figures.

    The raw TCP ceiling is shown for both: on a small machine a busy core slows the
    link itself (the delay line and the fake server share the cores), not only the
    client.
    """
    quiet, busy = outcomes
    quiet_good, busy_good = succeeded(quiet), succeeded(busy)
    runs = f"{len(quiet_good)}/{len(quiet)}, {len(busy_good)}/{len(busy)}"
    if not quiet_good or not busy_good:
        return f"| {link_name} | {client} | failed | | | | | | {runs} |"
    figures = {
        (condition, key): middle(good, key) / mbps
        for condition, good in (("quiet", quiet_good), ("busy", busy_good))
        for key in ("download_mbps", "upload_mbps")
    }
    change = {
        key: figures["busy", key] - figures["quiet", key]
        for key in ("download_mbps", "upload_mbps")
    }
    return (
        f"| {link_name} | {client} "
        f"| {figures['quiet', 'download_mbps']:.3f} / "
        f"{figures['quiet', 'upload_mbps']:.3f} "
        f"| {figures['busy', 'download_mbps']:.3f} / "
        f"{figures['busy', 'upload_mbps']:.3f} "
        f"| {change['download_mbps']:+.3f} / {change['upload_mbps']:+.3f} "
        f"| {ceilings[0]['download']:.3f} / {ceilings[0]['upload']:.3f} → "
        f"{ceilings[1]['download']:.3f} / {ceilings[1]['upload']:.3f} "
        f"| {middle(quiet_good, 'duration'):.1f} / {middle(busy_good, 'duration'):.1f} "
        f"| {middle(quiet_good, 'cpu'):.1f} / {middle(busy_good, 'cpu'):.1f} "
        f"| {runs} |"
    )


def jitter_row(link_name: str, variation: float, outcomes: list[dict[str, Any]]) -> str:
    """One row of the jitter table: the runner's jitter beside the truth."""
    good = [outcome for outcome in outcomes if outcome.get("jitter_ms") is not None]
    if not good:
        return f"| {link_name} | {variation:g} | failed | | | | 0/{len(outcomes)} |"
    errors = [abs(float(outcome["jitter_ms"]) - variation) for outcome in good]
    return (
        f"| {link_name} | {variation:g} "
        f"| {middle(good, 'jitter_ms'):.2f} "
        f"| {max(errors):.2f} "
        f"| {middle(good, 'ping_ms'):.1f} "
        f"| {middle(good, 'download_latency_ms'):.1f} / "
        f"{middle(good, 'upload_latency_ms'):.1f} "
        f"| {len(good)}/{len(outcomes)} |"
    )


ACCURACY_HEADER = (
    "| link Mbit/s / RTT ms | client | down ÷ link | up ÷ link | raw TCP ceiling "
    "down / up | data per test MB | duration s | child CPU s | runs ok |\n"
    "|---|---|---|---|---|---|---|---|---|"
)
BUSY_HEADER = (
    "| link Mbit/s / RTT ms | client | quiet down / up ÷ link | one core busy: "
    "down / up ÷ link | change down / up | raw TCP ceiling down / up, quiet → busy "
    "| duration s quiet / busy | child CPU s quiet / busy | runs ok quiet, busy |\n"
    "|---|---|---|---|---|---|---|---|---|"
)
JITTER_HEADER = (
    "| link Mbit/s / RTT ms | true jitter ms (delay variation) | runner's jitter ms "
    "| largest error ms | ping ms | latency under load ms down / up | runs ok |\n"
    "|---|---|---|---|---|---|---|"
)


def measure_accuracy(
    link: Link,
    links: list[tuple[int, int]],
    runs: int,
    environment: dict[str, str],
    work: Path,
    *,
    busy: bool,
) -> list[str]:
    """Both clients on every link, alternately; with `busy`, each quiet and busy."""
    conditions = (False, True) if busy else (False,)
    rows: list[str] = []
    for mbps, rtt in links:
        link_name = f"{mbps} / {rtt}"
        link.shape(mbps, rtt)
        ceilings = {
            condition: ceiling(link, mbps, busy=condition) for condition in conditions
        }
        results: dict[tuple[str, bool], list[dict[str, Any]]] = {
            (client, condition): []
            for client in ("runner", "speedtest-cli")
            for condition in conditions
        }
        for _ in range(runs):
            for (client, condition), outcomes in results.items():
                outcomes.append(
                    one_test(link, client, environment, work, busy=condition)
                )
        for client in ("runner", "speedtest-cli"):
            if busy:
                row = busy_row(
                    link_name,
                    mbps,
                    client,
                    (results[client, False], results[client, True]),
                    (ceilings[False], ceilings[True]),
                )
            else:
                row = accuracy_row(
                    link_name, mbps, client, results[client, False], ceilings[False]
                )
            rows.append(row)
            print(row, flush=True)
    return rows


def measure_jitter(
    link: Link,
    links: list[tuple[int, int]],
    variations: list[float],
    runs: int,
    *,
    environment: dict[str, str],
    work: Path,
) -> list[str]:
    """The runner's jitter on links whose delay varies by a known amount."""
    rows: list[str] = []
    for mbps, rtt in links:
        for variation in variations:
            link.shape(mbps, rtt, variation)
            outcomes = [
                one_test(link, "runner", environment, work) for _ in range(runs)
            ]
            rows.append(jitter_row(f"{mbps} / {rtt}", variation, outcomes))
            print(rows[-1], flush=True)
    return rows


def main() -> None:
    """Build the link, measure every rate, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="one run per client and link"
    )
    parser.add_argument("--runs", type=int, default=3, help="runs per client and link")
    parser.add_argument("--links", help="e.g. 100/20,1000/50 (Mbit/s / ms)")
    parser.add_argument(
        "--busy",
        action="store_true",
        help="run each test also while another process keeps one core busy",
    )
    parser.add_argument(
        "--jitter",
        help="delay variations in ms, e.g. 0,5,20: the runner's jitter against them",
    )
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    parser.add_argument("--calibrate", help=argparse.SUPPRESS)
    parser.add_argument("--speedtest-cli", help=argparse.SUPPRESS)
    parser.add_argument("--no-offload", help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.no_offload:
        no_offload(options.no_offload)
        return
    if options.serve:
        serve(options.serve)
        return
    if options.calibrate:
        calibrate(options.calibrate)
        return
    if options.speedtest_cli:
        speedtest_cli(options.speedtest_cli)
        return
    if os.geteuid() != 0:
        sys.exit(
            "accuracy.py builds network namespaces and shapes a link: run it as root"
        )
    for tool in ("ip", "tc", "gcc"):
        if shutil.which(tool) is None:
            sys.exit(f"accuracy.py needs {tool}")
    runs = 1 if options.quick else options.runs
    variations = (
        [float(item) for item in options.jitter.split(",")] if options.jitter else None
    )
    links = JITTER_LINKS if variations is not None else LINKS
    if options.links:
        links = [
            (int(rate), int(rtt))
            for rate, rtt in (item.split("/") for item in options.links.split(","))
        ]
    work = Path(tempfile.mkdtemp(prefix="isp-watch-accuracy-"))
    link = Link(work)
    serve_command = [IP, "netns", "exec", link.server, sys.executable, __file__,
                     "--serve", SERVER_ADDRESS]  # fmt: skip
    server = subprocess.Popen(
        serve_command, stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    try:
        fake = json.loads(server.stdout.readline()) if server.stdout else {}
        proxy = f"http://{SERVER_ADDRESS}:{fake['port']}"
        environment = {
            name: value
            for name, value in os.environ.items()
            if "proxy" not in name.lower()
        } | {
            "http_proxy": proxy,
            "https_proxy": proxy,
            "no_proxy": SERVER_ADDRESS,
            "SSL_CERT_FILE": fake["ca_file"],
            "PYTHONPATH": "",
        }
        if variations is not None:
            header = JITTER_HEADER
            rows = measure_jitter(
                link, links, variations, runs, environment=environment, work=work
            )
        else:
            header = BUSY_HEADER if options.busy else ACCURACY_HEADER
            rows = measure_accuracy(
                link, links, runs, environment, work, busy=options.busy
            )
    finally:
        server.terminate()
        server.wait()
        link.remove()
        shutil.rmtree(work, ignore_errors=True)
    print()
    print(header)
    print("\n".join(rows))


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    main()
