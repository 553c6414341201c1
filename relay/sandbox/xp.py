"""``GET /xp/1.0/users/{sourcedId}/entries``: one user's XP ledger, filtered and paged.

``applicationId``; ``startDate`` (>=) or ``after`` (>); ``endDate`` (<=) or ``before`` (<), each
a date or a datetime (a date bound covers its whole day); ``offset`` (0) and ``limit`` (50, max
100). Unknown parameters or bad values: 400. Unknown user: 404. Oldest entries first.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, time, timedelta
from typing import Final

from aiohttp import web

from relay.sandbox.auth import authorize
from relay.sandbox.responses import ApiError, bad_request, check_params, json_response
from relay.sandbox.rostering import paging
from relay.sandbox.schemas import parse_date
from relay.sandbox.state import SANDBOX

PARAMS: Final = frozenset(
    {"applicationId", "startDate", "after", "endDate", "before", "offset", "limit"}
)
DEFAULT_LIMIT: Final = 50
MAX_LIMIT: Final = 100

Bound = Callable[[datetime], bool]


async def xp_entries(request: web.Request) -> web.Response:
    authorize(request, "events.readonly")
    sandbox = request.app[SANDBOX]
    check_params(request, PARAMS)
    offset, limit = paging(request, DEFAULT_LIMIT, MAX_LIMIT)
    bounds = _bounds(request)
    app = request.query.get("applicationId")
    user_id = request.match_info["user_id"]
    if sandbox.roster.get("users", user_id) is None:
        raise ApiError(404, "not_found", f"no user {user_id!r}")
    entries = [
        entry
        for when, entry in sandbox.ledger.for_user(user_id)
        if (app is None or entry["applicationId"] == app) and all(b(when) for b in bounds)
    ]
    page = entries[offset : offset + limit]
    return json_response({"entries": page, "offset": offset, "limit": limit, "total": len(entries)})


def _bounds(request: web.Request) -> list[Bound]:
    bounds: list[Bound] = []
    for name, lower, inclusive in (
        ("startDate", True, True),
        ("after", True, False),
        ("endDate", False, True),
        ("before", False, False),
    ):
        raw = request.query.get(name)
        if raw is not None:
            bounds.append(_bound(raw, name, lower, inclusive))
    return bounds


def _bound(raw: str, name: str, lower: bool, inclusive: bool) -> Bound:
    parsed = parse_date(raw)
    if parsed is None:
        raise bad_request(
            f"{name} must be a date (YYYY-MM-DD) or an ISO 8601 datetime, not {raw!r}"
        )
    if isinstance(parsed, datetime):
        moment = parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
        if lower:
            return (lambda t: t >= moment) if inclusive else (lambda t: t > moment)
        return (lambda t: t <= moment) if inclusive else (lambda t: t < moment)
    # A date is a whole day: startDate/endDate include it, after/before exclude it.
    day = datetime.combine(parsed, time(), UTC)
    if lower:
        first = day if inclusive else day + timedelta(days=1)
        return lambda t: t >= first
    stop = day + timedelta(days=1) if inclusive else day
    return lambda t: t < stop
