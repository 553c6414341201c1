"""OAuth2 client-credentials tokens for the Partner API.

One ``TokenManager`` per process: the token is cached until shortly before it expires, one
refresh runs at a time and every concurrent caller shares its result (single flight), and a token
the API refused is dropped only if it is still the current one (so a burst of 401s on the same
token causes one refresh, not one per request).

Failures of the token endpoint are typed like any other API failure: bad credentials or scope
(400, 401, 403, other 4xx) are systemic, 408/425/429/5xx and network errors are transient.
With no valid token, a failed refresh is retried at a pace (0.5, 1, 2, then every 4 s, or the
endpoint's Retry-After), however many requests wait: the endpoint is never hammered, and a token
is back within seconds of the endpoint answering again.
The client secret and the tokens never appear in a repr, a message or a metric.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from typing import Literal

import httpx
import orjson

from relay.health import Condition, Health
from relay.metrics import TOKEN_EXPIRY, TOKEN_REFRESHES
from relay.timeback._http import error_code, send
from relay.timeback.errors import ApiSystemicError, ApiTransientError
from relay.timeback.responses import Outcome, classify, transient_answer

log = logging.getLogger(__name__)

AuthMethod = Literal["basic", "body"]
ENDPOINT = "token"
DEFAULT_EXPIRES_IN = 300.0  # when the endpoint omits expires_in: short, the 401 path covers it
RETRY_AFTER_CAP = 300.0
FAILED_REFRESH_PAUSE = 1.0  # seconds before retrying a failed refresh while the old token is valid
# With no valid token, refreshes are paced: 0.5, 1, 2, then every 4 s (jittered, or the
# endpoint's Retry-After), however many requests ask meanwhile. The cap bounds how late the
# relay notices the endpoint is back (the recovery goal: deliveries resume within 10 s).
REFRESH_RETRY_BASE = 0.5
REFRESH_RETRY_CAP = 4.0


class TokenManager:
    """Fetches, caches and shares the bearer token of one client.

    ``refresh_margin`` seconds before expiry the token is refreshed; for short-lived tokens the
    margin shrinks to half the lifetime, so a 3 s token is used for 1.5 s, not never.
    ``clock`` is monotonic seconds (injectable for tests). Token obtained, refused or lost is
    reported to ``health`` (the runtime's; by default one of its own).
    """

    def __init__(
        self,
        http: httpx.AsyncClient,
        token_url: str,
        client_id: str,
        client_secret: str,
        method: AuthMethod = "basic",
        scope: str | None = None,
        refresh_margin: float = 60.0,
        *,
        retry_after_cap: float = RETRY_AFTER_CAP,
        deadline: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        health: Health | None = None,
    ) -> None:
        if method not in ("basic", "body"):
            raise ValueError("method must be 'basic' or 'body'")
        self._http = http
        self.token_url = token_url
        self.client_id = client_id
        self._secret = client_secret
        self.method: AuthMethod = method
        self.scope = scope
        self.refresh_margin = refresh_margin
        self._retry_after_cap = retry_after_cap
        self._deadline = deadline  # seconds for a whole token exchange (None: per-read only)
        self._clock = clock
        self._sleep = sleep
        self._rng = random.Random()
        self._failed_refreshes = 0  # in a row, with no valid token
        self._retry_at = 0.0  # clock time the next refresh may start after a failed one
        self._token: str | None = None
        self._expires_at = 0.0  # clock time the token dies
        self._refresh_at = 0.0  # clock time we start replacing it
        self._not_before = 0.0  # after a failed refresh, while the old token still works
        self._inflight: asyncio.Future[str] | None = None
        self.refreshes = 0  # successful token requests (tests and diagnostics)
        self.health = health if health is not None else Health()

    def cached(self) -> str | None:
        """The cached token while it needs no refresh, else None: ``token``'s common case,
        for a caller that awaits ``token`` only when this is None (no coroutine per request)."""
        now = self._clock()
        if self._token is not None and (
            now < self._refresh_at or now < min(self._not_before, self._expires_at)
        ):
            return self._token
        return None

    async def token(self) -> str:
        """A valid access token, from the cache or from one shared refresh."""
        cached = self.cached()
        if cached is not None:
            return cached
        now = self._clock()
        if self._inflight is None and (wait := self._retry_at - now) > 0:
            # paced after a failure: every caller waits for the same next attempt
            await self._sleep(wait)
            if self._token is not None and self._clock() < self._refresh_at:
                return self._token  # another caller's attempt succeeded meanwhile
        if self._inflight is None:
            self._inflight = asyncio.ensure_future(self._refresh())
            self._inflight.add_done_callback(self._refresh_done)
        # shield: a cancelled caller must not cancel the refresh the others are waiting for
        return await asyncio.shield(self._inflight)

    def invalidate(self, token: str) -> None:
        """The API refused ``token``: forget it, unless a newer one already replaced it."""
        if self._token is not None and token == self._token:
            self._token = None
            self._refresh_at = self._expires_at = 0.0
            self._report(False, "the API refused the access token; a new one is asked for")
            TOKEN_EXPIRY.set(0)

    @property
    def valid(self) -> bool:
        return self._token is not None and self._clock() < self._expires_at

    def _refresh_done(self, future: asyncio.Future[str]) -> None:
        self._inflight = None
        if not future.cancelled():
            future.exception()  # retrieved here: a refresh nobody awaited must not warn

    async def _refresh(self) -> str:
        try:
            token, expires_in = await self._request()
        except (ApiTransientError, ApiSystemicError) as exc:
            TOKEN_REFRESHES.labels(outcome="failed").inc()
            if isinstance(exc, ApiTransientError) and self.valid and self._token is not None:
                # The endpoint hiccupped inside the refresh margin: keep the old token a while.
                log.warning("token refresh failed (%s); the current token is still valid", exc)
                self._not_before = self._clock() + (exc.retry_after or FAILED_REFRESH_PAUSE)
                return self._token
            self._pace(exc)
            self._report(self.valid, f"no access token: {exc}")
            raise
        self._store(token, expires_in)
        return token

    def _pace(self, exc: Exception) -> None:
        """When the next refresh may start: capped jittered backoff, or the Retry-After."""
        ceiling = min(REFRESH_RETRY_CAP, REFRESH_RETRY_BASE * 2**self._failed_refreshes)
        self._failed_refreshes = min(self._failed_refreshes + 1, 32)
        delay = self._rng.uniform(ceiling / 2, ceiling)
        if isinstance(exc, ApiTransientError) and exc.retry_after is not None:
            delay = max(delay, exc.retry_after)
        self._retry_at = self._clock() + delay

    def _store(self, token: str, expires_in: float) -> None:
        now = self._clock()
        margin = min(self.refresh_margin, expires_in / 2)
        self._token = token
        self._expires_at = now + expires_in
        self._refresh_at = now + expires_in - margin
        self._not_before = 0.0
        self._failed_refreshes = 0
        self._retry_at = 0.0
        self.refreshes += 1
        TOKEN_REFRESHES.labels(outcome="ok").inc()
        TOKEN_EXPIRY.set(time.time() + expires_in)
        self._report(True)
        log.info("access token obtained, expires in %.0f s", expires_in)

    def _report(self, valid: bool, why: str = "") -> None:
        self.health.report(Condition.TOKEN_VALID, valid, why, source=ENDPOINT)

    async def _request(self) -> tuple[str, float]:
        form = {"grant_type": "client_credentials"}
        if self.scope:
            form["scope"] = self.scope
        auth: httpx.BasicAuth | None = None
        if self.method == "basic":
            auth = httpx.BasicAuth(self.client_id, self._secret)
        else:
            form |= {"client_id": self.client_id, "client_secret": self._secret}
        request = self._http.build_request(
            "POST", self.token_url, data=form, headers={"Accept": "application/json"}
        )
        what = "token endpoint unreachable"
        response = await send(
            lambda r: self._http.send(r, auth=auth, stream=True),
            request,
            endpoint=ENDPOINT,
            what=what,
            deadline=self._deadline,
        )
        return self._parse(response)

    def _parse(self, response: httpx.Response) -> tuple[str, float]:
        status = response.status_code
        outcome = classify(status, endpoint=ENDPOINT)
        if outcome is Outcome.TRANSIENT:
            raise transient_answer(
                response,
                endpoint=ENDPOINT,
                what="token endpoint",
                retry_after_cap=self._retry_after_cap,
            )
        if outcome is not Outcome.DELIVERED:
            raise ApiSystemicError(
                f"token endpoint refused the client credentials: HTTP {status}"
                f" ({error_code(response) or 'no error code'}); check RELAY_CLIENT_ID,"
                " RELAY_CLIENT_SECRET, RELAY_AUTH_METHOD, RELAY_SCOPE and RELAY_TOKEN_URL",
                endpoint=ENDPOINT,
                status=status,
            )
        return _read_token(response)

    def __repr__(self) -> str:
        return (
            f"TokenManager(token_url={self.token_url!r}, client_id={self.client_id!r}, "
            f"method={self.method!r}, scope={self.scope!r}, valid={self.valid})"
        )


def _read_token(response: httpx.Response) -> tuple[str, float]:
    try:
        body = orjson.loads(response.content)
        token = body["access_token"]
        token_type = str(body.get("token_type", "Bearer"))
        expires_in = float(body.get("expires_in") or DEFAULT_EXPIRES_IN)
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError):
        # Never echo the body: it may hold a token.
        raise ApiTransientError(
            "token endpoint answered 2xx without a readable access_token",
            endpoint=ENDPOINT,
            cause="malformed",
            status=response.status_code,
        ) from None
    if not isinstance(token, str) or not token or token_type.lower() != "bearer":
        raise ApiSystemicError(
            f"token endpoint issued an unusable token (type {token_type[:20]!r})",
            endpoint=ENDPOINT,
            status=response.status_code,
        )
    return token, max(expires_in, 1.0)
