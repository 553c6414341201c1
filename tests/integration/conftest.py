"""The TimeBack sandbox as a fixture: a real HTTP server on 127.0.0.1, fresh for every test.

    def test_something(sandbox):                 # sync or async test alike
        sandbox.url                              # http://127.0.0.1:PORT, the API base URL
        sandbox.faults(error_rates={"503": 0.5}, seed=7)
        with sandbox.api() as http: ...          # httpx.Client with sandbox-client's token
        sandbox.process(); sandbox.stats()

    def test_custom(sandbox_factory):
        box = sandbox_factory(processing_delay=0, token_ttl_s=2, dedupe=False)

The server runs in its own thread (``SandboxThread``), so subprocesses can reach it too. Events are
processed 0.05 s after the 202 unless a test asks otherwise; ``sandbox.process()`` runs them now.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import httpx
import pytest

from relay.sandbox import seed
from relay.sandbox.config import Client, Delay, SandboxConfig
from relay.sandbox.server import SandboxThread
from relay.sandbox.testing import SandboxControl

TEST_PROCESSING_DELAY = 0.05


class SandboxHandle(SandboxControl):
    """A running sandbox: ``url``, ``config``, the state (``thread.run_in_loop``) and controls."""

    def __init__(self, thread: SandboxThread) -> None:
        super().__init__(thread.url)
        self.thread = thread
        self.config = thread.config
        for client in thread.config.clients:
            self.secrets[client.client_id] = client.client_secret


SandboxFactory = Callable[..., SandboxHandle]


@contextmanager
def running_sandbox(
    config: SandboxConfig | None = None, **overrides: Any
) -> Iterator[SandboxHandle]:
    """A sandbox for the length of a ``with`` block (what ``sandbox_factory`` starts; for
    module-scoped fixtures). Keywords as ``sandbox_factory``'s."""
    handle = SandboxHandle(SandboxThread(config or sandbox_config(**overrides)).start())
    try:
        yield handle
    finally:
        handle.close()
        handle.thread.stop()


def sandbox_config(**overrides: Any) -> SandboxConfig:
    """SandboxConfig fields as keywords (``processing_delay`` may be a float, 0.05 s unless
    given; ``extra_clients`` adds Clients to the built-in two)."""
    overrides.setdefault("processing_delay", TEST_PROCESSING_DELAY)
    delay = overrides["processing_delay"]
    if isinstance(delay, int | float):
        overrides["processing_delay"] = Delay(float(delay))
    extra: tuple[Client, ...] = tuple(overrides.pop("extra_clients", ()))
    return SandboxConfig(**overrides).with_clients(*extra)


@pytest.fixture
def sandbox_factory() -> Iterator[SandboxFactory]:
    """Start sandboxes with SandboxConfig fields as keywords (``processing_delay`` may be a
    float; ``extra_clients`` adds Clients to the built-in two); all stop after the test."""
    with ExitStack() as started:

        def start(config: SandboxConfig | None = None, **overrides: Any) -> SandboxHandle:
            return started.enter_context(running_sandbox(config, **overrides))

        yield start


@pytest.fixture
def sandbox(sandbox_factory: SandboxFactory) -> SandboxHandle:
    """A fresh sandbox with the default test configuration."""
    return sandbox_factory()


@pytest.fixture
def http(sandbox: SandboxHandle) -> Iterator[httpx.Client]:
    """An httpx.Client on a fresh sandbox, carrying sandbox-client's bearer token."""
    with sandbox.api() as client:
        yield client


# Shared by the events and processing tests: two event times a day apart, an XP event, a ledger.
T0 = "2026-03-10T12:00:00.000Z"
T1 = "2026-03-11T12:00:00.000Z"


def xp(student: str = "student-1", course: str = "course-1", **kw: Any) -> dict[str, Any]:
    kw.setdefault("app_id", "sandbox-app")
    return seed.xp_event(student_id=student, course_id=course, **kw)


def entries(http: httpx.Client, student: str = "student-1") -> list[dict[str, Any]]:
    return list(http.get(f"/xp/1.0/users/{student}/entries").json()["entries"])
