"""The relay as a subprocess (``relay run``), driven and watched from a test.

    relay = RelayProcess("crash", relay_env(...), workdir).start()
    relay.wait_ready()          # /readyz answers 200
    relay.kill()                # SIGKILL, then relay.start() again (same instance id)
    relay.stats()               # its /metrics, parsed (RelayStats of the demo panel)
    relay.logs()                # everything it printed, across restarts

Each start writes its own log file under ``workdir``; the process runs with ``workdir`` as its
current directory (faust writes its data directory there, and no ``.env`` of the repository is
read) and with every ``RELAY_*`` variable of the test's environment removed, so only what the
test sets reaches it.

What such a relay talks to besides the sandbox (tests/reliability/fault_proxy.py,
tests/registry_proxy.py) is an aiohttp application served by ``AppThread``: its own thread and
event loop, since the test body is synchronous and the relay is another process.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import signal
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
import pytest
from aiohttp import web

from bench.ports import free_port
from relay.tools.demo_panel import RelayStats

# Skips (rather than fails) while `relay run` does not exist at all; a worker that exists but does
# not import or start is a failure.
requires_relay = pytest.mark.skipif(
    importlib.util.find_spec("relay.pipeline.worker") is None,
    reason="`relay run` (relay/pipeline/worker.py) does not exist yet",
)

CLIENT_ID, CLIENT_SECRET, APP_ID = "sandbox-client", "sandbox-secret", "sandbox-app"
ACTIVITY_BASE = "https://reliability.example"
# The consumer group session of the relays under test: a SIGKILLed member is noticed quickly.
SESSION_TIMEOUT_S = 6


def relay_env(
    *,
    bootstrap: str,
    topic: str,
    dlq: str,
    group: str,
    api_url: str,
    **overrides: str,
) -> dict[str, str]:
    """The ``RELAY_*`` settings of a relay under test: short retries, the sandbox, fast
    rebalances. ``overrides`` are ``RELAY_*`` names (or any variable) with string values."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RELAY_")}
    env.update(
        RELAY_KAFKA_BOOTSTRAP=bootstrap,
        RELAY_TOPICS=topic,
        RELAY_DLQ_TOPIC=dlq,
        RELAY_GROUP_ID=group,
        RELAY_API_BASE_URL=api_url,
        RELAY_ALLOW_INSECURE_HTTP="true",
        RELAY_CLIENT_ID=CLIENT_ID,
        RELAY_CLIENT_SECRET=CLIENT_SECRET,
        RELAY_APP_ID=APP_ID,
        RELAY_ACTIVITY_BASE_URL=ACTIVITY_BASE,
        RELAY_WEB_HOST="127.0.0.1",
        RELAY_RETRY_BASE="0.05",
        RELAY_RETRY_CAP="1",
        RELAY_CIRCUIT_OPEN_FOR="0.5",
        RELAY_CIRCUIT_MAX_OPEN_FOR="2",
        RELAY_HTTP_TIMEOUT="5",
        RELAY_SHUTDOWN_GRACE="5",
        RELAY_LOG_LEVEL="INFO",
        RELAY_KAFKA_SESSION_TIMEOUT=str(SESSION_TIMEOUT_S),
        PYTHONUNBUFFERED="1",
    )
    env.update(overrides)
    return env


class RelayDied(AssertionError):
    """The relay exited while the test expected it to run."""


class RelayProcess:
    """One relay replica: started, killed and restarted as the test decides."""

    def __init__(
        self, name: str, env: dict[str, str], workdir: Path, command: list[str] | None = None
    ) -> None:
        self.name = name
        self.command = command or [sys.executable, "-m", "relay.cli", "run"]
        self.env = dict(env)
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.starts = 0
        self.kills = 0
        self.log_files: list[Path] = []
        self._http = httpx.Client(timeout=2.0)

    # -- life cycle ----------------------------------------------------------------------------

    def start(self) -> RelayProcess:
        """Start ``relay run`` (again). A restart keeps the web port, as a restarted pod keeps
        its name and port: faust puts that URL in its group metadata, and a static member
        rejoining with another URL trips faust's assignor (see the suite's report)."""
        assert not self.alive, f"{self.name} is already running"
        self.port = self.port or free_port()
        self.starts += 1
        log = self.workdir / f"{self.name}-{self.starts}.log"
        self.log_files.append(log)
        env = self.env | {"RELAY_WEB_PORT": str(self.port)}
        with log.open("wb") as out:
            self.proc = subprocess.Popen(
                self.command,
                env=env,
                cwd=self.workdir,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def returncode(self) -> int | None:
        return None if self.proc is None else self.proc.poll()

    def kill(self) -> None:
        """SIGKILL: no drain, no commit, no goodbye to the group."""
        assert self.proc is not None
        if self.alive:
            self.proc.send_signal(signal.SIGKILL)
            self.kills += 1
        self.proc.wait(30)

    def terminate(self, timeout: float = 30.0) -> int:
        """SIGTERM and wait (SIGKILL after ``timeout``); the exit status."""
        if self.proc is None:
            return 0
        if self.alive:
            self.proc.send_signal(signal.SIGTERM)
            try:
                return self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        return self.proc.wait(30)

    def close(self) -> None:
        if self.alive:
            assert self.proc is not None
            self.proc.kill()
            self.proc.wait(30)
        self._http.close()

    def check_alive(self) -> None:
        if not self.alive:
            raise RelayDied(f"{self.name} exited with {self.returncode}:\n{self.tail()}")

    # -- what it shows -------------------------------------------------------------------------

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def get(self, path: str) -> httpx.Response | None:
        try:
            return self._http.get(self.url(path))
        except httpx.HTTPError:
            return None

    def readyz(self) -> int | None:
        """The /readyz status (200 ready, 503 not), None when it does not answer."""
        response = self.get("/readyz")
        return None if response is None else response.status_code

    def metrics_text(self) -> str | None:
        response = self.get("/metrics")
        return response.text if response is not None and response.status_code == 200 else None

    def stats(self) -> RelayStats | None:
        text = self.metrics_text()
        return None if text is None else RelayStats.parse(text)

    def metric(self, name: str) -> float | None:
        """The sum of every sample of ``timeback_relay_<name>`` (None: no answer)."""
        from prometheus_client.parser import text_string_to_metric_families

        text = self.metrics_text()
        if text is None:
            return None
        names = {f"timeback_relay_{name}", f"timeback_relay_{name}_total"}  # counters: _total
        return sum(
            s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
            if s.name in names
        )

    def wait_ready(self, timeout: float = 120.0) -> None:
        """Until /readyz answers 200 (assigned, token valid, circuit closed, DLQ healthy)."""
        try:
            wait_for(
                lambda: self.readyz() == 200, timeout, f"{self.name} /readyz", self.check_alive
            )
        except AssertionError as exc:
            response = self.get("/readyz")
            body = response.text if response is not None else "no answer"
            raise AssertionError(f"{exc}: /readyz says {body}\n{self.tail(10)}") from None

    def wait_assigned(self, timeout: float = 120.0) -> None:
        """Until the replica has joined its group and owns partitions (it may not be ready yet:
        readiness also needs a token, which the relay only asks for once records arrive)."""
        wait_for(
            lambda: (self.metric("assigned_partitions") or 0) > 0,
            timeout,
            f"{self.name} assigned partitions",
            self.check_alive,
        )

    def logs(self) -> str:
        return "".join(p.read_text(errors="replace") for p in self.log_files if p.exists())

    def tail(self, lines: int = 40) -> str:
        if not self.log_files or not self.log_files[-1].exists():
            return "(no log)"
        return "\n".join(self.log_files[-1].read_text(errors="replace").splitlines()[-lines:])


def wait_for(
    condition: Callable[[], bool],
    timeout: float,
    what: str,
    check: Callable[[], None] = lambda: None,
    interval: float = 0.25,
) -> None:
    """Poll ``condition`` until true; ``check`` runs each round (raise to stop early). The
    timeout is a guard against a hang, not a measurement."""
    deadline = time.monotonic() + timeout
    while True:
        check()
        if condition():
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(interval)


def run_relay_once(
    env: dict[str, str], workdir: Path, timeout: float = 60.0
) -> subprocess.CompletedProcess[str]:
    """``relay run`` expected to exit by itself (a configuration error): its output and status."""
    workdir.mkdir(parents=True, exist_ok=True)
    return subprocess.run(
        [sys.executable, "-m", "relay.cli", "run"],
        env=env,
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


class AppThread:
    """An aiohttp application served on 127.0.0.1:``port`` from a thread of its own, for a
    synchronous test body and for relays running as subprocesses. ``build`` runs on the server's
    loop (so the app may open client sessions there); ``tls`` makes it https.

    Why not aiohttp's ``test_utils.TestServer`` (the in-loop unit fixtures use it): it cancels a
    handler whose client hung up, and these proxies must finish what they forward (a request the
    relay gave up on still reaches the sandbox, as it would through a real network)."""

    def __init__(
        self,
        build: Callable[[], Awaitable[web.Application]],
        name: str,
        port: int | None = None,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.port = port or free_port()
        self._build, self._tls = build, tls
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)
        self._runner: web.AppRunner | None = None

    def start(self) -> AppThread:
        self._thread.start()
        if not self._ready.wait(30):
            raise RuntimeError(f"{self._thread.name} did not start")
        return self

    def stop(self) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(30)

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._open())
        self._ready.set()
        self._loop.run_forever()

    async def _open(self) -> None:
        self._runner = web.AppRunner(await self._build())
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port, ssl_context=self._tls).start()
