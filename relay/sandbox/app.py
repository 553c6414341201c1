"""``create_app(config)``: the sandbox as an aiohttp application, at the real API's paths."""

from __future__ import annotations

import logging

from aiohttp import web

from relay.sandbox import auth, events, inspect, rostering, xp
from relay.sandbox.config import SandboxConfig
from relay.sandbox.faults import Handler, fault_middleware
from relay.sandbox.responses import ApiError, json_response
from relay.sandbox.state import SANDBOX, Sandbox

log = logging.getLogger(__name__)


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every error is JSON ``{"error": ...}``, as the real API answers."""
    try:
        return await handler(request)
    except ApiError as exc:
        return exc.response()
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = exc.reason.lower().replace(" ", "_")
        return json_response({"error": code, "message": exc.text or exc.reason}, exc.status)
    except Exception:
        log.exception("sandbox handler failed: %s %s", request.method, request.path)
        return json_response({"error": "server_error"}, 500)


def create_app(config: SandboxConfig | None = None) -> web.Application:
    sandbox = Sandbox(config or SandboxConfig())
    # Faults outermost: they answer before the request is read and see the final status.
    app = web.Application(middlewares=[fault_middleware(sandbox.faults), error_middleware])
    app[SANDBOX] = sandbox
    app.router.add_post("/auth/1.0/token", auth.token)
    app.router.add_post("/events/1.0", events.post_event)
    app.router.add_post("/events/1.0/", events.post_event)
    app.router.add_get("/xp/1.0/users/{user_id}/entries", xp.xp_entries)
    app.router.add_get("/rostering/1.0/{collection}", rostering.list_records)
    app.router.add_get("/rostering/1.0/{collection}/{sourced_id}", rostering.get_record)
    app.router.add_put("/rostering/1.0/{collection}/{sourced_id}", rostering.put_record)
    inspect.add_routes(app)
    app.on_cleanup.append(_stop_processing)
    return app


async def _stop_processing(app: web.Application) -> None:
    app[SANDBOX].processor.reset()
