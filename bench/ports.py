"""Free TCP ports on 127.0.0.1 for the processes the benchmark and the tests start (stdlib only,
so the tests' set-up can use it without importing the benchmark)."""

from __future__ import annotations

import contextlib
import socket


def free_ports(count: int) -> list[int]:
    """``count`` distinct ports that were free a moment ago. Every socket stays bound until all
    are picked: a port released and asked for again can be handed out twice (a broker was once
    given the same port for its client and its controller listener and refused to start)."""
    with contextlib.ExitStack() as held:
        ports = []
        for _ in range(count):
            sock = held.enter_context(socket.socket())
            sock.bind(("127.0.0.1", 0))
            ports.append(int(sock.getsockname()[1]))
        return ports


def free_port() -> int:
    """One port that was free a moment ago."""
    return free_ports(1)[0]
