"""Running a sandbox: in the current event loop (``serve``) or in a thread of its own.

    async with serve(SandboxConfig(processing_delay=Delay(0.05))) as base_url: ...

    with SandboxThread(config) as sandbox:   # sync tests, or a relay subprocess pointed at it
        httpx.get(f"{sandbox.url}/sandbox/1.0/stats")

Port 0 (the default) binds a free port; the URL says which.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import AsyncIterator, Callable
from types import TracebackType
from typing import TypeVar

from aiohttp import web

from relay.sandbox.app import create_app
from relay.sandbox.config import SandboxConfig
from relay.sandbox.state import SANDBOX, Sandbox

T = TypeVar("T")


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.setblocking(False)
    return sock


def _url(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


@contextlib.asynccontextmanager
async def running(config: SandboxConfig) -> AsyncIterator[tuple[str, Sandbox]]:
    """Serve in this loop; yields the base URL and the sandbox state."""
    app = create_app(config)
    runner = web.AppRunner(app, access_log=None, handler_cancellation=True, shutdown_timeout=0.5)
    await runner.setup()
    sock = _bind(config.host, config.port)
    site = web.SockSite(runner, sock)
    try:
        await site.start()
        yield _url(sock), app[SANDBOX]
    finally:
        await runner.cleanup()
        sock.close()


@contextlib.asynccontextmanager
async def serve(config: SandboxConfig | None = None) -> AsyncIterator[str]:
    """Serve in this loop; yields the base URL (``http://127.0.0.1:PORT``)."""
    async with running(config or SandboxConfig()) as (url, _):
        yield url


class SandboxThread:
    """A sandbox in a daemon thread with its own event loop; a context manager."""

    def __init__(self, config: SandboxConfig | None = None) -> None:
        self.config = config or SandboxConfig()
        self.url = ""
        self._sandbox: Sandbox | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="timeback-sandbox", daemon=True)

    def start(self) -> SandboxThread:
        self._thread.start()
        self._ready.wait(timeout=30)
        if self._error is not None:
            raise RuntimeError(f"the sandbox did not start: {self._error}") from self._error
        if not self.url:
            raise RuntimeError("the sandbox did not start within 30 s")
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=30)

    def run_in_loop(self, fn: Callable[[Sandbox], T]) -> T:
        """Run ``fn(sandbox)`` in the sandbox's loop thread and return its result."""
        assert self._loop is not None, "not started"

        async def call() -> T:
            return fn(self.sandbox)

        return asyncio.run_coroutine_threadsafe(call(), self._loop).result(timeout=30)

    @property
    def sandbox(self) -> Sandbox:
        """The live state (touch it only through ``run_in_loop`` from other threads)."""
        assert self._sandbox is not None, "not started"
        return self._sandbox

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # reported to start()
            self._error = exc
            self._ready.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        async with running(self.config) as (url, sandbox):
            self.url, self._sandbox = url, sandbox
            self._ready.set()
            await self._stop.wait()

    def __enter__(self) -> SandboxThread:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
