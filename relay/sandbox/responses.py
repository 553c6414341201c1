"""JSON replies and the one exception handlers raise to answer with an error."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from aiohttp import web


class ApiError(Exception):
    """Answer ``status`` with ``{"error": code, ...extra}``; raised anywhere inside a handler."""

    def __init__(
        self,
        status: int,
        error: str,
        message: str | None = None,
        *,
        headers: Mapping[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(f"{status} {error}: {message or ''}")
        self.status = status
        self.body: dict[str, Any] = {"error": error}
        if message:
            self.body["message"] = message
        self.body.update(extra)
        self.headers = dict(headers or {})

    def response(self) -> web.Response:
        return json_response(self.body, status=self.status, headers=self.headers)


def json_response(
    body: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> web.Response:
    return web.Response(
        body=orjson.dumps(body),
        status=status,
        content_type="application/json",
        headers=headers,
    )


def bad_request(message: str, **extra: Any) -> ApiError:
    return ApiError(400, "invalid_request", message, **extra)


def check_params(request: web.Request, allowed: frozenset[str]) -> None:
    """Unknown query parameters are refused (custom params such as ``userId`` are unsupported)."""
    unknown = sorted(set(request.query) - allowed)
    if unknown:
        raise bad_request(
            f"unsupported query parameter(s): {', '.join(unknown)}; allowed: "
            f"{', '.join(sorted(allowed)) or 'none'}"
        )
    repeated = sorted(k for k in set(request.query) if len(request.query.getall(k)) > 1)
    if repeated:
        raise bad_request(f"query parameter(s) given more than once: {', '.join(repeated)}")


async def read_json(request: web.Request) -> Any:
    """The body as JSON, or 400 ``invalid_request`` saying why it is not."""
    raw = await request.read()
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise bad_request(f"the body is not valid JSON: {exc}") from None
