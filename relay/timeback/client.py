"""The Partner API client: events, rostering and xp calls over one ``httpx.AsyncClient``.

The client speaks httpx; its connections are aiohttp's (``transport.ApiTransport``). API calls
build their ``httpx.Request`` (URL parsed once) and hand it straight to the transport; only the
token endpoint goes through ``AsyncClient`` (its Basic auth). The events POST, the hot path, is
prepared once (``transport.ApiTransport.lane``: lean connections of its own, ``wire.WireLane``,
or aiohttp's, ``transport.Lane``) when the transport is ``ApiTransport``: a 2xx
comes back as its status and body, any other answer as the ``httpx.Response`` every error path
reads. Why, with the figures: bench/NOTES-client.md.

Every call is ONE attempt (plus one token refresh and resend on a 401); retrying is the caller's
business (``relay.timeback.delivery``). Every ``send_event`` attempt (one event or an envelope)
passes the ``RequestGate`` (``relay.resilience.gate``): the shared pause a 429 or a
``Retry-After`` sets, the in-flight limit (fixed or adaptive) and the optional rate; token,
rostering and xp calls do not (they are rare, and the token endpoint paces itself). Each call
returns, or raises one of ``relay.timeback.errors``: ``RequestRejected`` (a 4xx for this request,
``body`` capped to 2 KB; a rostering 404 returns None), ``ApiTransientError``
(408/425/429/5xx, no response, the whole request past ``ClientConfig.deadline``;
``retry_after`` capped) or ``ApiSystemicError`` (403, 404 on /events, a second 401, bad
credentials). What a record's stage it means is the pipeline's to say. The secret and tokens
never reach messages, reprs or metrics.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Final, Protocol, TypeVar
from urllib.parse import quote

import httpx
import orjson

from relay import __version__
from relay.health import Health
from relay.metrics import SYSTEMIC_ERRORS
from relay.resilience.gate import GateConfig, RequestGate
from relay.timeback._http import Timing, capped_body, error_code, send
from relay.timeback.answer import Answer
from relay.timeback.auth import TokenManager
from relay.timeback.client_config import ClientConfig, api_transport
from relay.timeback.errors import (
    ApiSystemicError,
    ApiTransientError,
    EventRejected,
    RequestRejected,
)
from relay.timeback.responses import Outcome, classify, parse_retry_after, transient_answer
from relay.timeback.transport import ApiTransport

EVENTS_PATH: Final = "/events/1.0"
EVENTS_ROUTE: Final = f"POST {EVENTS_PATH}"
JSON: Final = {"Content-Type": "application/json", "Accept": "application/json"}
# path collection -> wrapper key of a rostering PUT body
ENTITIES: Final = {
    "users": "user",
    "courses": "course",
    "classes": "class",
    "enrollments": "enrollment",
}


@dataclass(frozen=True, slots=True)
class SendResult:
    """An event the API took: its HTTP status, DELIVERED or DUPLICATE, and attempts made;
    ``body`` (capped) is read for an envelope's per-event results (responses.py)."""

    status: int
    outcome: Outcome
    attempts: int = 1
    body: bytes = field(default=b"", compare=False, repr=False)


class TimeBackClient:
    """The Partner API over one pooled httpx client. Use as an async context manager.

    ``health`` (the runtime's) hears of the token: its manager reports there."""

    def __init__(
        self,
        config: ClientConfig,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        auth: TokenManager | None = None,
        health: Health | None = None,
        gate: RequestGate | None = None,
    ) -> None:
        self.config = config
        # every events request passes it (one event or an envelope: it counts requests)
        self.gate = gate or RequestGate(GateConfig(max_in_flight=config.max_in_flight))
        # aiohttp's pool behind httpx (``transport`` overrides); the token endpoint goes through
        # an AsyncClient on the same transport (its Basic auth), API calls straight to it.
        self._transport = transport or api_transport(config)
        self._base = config.base_url.rstrip("/") + "/"
        self._events_url = httpx.URL(self._base + EVENTS_PATH.lstrip("/"))
        self._headers = {"User-Agent": f"timeback-relay/{__version__}"}
        self._extensions = {"timeout": config.timeouts().as_dict()}
        self._deadline = config.effective_deadline
        # the events POST's timing and metric children, bound once
        self._events_timing = Timing("events", _NO_RESPONSE[("POST", "events")], self._deadline)
        # the events POST's headers, prepared once (Host and Content-Length as httpx adds them)
        self._events_headers = httpx.Headers(
            {"Host": self._events_url.netloc.decode("ascii"), **self._headers, **JSON}
        ).raw
        self._bearer: tuple[str, tuple[bytes, bytes]] = ("", (b"", b""))  # token, its header
        # the events POST prepared for aiohttp once, when the transport is ours (module doc)
        self._lane = (
            self._transport.lane(
                self._events_url,
                [(k.decode("ascii"), v.decode("ascii")) for k, v in self._events_headers],
                config.timeouts(),
            )
            if isinstance(self._transport, ApiTransport)
            else None
        )
        self._http = httpx.AsyncClient(
            base_url=config.base_url,
            timeout=config.timeouts(),
            transport=self._transport,
            headers=self._headers,
            follow_redirects=False,  # a redirect would mean a wrong base URL: say so, not follow
            trust_env=False,  # the environment's proxy is the transport's (api_transport)
        )
        self.auth = auth or TokenManager(
            self._http,
            config.effective_token_url,
            config.client_id,
            config.client_secret.get_secret_value(),
            config.auth_method,
            config.scope,
            config.refresh_margin,
            retry_after_cap=config.retry_after_cap,
            deadline=config.effective_deadline,
            health=health,
        )

    async def __aenter__(self) -> TimeBackClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    # --- events ---------------------------------------------------------------------------

    async def send_event(self, payload: bytes, *, event_type: str) -> SendResult:
        """POST one serialized Caliper event (or an envelope): one attempt (one 401 refresh
        included)."""
        # the shared pause, in-flight limit and rate; passed as ``async with gate.slot()``
        # would, without its two coroutines in the common case (``Slot``)
        slot = self.gate.slot()
        if not slot.enter_now():
            await slot.enter()
        raised: BaseException | None = None
        try:
            # the first send made here, not through ``_authorized`` nor ``_post_event``: each
            # coroutine is a frame every resumption of the request passes through
            token = self.auth.cached() or await self.auth.token()
            lane = self._lane
            if lane is None:
                answer: Answer | httpx.Response = await self._post_event(payload, token)
            else:
                answer = await self._events_timing.run(lane.post(payload, token))
                if not 200 <= answer.status_code < 300:
                    answer = answer.response(self._events_request(payload, token))
            if answer.status_code == 401:
                answer = await self._authorized(
                    self._post_event, payload, "events", EVENTS_ROUTE, refused=token
                )
            if isinstance(answer, Answer):  # a 2xx the lane read: nothing more to look at
                slot.answered(answer.status_code)
                return SendResult(answer.status_code, Outcome.DELIVERED, body=answer.content)
            response = answer
            slot.answered(response.status_code, self._retry_after(response))
        except BaseException as exc:
            raised = exc
            raise
        finally:
            slot.leave(raised)
        outcome = self._check(response, "events", EVENTS_ROUTE)
        if outcome is Outcome.REJECTED:
            raise EventRejected(
                f"the API refused the {event_type} with HTTP {response.status_code}"
                f"{_hint(response)}",
                status=response.status_code,
                body=capped_body(response),
            )
        return SendResult(response.status_code, outcome, body=response.content)

    # --- rostering ------------------------------------------------------------------------

    async def get_course(self, course_id: str) -> dict[str, Any] | None:
        """The course record (wrapped or bare in the reply), or None when not found (404)."""
        return await self._get_entity("courses", course_id)

    async def get_user(self, user_id: str) -> dict[str, Any] | None:
        """The user record (wrapped or bare in the reply), or None when not found (404)."""
        return await self._get_entity("users", user_id)

    async def put(self, entity: str, sourced_id: str, body: dict[str, Any]) -> int:
        """Upsert ``body`` as ``{"<singular>": body}`` at ``/rostering/1.0/{entity}/{id}``.

        ``entity`` is the collection: users, courses, classes or enrollments. Returns 200 or 201.
        """
        if entity not in ENTITIES:
            raise ValueError(f"unknown rostering entity {entity!r}; one of {sorted(ENTITIES)}")
        path = f"/rostering/1.0/{entity}/{quote(sourced_id, safe='')}"
        route = f"PUT /rostering/1.0/{entity}/{{id}}"
        payload = orjson.dumps({ENTITIES[entity]: body})
        response = await self._authorized(
            self._sender("PUT", "rostering", path, JSON), payload, "rostering", route
        )
        if self._check(response, "rostering", route) is not Outcome.DELIVERED:
            raise _request_rejected(response, "rostering", route)
        return response.status_code

    # --- xp -------------------------------------------------------------------------------

    async def xp_entries(
        self,
        user_id: str,
        *,
        application_id: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> dict[str, Any]:
        """One page of the user's XP ledger: ``{"entries": [...], "offset", "limit", "total"}``."""
        path = f"/xp/1.0/users/{quote(user_id, safe='')}/entries"
        route = "GET /xp/1.0/users/{id}/entries"
        params: dict[str, str | int] = {"limit": limit, "offset": offset}
        if application_id:
            params["applicationId"] = application_id
        send = self._sender("GET", "xp", path, params=params)
        response = await self._authorized(send, None, "xp", route)
        if self._check(response, "xp", route) is not Outcome.DELIVERED:
            raise _request_rejected(response, "xp", route)
        return _json_object(response, "xp")

    # --- plumbing -------------------------------------------------------------------------

    async def _get_entity(self, collection: str, sourced_id: str) -> dict[str, Any] | None:
        path = f"/rostering/1.0/{collection}/{quote(sourced_id, safe='')}"
        route = f"GET /rostering/1.0/{collection}/{{id}}"
        send = self._sender("GET", "rostering", path)
        response = await self._authorized(send, None, "rostering", route)
        if response.status_code == 404:
            return None
        if self._check(response, "rostering", route) is not Outcome.DELIVERED:
            raise _request_rejected(response, "rostering", route)
        record = _json_object(response, "rostering")
        wrapped = record.get(ENTITIES[collection])
        return wrapped if isinstance(wrapped, dict) else record

    async def _authorized(
        self,
        send: Callable[[C, str], Awaitable[R]],
        content: C,
        endpoint: str,
        route: str,
        *,
        refused: str | None = None,
    ) -> R:
        """``send(content, token)`` with the bearer token; on a 401 drop it, refresh once and
        resend. ``refused``: the token a first send (the caller's own) was answered 401 with."""
        if refused is not None:
            self.auth.invalidate(refused)
        for first in (True, False) if refused is None else (False,):
            token = await self.auth.token()
            response = await send(content, token)
            if response.status_code != 401:
                return response
            self.auth.invalidate(token)
            if not first:
                break
        raise self._systemic(endpoint, 401, f"{route}: a freshly issued token was refused")

    async def _post_event(self, payload: bytes, token: str) -> Answer | httpx.Response:
        """One events POST: through the lane when there is one (a 2xx an ``Answer``, any other
        answer the ``httpx.Response`` the httpx path makes of it), else through httpx."""
        if self._lane is None:
            return await self._send(self._events_request(payload, token), "events", "POST")
        answer = await self._events_timing.run(self._lane.post(payload, token))
        if 200 <= answer.status_code < 300:
            return answer
        return answer.response(self._events_request(payload, token))

    def _sender(
        self,
        method: str,
        endpoint: str,
        path: str,
        headers: dict[str, str] | None = None,
        params: dict[str, str | int] | None = None,
    ) -> Callable[[bytes | None, str], Awaitable[httpx.Response]]:
        """``send(content, token)`` for ``_authorized``: a request the general way (rostering,
        xp: they are rare)."""
        url = self._url(path, params)

        async def sent(content: bytes | None, token: str) -> httpx.Response:
            request = self._request(method, url, content, headers, token)
            return await self._send(request, endpoint, method)

        return sent

    def _request(
        self,
        method: str,
        url: httpx.URL,
        content: bytes | None,
        headers: dict[str, str] | None,
        token: str,
    ) -> httpx.Request:
        authorization = {"Authorization": f"Bearer {token}"}
        return httpx.Request(
            method,
            url,
            content=content,
            headers={**self._headers, **(headers or {}), **authorization},
            extensions=self._extensions,
        )

    def _events_request(self, payload: bytes, token: str) -> httpx.Request:
        """The events POST from headers prepared once (Authorization once per token), its body
        a stream in memory, read: the request ``httpx.Request(content=...)`` builds, without
        merging and normalising every header and encoding the body again per event."""
        if self._bearer[0] != token:
            self._bearer = (token, (b"Authorization", f"Bearer {token}".encode("ascii")))
        headers = [
            *self._events_headers,
            self._bearer[1],
            (b"Content-Length", b"%d" % len(payload)),
        ]
        request = httpx.Request(
            "POST",
            self._events_url,
            headers=headers,
            stream=httpx.ByteStream(payload),
            extensions=self._extensions,
        )
        request.read()  # the body in memory: ``request.content``, as ``content=`` leaves it
        request.headers.encoding = "ascii"  # as they were prepared: nothing to detect per request
        return request

    def _url(self, path: str, params: dict[str, str | int] | None) -> httpx.URL:
        """``path`` under the base URL (its own path kept, as httpx's ``base_url`` does)."""
        return httpx.URL(self._base + path.lstrip("/"), params=params)

    async def _send(self, request: httpx.Request, endpoint: str, method: str) -> httpx.Response:
        """One send within the total deadline (``_http.send``)."""
        return await send(
            self._transport.handle_async_request,
            request,
            endpoint=endpoint,
            what=_NO_RESPONSE.get((method, endpoint)) or f"{method} {endpoint}: no response",
            deadline=self._deadline,
        )

    def _retry_after(self, response: httpx.Response) -> float | None:
        """The answer's ``Retry-After``, capped; read only where the gate heeds it (a 429 or a
        5xx pauses every request), so a success never scans its headers."""
        if response.status_code < 400 or "retry-after" not in response.headers:
            return None
        cap = self.config.retry_after_cap
        return parse_retry_after(response.headers["retry-after"], now=datetime.now(UTC), cap=cap)

    def _check(self, response: httpx.Response, endpoint: str, route: str) -> Outcome:
        """Classify; raise for transient and systemic answers, return the rest."""
        status = response.status_code
        outcome = classify(status, endpoint=endpoint)
        if outcome is Outcome.TRANSIENT:
            cap = self.config.retry_after_cap
            raise transient_answer(response, endpoint=endpoint, what=route, retry_after_cap=cap)
        if outcome is Outcome.SYSTEMIC:
            raise self._systemic(endpoint, status, f"{route} answered HTTP {status}")
        return outcome

    def _systemic(self, endpoint: str, status: int, what: str) -> ApiSystemicError:
        SYSTEMIC_ERRORS.labels(endpoint=endpoint, status=str(status)).inc()
        message = f"{what}: {_HINTS.get(status, _HINT)}"
        return ApiSystemicError(message, endpoint=endpoint, status=status)

    def __repr__(self) -> str:
        return (
            f"TimeBackClient(base_url={self.config.base_url!r}, "
            f"client_id={self.config.client_id!r})"
        )


_NO_RESPONSE: Final = {("POST", "events"): "POST events: no response"}  # the hot path's


class _Answered(Protocol):
    status_code: int


C = TypeVar("C")  # what ``_authorized`` sends: an event's bytes, a rostering body, nothing
R = TypeVar("R", bound=_Answered)  # what it answers: an ``httpx.Response``, or an ``Answer``
_HINT = "the relay is misconfigured; check RELAY_API_BASE_URL"
_HINTS = {
    401: "the credentials are not accepted; check RELAY_CLIENT_ID and RELAY_CLIENT_SECRET",
    403: "the client lacks a scope or permission; check RELAY_SCOPE and the client's grants",
    404: "no such endpoint; check RELAY_API_BASE_URL",
}


def _hint(response: httpx.Response) -> str:
    """``": invalid_event"`` from a JSON error body, else empty: a short hint for messages."""
    code = error_code(response)
    return f": {code}" if code else ""


def _json_object(response: httpx.Response, endpoint: str) -> dict[str, Any]:
    try:
        body = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        body = None
    if not isinstance(body, dict):
        # A 2xx that is not a JSON object is a proxy page or a half-written reply: try again.
        raise ApiTransientError(
            f"{endpoint}: HTTP {response.status_code} without a JSON object",
            endpoint=endpoint,
            cause="malformed",
            status=response.status_code,
        )
    return body


def _request_rejected(response: httpx.Response, endpoint: str, route: str) -> RequestRejected:
    return RequestRejected(
        f"{route} answered HTTP {response.status_code}{_hint(response)}",
        endpoint=endpoint,
        status=response.status_code,
        body=capped_body(response),
    )
