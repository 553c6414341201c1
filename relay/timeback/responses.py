"""What a Partner API answer means: the response table, ``Retry-After``, what an answer to an
envelope must say to count each of its events as taken, and the one mapping of a transient
answer to ``ApiTransientError`` (the client and the token manager both use it; a missing answer
is ``_http.send``'s).

| answer | one event | an envelope (RELAY_EVENTS_PER_REQUEST > 1) |
|---|---|---|
| 200, 201, 202, other 2xx | delivered | each event delivered, unless 207 or a failure listed |
| 207 Multi-Status | delivered | not all taken: split until each event is alone |
| 2xx whose JSON body lists failures | delivered | not all taken: split |
| 409 | delivered (already there) | split (which of them?) |
| 401 | refresh the token once, resend | same |
| 403, 404, 3xx, a second 401 | systemic: held | systemic: held |
| other 4xx | rejected (dead letter) | split (only a lone event's answer is its own) |
| 408, 425, 429, 5xx, no reply | transient: retry | retry while no one else is taken, else split |

A body "lists failures" (``envelope_taken``) when it is a JSON object with a non-empty
``errors``, ``failed``, ``failures`` or ``rejected``, or a ``results``, ``data`` or ``events``
list with an entry whose ``status`` is 300 or more or that carries an ``error`` or ``errors``.
JSON that does not parse (cut at the size cap) cannot say: split. The Partner API documents one
event per POST and no body for its 202: any other shape is read as "all taken", the answer it
documents.
"""

from __future__ import annotations

import enum
import math
import re
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpx
import orjson

from relay.timeback.errors import ApiTransientError


class Outcome(enum.StrEnum):
    """What one API response means for the request that caused it."""

    DELIVERED = "delivered"
    DUPLICATE = "duplicate"  # 409: the API already has it; as good as delivered
    REJECTED = "rejected"  # this request can never succeed as it is
    UNAUTHORIZED = "unauthorized"  # 401: drop the token, refresh once, retry
    SYSTEMIC = "systemic"  # the relay is misconfigured or lacks a scope
    TRANSIENT = "transient"  # retry later


TRANSIENT_STATUSES = frozenset({408, 425, 429})


def classify(status: int, *, endpoint: str = "events") -> Outcome:
    """The response table (docs/operations.md#partner-api-answers); ``endpoint`` matters for 404.

    A 404 on ``events`` means the base URL is wrong (systemic); elsewhere (rostering, xp) it is
    "not found", reported as ``REJECTED`` for the caller to interpret.
    """
    if 200 <= status < 300:
        return Outcome.DELIVERED
    if status == 409:
        return Outcome.DUPLICATE
    if status == 401:
        return Outcome.UNAUTHORIZED
    if status == 403 or (status == 404 and endpoint == "events"):
        return Outcome.SYSTEMIC
    if status in TRANSIENT_STATUSES or 500 <= status < 600:
        return Outcome.TRANSIENT
    if 400 <= status < 500:
        return Outcome.REJECTED
    # 1xx and 3xx never reach us (httpx does not follow redirects): a proxy or a wrong URL.
    return Outcome.SYSTEMIC


MULTI_STATUS = 207
_FAILURE_LISTS = ("errors", "failed", "failures", "rejected")
_RESULT_LISTS = ("results", "data", "events")


def envelope_taken(status: int, body: bytes) -> bool:
    """Whether a 2xx answer to an envelope says that every event of it was taken (the table
    above): not a 207, and no failure listed in its body."""
    if status == MULTI_STATUS:
        return False
    text = body.strip()
    try:
        answer = orjson.loads(text) if text else None
    except orjson.JSONDecodeError:  # cut at the size cap, or not JSON at all (a plain 202)
        return not text.startswith((b"{", b"["))
    if not isinstance(answer, dict):
        return True
    if any(answer.get(key) for key in _FAILURE_LISTS):
        return False
    results = [answer.get(key) for key in _RESULT_LISTS]
    return not any(
        isinstance(entries, list) and any(_failed(entry) for entry in entries)
        for entries in results
    )


def _failed(entry: object) -> bool:
    if not isinstance(entry, dict):
        return False
    status = entry.get("status")
    failed_status = isinstance(status, int) and not isinstance(status, bool) and status >= 300
    return failed_status or bool(entry.get("error") or entry.get("errors"))


def transient_answer(
    response: httpx.Response, *, endpoint: str, what: str, retry_after_cap: float
) -> ApiTransientError:
    """A 408/425/429/5xx answer as an error, with its capped ``Retry-After``."""
    status = response.status_code
    return ApiTransientError(
        f"{what} answered HTTP {status}",
        endpoint=endpoint,
        cause=str(status),
        status=status,
        retry_after=parse_retry_after(
            response.headers.get("retry-after"), now=datetime.now(UTC), cap=retry_after_cap
        ),
    )


_SECONDS = re.compile(r"^[+-]?\d+(\.\d+)?$")


def parse_retry_after(value: str | None, *, now: datetime, cap: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` value (delta-seconds or HTTP-date), in [0, cap].

    Returns None when the header is absent or unreadable: the caller then uses its own backoff.
    """
    if value is None:
        return None
    text = value.strip()
    seconds = float(text) if _SECONDS.match(text) else _seconds_until(text, now)
    if seconds is None or not math.isfinite(seconds):
        return None
    return min(max(seconds, 0.0), cap)


def _seconds_until(text: str, now: datetime) -> float | None:
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:  # pragma: no cover - older Pythons returned None instead of raising
        return None
    if when.tzinfo is None:  # RFC 9110 dates are GMT; a naive result means "-0000"
        when = when.replace(tzinfo=UTC)
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    return (when - now).total_seconds()
