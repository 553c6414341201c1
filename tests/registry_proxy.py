"""A reverse proxy in front of the real Schema Registry, for what Apicurio 2.3.1 cannot do itself.

    proxy = RegistryProxy(schema_registry.base, user_info="relay:secret",
                          certificate=(cert_pem, key_pem), client_ca=ca_pem).start()
    proxy.url                  # https://127.0.0.1:PORT/apis/ccompat/v6
    proxy.down = True          # every request answered 503 (a registry behind a load balancer
                               # that lost its backends), until False again
    proxy.fail_rate = 0.5      # seeded share of requests answered 503
    proxy.latency = (0.3, 0.6) # seconds each answer is held (uniform)
    proxy.fetched              # schema ids asked for by GET /schemas/ids/{id}
    proxy.refused              # requests without the right credentials (401)

Why a proxy: Apicurio Registry 2.3.1 authenticates only through an OpenID Connect identity server
(Keycloak); its "basic auth" is client credentials exchanged at that server, and none runs here.
Production registries that take basic auth directly (Confluent Cloud, Karapace, Apicurio behind a
gateway) answer 401 with a Confluent error body, as this proxy does, over TLS. Its 503s and delays
are the faults the real server cannot be asked to produce; everything else is forwarded to it.
It reuses tests/reliability/fault_proxy.py's forwarding and life cycle.
"""

from __future__ import annotations

import asyncio
import base64
import random
import re
import ssl
from collections import Counter
from pathlib import Path

from aiohttp import web

from tests.registry import CCOMPAT, CONTENT_TYPE
from tests.reliability.fault_proxy import FaultProxy

_BY_ID = re.compile(r"/schemas/ids/(\d+)")


class RegistryProxy(FaultProxy):
    client_max_size = 1024**2  # aiohttp's default

    def __init__(
        self,
        upstream: str,
        *,
        user_info: str | None = None,
        certificate: tuple[Path, Path] | None = None,
        client_ca: Path | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__(upstream)
        self.certificate = certificate  # (certificate chain PEM, private key PEM)
        self.client_ca = client_ca
        scheme = "https" if certificate else "http"
        self.base = f"{scheme}://127.0.0.1:{self.port}"
        self.url = self.base + CCOMPAT
        self.authorization = (
            "Basic " + base64.b64encode(user_info.encode()).decode() if user_info else None
        )
        self.down = False
        self.fail_rate = 0.0
        self.latency = (0.0, 0.0)
        self.failed = 0  # requests answered 503
        self.refused = 0  # requests answered 401
        self.fetched: list[int] = []
        self.calls: Counter[int] = Counter()  # schema id -> GET /schemas/ids/{id} requests
        self._rng = random.Random(seed)

    def _tls(self) -> ssl.SSLContext | None:
        if self.certificate is None:
            return None
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(*self.certificate)
        if self.client_ca is not None:
            tls.verify_mode = ssl.CERT_REQUIRED
            tls.load_verify_locations(self.client_ca)
        return tls

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        match = _BY_ID.search(request.path)
        if match is not None:
            schema_id = int(match.group(1))
            self.fetched.append(schema_id)
            self.calls[schema_id] += 1
        if self.authorization is not None and request.headers.get("Authorization") != (
            self.authorization
        ):
            self.refused += 1
            return _error(401, 40101, "Unauthorized")
        low, high = self.latency
        if high > 0:
            await asyncio.sleep(self._rng.uniform(low, high))
        if self.down or self._rng.random() < self.fail_rate:
            self.failed += 1
            return _error(503, 50301, "Service unavailable (registry proxy)")
        return await self._forward(request, body)


def _error(status: int, code: int, message: str) -> web.Response:
    return web.json_response(
        {"error_code": code, "message": message}, status=status, content_type=CONTENT_TYPE
    )
