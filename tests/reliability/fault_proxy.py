"""A fault proxy in front of the real sandbox: per-event answers and dripped replies.

    proxy = FaultProxy(sandbox.url).start()
    proxy.answer(event_id, 403)            # every POST carrying that event id gets a 403
    proxy.answer(event_id, 500, times=2)   # the first two only, then it is forwarded
    proxy.drip(event_id, times=1)          # a 200 whose body arrives one byte a second, forever
    proxy.answer_all(503)                  # every events POST (an outage); None: forward again
    proxy.drip_all(times=1)                # the next events POST drips, whatever it carries
    proxy.drips                            # how long each dripped reply was held (seconds)
    relay_env(..., api_url=proxy.url)

Everything else is forwarded unchanged to the sandbox, which stays the system of record (its
journal is what the trials reconcile against). Why a proxy and not a sandbox knob: the sandbox's
faults (relay/sandbox/faults.py) draw by rate or by time window, never by event id, and it has no
way to drip a reply; these trials need one event's answer fixed and a reply that never ends.
"""

from __future__ import annotations

import asyncio
import ssl
import threading
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import ClientSession, ClientTimeout, web

from bench.ports import free_port
from tests.reliability.harness import AppThread

EVENTS = "/events/1.0"
HOP_HEADERS = frozenset({"host", "content-length", "transfer-encoding", "connection"})


@dataclass
class Rule:
    status: int | None  # None: drip
    times: int | None  # None: forever
    drip_every: float = 1.0
    body_bytes: int = 0  # pad the answer's JSON body to this size


class FaultProxy:
    client_max_size = 8 * 1024 * 1024  # the largest request body taken (aiohttp default: 1 MiB)

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._rules: dict[str, Rule] = {}
        self._all: Rule | None = None  # a rule for every events POST no event rule matched
        self.faulted_all = 0  # requests the rule for every POST answered
        self.drips: list[float] = []  # seconds each finished drip was held by the client
        self.hits: Counter[str] = Counter()  # event id -> requests the proxy faulted
        self.seen: Counter[str] = Counter()  # event id -> requests carrying it
        self.dripping = 0  # drips under way now
        self._lock = threading.Lock()
        self._server: AppThread | None = None

    # -- rules ---------------------------------------------------------------------------------

    def answer(
        self, event_id: str, status: int, times: int | None = None, body_bytes: int = 0
    ) -> None:
        with self._lock:
            self._rules[event_id] = Rule(status, times, body_bytes=body_bytes)

    def drip(self, event_id: str, times: int | None = 1, every: float = 1.0) -> None:
        with self._lock:
            self._rules[event_id] = Rule(None, times, every)

    def answer_all(self, status: int | None, times: int | None = None) -> None:
        """Answer every events POST with ``status`` (None: forward them again)."""
        with self._lock:
            self._all = None if status is None else Rule(status, times)

    def drip_all(self, times: int | None = 1, every: float = 1.0) -> None:
        """Drip the reply of the next ``times`` events POSTs, then forward again."""
        with self._lock:
            self._all = Rule(None, times, every)

    def _take(self, ids: list[str]) -> Rule | None:
        with self._lock:
            for ident in ids:
                self.seen[ident] += 1
            for ident in ids:
                rule = self._rules.get(ident)
                if rule is None or not _spend(rule):
                    continue
                self.hits[ident] += 1
                return rule
            if self._all is not None and _spend(self._all):
                self.faulted_all += 1
                return self._all
        return None

    # -- life cycle ----------------------------------------------------------------------------

    def start(self) -> FaultProxy:
        name = type(self).__name__
        self._server = AppThread(self._application, name, self.port, self._tls()).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()

    async def _application(self) -> web.Application:
        """Every request to ``_handle``; the session it forwards with (closed with the app)."""
        self._session = ClientSession(timeout=ClientTimeout(total=60))
        app = web.Application(client_max_size=self.client_max_size)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        app.on_cleanup.append(lambda _: self._session.close())
        return app

    def _tls(self) -> ssl.SSLContext | None:
        return None  # plain http

    # -- requests ------------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        if request.method == "POST" and request.path.rstrip("/") == EVENTS:
            rule = self._take(_event_ids(body))
            if rule is not None:
                if rule.status is None:
                    return await self._drip(request, rule.drip_every)
                return _answer(rule.status, rule.body_bytes)
        return await self._forward(request, body)

    async def _forward(self, request: web.Request, body: bytes) -> web.Response:
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_HEADERS}
        async with self._session.request(
            request.method,
            self.upstream + request.path_qs,
            data=body,
            headers=headers,
            allow_redirects=False,
        ) as reply:
            content = await reply.read()
            out = {k: v for k, v in reply.headers.items() if k.lower() not in HOP_HEADERS}
            return web.Response(status=reply.status, body=content, headers=out)

    async def _drip(self, request: web.Request, every: float) -> web.StreamResponse:
        """A 200 that promises 1,000,000 bytes and sends one every ``every`` seconds: each
        read finishes well within any read timeout, the reply never does."""
        response = web.StreamResponse(
            status=200, headers={"Content-Type": "application/json", "Content-Length": "1000000"}
        )
        await response.prepare(request)
        self.dripping += 1
        started = time.monotonic()
        try:
            for _ in range(1_000_000):
                await response.write(b" ")
                await asyncio.sleep(every)
        except (ConnectionError, asyncio.CancelledError):
            pass  # the client gave up: what the trial wants
        finally:
            self.dripping -= 1
            self.drips.append(time.monotonic() - started)
        return response


def _spend(rule: Rule) -> bool:
    """Take one use of ``rule``: False when it has none left."""
    if rule.times == 0:
        return False
    if rule.times is not None:
        rule.times -= 1
    return True


def _event_ids(body: bytes) -> list[str]:
    try:
        data: Any = orjson.loads(body)
    except orjson.JSONDecodeError:
        return []
    events = data.get("data") if isinstance(data, dict) and "data" in data else [data]
    if not isinstance(events, list):
        return []
    return [e["id"] for e in events if isinstance(e, dict) and isinstance(e.get("id"), str)]


def _answer(status: int, body_bytes: int = 0) -> web.Response:
    headers = {"Location": "https://elsewhere.example/events/1.0"} if 300 <= status < 400 else {}
    error: dict[str, str] = {"error": f"injected_{status}", "message": "fault proxy"}
    if body_bytes:
        error["pad"] = "x" * body_bytes
    body = orjson.dumps(error)
    return web.Response(status=status, body=body, headers=headers, content_type="application/json")
