"""A network of the test process's own, so other traffic on the machine stays out.

ISP Watch judges a test busy from the traffic on the interface that carried it. The
fakes listen on loopback, and every other process on the machine that uses loopback (a
second test worker, the browser walk, a developer's own servers) would count as the
household's traffic and make quiet tests look busy. In a network namespace of its own,
the test process and its children (speed-test runners, Home Assistant, Chromium) see a
loopback that only they use. Creating one needs root, which CI has; without it the tests
share the machine's loopback, and the busy-line tests need a quiet machine.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import socket
import struct
import subprocess

# From <linux/sockios.h> and <linux/if.h>.
_SIOCGIFFLAGS = 0x8913
_SIOCSIFFLAGS = 0x8914
_IFF_UP = 0x1
_IFREQ = "16sH14x"


# A documentation network (RFC 5737): nothing on it is ever reached.
_LAN_ADDRESS = "192.0.2.1/24"


def enter_private_network(*, with_lan: bool = False) -> bool:
    """Move this process into a new network namespace with loopback up.

    With `with_lan`, the namespace also gets a network interface of its own (one end
    of a veth pair, nothing behind it), because a whole Home Assistant expects one:
    zeroconf refuses to start on loopback alone.

    Returns whether it did; the process keeps the machine's network when it cannot
    (not root, not Linux). Call it before the process starts threads that open sockets.
    """
    if not hasattr(os, "unshare") or os.geteuid() != 0:
        return False
    try:
        os.unshare(os.CLONE_NEWNET)
    except OSError:
        return False
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as control:
        request = struct.pack(_IFREQ, b"lo", 0)
        _, flags = struct.unpack(_IFREQ, fcntl.ioctl(control, _SIOCGIFFLAGS, request))
        fcntl.ioctl(control, _SIOCSIFFLAGS, struct.pack(_IFREQ, b"lo", flags | _IFF_UP))
    if with_lan and (ip := shutil.which("ip") or shutil.which("/usr/sbin/ip")):
        for command in (
            ["link", "add", "lan0", "type", "veth", "peer", "name", "lan1"],
            ["address", "add", _LAN_ADDRESS, "dev", "lan0"],
            ["link", "set", "lan1", "up"],
            ["link", "set", "lan0", "up"],
            # Discovery (SSDP, mDNS) sends to multicast and broadcast addresses, and
            # finds nobody. Everything else stays unreachable at once, as offline.
            ["route", "add", "224.0.0.0/4", "dev", "lan0"],
            ["route", "add", "255.255.255.255/32", "dev", "lan0"],
        ):
            subprocess.run([ip, *command], check=False, capture_output=True)  # noqa: S603
    return True
