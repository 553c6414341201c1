"""A Schema Registry over HTTP for the relay under test: ``GET /schemas/ids/{id}`` only.

Why a fake: no Schema Registry runs on this machine (Confluent's is not on the package
registries reachable here) and the relay only ever asks that one endpoint, which this answers the
way Confluent's does ({"schema": ..., "schemaType": "AVRO"}, 404 with error_code 40403). Its
faults are the trials' knobs: ``fail_rate`` answers 503 (seeded), ``latency`` delays each answer,
``down`` answers 503 to everything.

    registry = FakeRegistry({1: xp_schema_text, 2: question_schema_text}).start()
    relay_env(..., RELAY_SCHEMA_REGISTRY_URL=registry.url)
"""

from __future__ import annotations

import asyncio
import random
import threading
from collections import Counter

from aiohttp import web

from tests.conftest import free_port


class FakeRegistry:
    def __init__(self, schemas: dict[int, str], seed: int = 0) -> None:
        self.schemas = schemas
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.fail_rate = 0.0
        self.latency = (0.0, 0.0)  # seconds: uniform(low, high)
        self.down = False
        self.calls: Counter[int] = Counter()
        self.failed = 0
        self._rng = random.Random(seed)
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="fake-registry", daemon=True)
        self._runner: web.AppRunner | None = None

    def start(self) -> FakeRegistry:
        self._thread.start()
        if not self._ready.wait(30):
            raise RuntimeError("the fake registry did not start")
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
        app = web.Application()
        app.router.add_get("/schemas/ids/{id}", self._schema)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def _schema(self, request: web.Request) -> web.Response:
        schema_id = int(request.match_info["id"])
        self.calls[schema_id] += 1
        low, high = self.latency
        if high > 0:
            await asyncio.sleep(self._rng.uniform(low, high))
        if self.down or self._rng.random() < self.fail_rate:
            self.failed += 1
            return web.json_response({"error_code": 50301, "message": "unavailable"}, status=503)
        text = self.schemas.get(schema_id)
        if text is None:
            body = {"error_code": 40403, "message": f"Schema {schema_id} not found"}
            return web.json_response(body, status=404)
        return web.json_response({"schema": text, "schemaType": "AVRO"})
