"""Ports on 127.0.0.1 for the processes the benchmark and the tests start (stdlib only, so the
tests' set-up can use it without importing the benchmark).

A picked port must stay ours from the pick until the process meant for it binds it, and while
that process is down to be started again on the same port (the cluster trials kill brokers and
restart them). Two kinds of neighbour could take it meanwhile:

- the kernel: ``bind(0)`` and every outgoing connection take a port from the ephemeral range
  (``net.ipv4.ip_local_port_range``). So ports come from just below that range, where the kernel
  hands out none by itself;
- another picker: another pytest-xdist worker, a benchmark beside the tests, a second clone.
  So each pick is claimed with an exclusive ``flock`` on a file named after the port, in one
  directory every picker on the machine shares, and the lock is held until the picking process
  ends (the kernel drops it then, even after a crash: no stale claims to clean up).

One CI run failed for want of this: a broker killed in a trial could not start again, because
while it was down something else listened on its port (then picked with bind(0), so from the
ephemeral range): by all the evidence, a process of another worker given that port by bind(0).
"""

from __future__ import annotations

import fcntl
import os
import random
import socket
import tempfile
from pathlib import Path

CLAIMS = Path(tempfile.gettempdir()) / "timeback-relay-ports"
SPAN = 10_000  # ports below the ephemeral range to pick from; a session uses a few hundred
_EPHEMERAL = Path("/proc/sys/net/ipv4/ip_local_port_range")
_held: dict[int, int] = {}  # port → descriptor whose lock claims it, for this process's life


def pool() -> range:
    """The ``SPAN`` ports just below the ephemeral range. Without /proc (macOS) the range is
    taken to start at Linux's default, 32768, which is below macOS's own (49152)."""
    try:
        low = int(_EPHEMERAL.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    return range(max(1024, low - SPAN), low)


def claim(port: int) -> bool:
    """Claim ``port`` for this process's life; False when a live process (this one included)
    holds it already."""
    try:
        CLAIMS.mkdir()
        CLAIMS.chmod(0o1777)  # like /tmp: every user's runs claim here, none removes another's
    except FileExistsError:
        pass
    fd = os.open(CLAIMS / str(port), os.O_CREAT | os.O_RDONLY, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return False
    _held[port] = fd  # the descriptor is not inherited by children (O_CLOEXEC by default)
    return True


def _release(port: int) -> None:
    os.close(_held.pop(port))  # closing the last descriptor drops the lock


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False  # a process that does not pick through here holds it
    return True


def free_ports(count: int) -> list[int]:
    """``count`` distinct ports, free now and claimed for this process's life."""
    candidates = pool()
    if len(candidates) < 1000:
        raise OSError(f"too few ports below the ephemeral range ({_EPHEMERAL}) to pick from")
    start = random.randrange(len(candidates))  # pickers start apart, then walk
    ports: list[int] = []
    for i in range(len(candidates)):
        port = candidates[(start + i) % len(candidates)]
        if not claim(port):
            continue
        if not _bindable(port):
            _release(port)
            continue
        ports.append(port)
        if len(ports) == count:
            return ports
    raise OSError(f"no free port left in {candidates.start}-{candidates.stop - 1}")


def free_port() -> int:
    """One port, free now and claimed for this process's life."""
    return free_ports(1)[0]
