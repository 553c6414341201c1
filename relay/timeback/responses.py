"""What a Partner API answer means: the response table, ``Retry-After``, and the one mapping of
a transient answer to ``ApiTransientError`` (the client and the token manager both use it; a
missing answer is ``_http.send``'s).
"""

from __future__ import annotations

import enum
import math
import re
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpx

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
