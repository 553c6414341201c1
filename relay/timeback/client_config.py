"""The Partner API client's configuration (``ClientConfig``, explicit: ``relay.wiring`` reads
RELAY_* into it) and the transport it makes of it (``api_transport``): timeouts, pool limits,
the proxy the environment names, and which connections the events POST takes."""

from __future__ import annotations

import urllib.request
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import urlsplit

import httpx
from pydantic import SecretStr

from relay.config import default_deadline, default_token_url
from relay.timeback.auth import AuthMethod
from relay.timeback.transport import ApiTransport


@dataclass(frozen=True)
class ClientConfig:
    """Everything the client needs, explicit (``relay.wiring.client_config`` reads RELAY_*)."""

    base_url: str
    client_id: str
    client_secret: SecretStr = field(repr=False)
    token_url: str | None = None  # default {base_url}/auth/1.0/token
    auth_method: AuthMethod = "basic"
    scope: str | None = None
    timeout: float = 10.0
    deadline: float | None = None  # whole request, reply included; default 3 x timeout
    max_in_flight: int = 64
    retry_after_cap: float = 300.0
    refresh_margin: float = 60.0
    events_wire: Literal["lean", "aiohttp"] = "lean"  # the events POST's connections (wire.py)

    @property
    def effective_token_url(self) -> str:
        return self.token_url or default_token_url(self.base_url)

    @property
    def effective_deadline(self) -> float:
        return self.deadline or default_deadline(self.timeout)

    def timeouts(self) -> httpx.Timeout:
        # Connecting should be quick; a slow connect means a dead host, so it gets less time.
        return httpx.Timeout(
            connect=min(self.timeout, 5.0),
            read=self.timeout,
            write=self.timeout,
            pool=self.timeout,
        )

    def limits(self) -> httpx.Limits:
        # One connection per record in flight, plus one for the (single-flight) token refresh,
        # all kept alive: a steady stream of events never reconnects.
        size = self.max_in_flight + 1
        return httpx.Limits(max_connections=size, max_keepalive_connections=size)


def api_transport(config: ClientConfig) -> httpx.AsyncBaseTransport:
    """aiohttp's connection pool for the API, through the proxy the environment names for its
    URL (HTTPS_PROXY / HTTP_PROXY / ALL_PROXY, minus NO_PROXY), as httpx's ``trust_env`` does;
    the CA store also follows the environment (SSL_CERT_FILE, SSL_CERT_DIR). Events go on
    connections of their own (``wire``) unless a proxy is named or ``events_wire`` says aiohttp."""
    return ApiTransport(
        limits=config.limits(),
        proxy=environment_proxy(config.base_url),
        lean_events=config.events_wire == "lean",
    )


def environment_proxy(url: str) -> httpx.Proxy | None:
    """The proxy the environment names for ``url``, if any (the standard library's reading of
    the ``*_proxy`` variables, which httpx and curl share)."""
    parts = urlsplit(url)
    if parts.hostname and urllib.request.proxy_bypass(parts.hostname):
        return None
    proxies = urllib.request.getproxies()
    proxy = proxies.get(parts.scheme) or proxies.get("all")
    return httpx.Proxy(proxy) if proxy else None
