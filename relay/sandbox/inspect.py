"""``/sandbox/1.0/``: what the sandbox saw and did, and its run-time knobs. No auth, never faulted.

- ``GET stats``: received = accepted + rejected_at_validation (per event), processing fates,
  ``faulted`` replies.
- ``GET events[?fate=&type=&client_id=]``, ``GET events/{id}`` (the receipt that owns the id,
  with its body, plus every receipt of that id), ``GET rejections`` (validation and processing).
- ``POST process``: run every pending event now. ``POST reset``: forget all state (not faults).
- ``GET|POST|DELETE faults``: show, merge, clear (``faults.py``).
- ``GET config``; ``POST clients`` (add a client at run time); ``POST tokens/revoke`` (every
  token issued so far now gets 401 ``invalid_token``).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from relay.sandbox.config import Client
from relay.sandbox.journal import FATES
from relay.sandbox.responses import ApiError, bad_request, check_params, json_response, read_json
from relay.sandbox.state import SANDBOX

PREFIX = "/sandbox/1.0"


async def stats(request: web.Request) -> web.Response:
    return json_response(request.app[SANDBOX].stats())


async def events(request: web.Request) -> web.Response:
    check_params(request, frozenset({"fate", "type", "client_id"}))
    fate = request.query.get("fate")
    if fate is not None and fate not in FATES:
        raise bad_request(f"unknown fate {fate!r}; one of {sorted(FATES)}")
    wanted = {k: request.query[k] for k in ("fate", "type", "client_id") if k in request.query}
    rows = [
        r.summary()
        for r in request.app[SANDBOX].journal.receipts
        if all(getattr(r, k) == v for k, v in wanted.items())
    ]
    return json_response({"events": rows, "total": len(rows)})


async def event(request: web.Request) -> web.Response:
    journal = request.app[SANDBOX].journal
    event_id = request.match_info["event_id"]
    primary = journal.primary(event_id)
    if primary is None:
        raise ApiError(404, "not_found", f"no event {event_id!r} was received")
    receipts = [r.summary() for r in journal.by_id[event_id]]
    return json_response({**primary.full(), "receipts": receipts})


async def rejections(request: web.Request) -> web.Response:
    rows: list[dict[str, Any]] = []
    for r in request.app[SANDBOX].journal.receipts:
        if r.fate not in ("rejected_at_validation", "rejected"):
            continue
        kind = "validation" if r.fate == "rejected_at_validation" else "processing"
        row = {"kind": kind, **r.summary()}
        if "message" in r.extra:
            row["message"] = r.extra["message"]
        rows.append(row)
    return json_response({"rejections": rows, "total": len(rows)})


async def process(request: web.Request) -> web.Response:
    count = request.app[SANDBOX].processor.run_pending()
    return json_response({"processed": count})


async def reset(request: web.Request) -> web.Response:
    request.app[SANDBOX].reset()
    return json_response({"status": "reset"})


async def get_faults(request: web.Request) -> web.Response:
    return json_response(request.app[SANDBOX].faults.show())


async def post_faults(request: web.Request) -> web.Response:
    faults = request.app[SANDBOX].faults
    try:
        faults.merge(await read_json(request))
    except ValueError as exc:
        raise bad_request(str(exc)) from None
    return json_response(faults.show())


async def delete_faults(request: web.Request) -> web.Response:
    faults = request.app[SANDBOX].faults
    faults.clear()
    return json_response(faults.show())


async def config(request: web.Request) -> web.Response:
    sandbox = request.app[SANDBOX]
    cfg = sandbox.config
    return json_response(
        {
            "iri_base": cfg.iri,
            "clients": [c.public() for c in sandbox.clients.values()],
            "token_ttl_s": cfg.token_ttl_s,
            "processing_delay": cfg.processing_delay.describe(),
            "max_events_per_request": cfg.max_events_per_request,
            "dedupe": cfg.dedupe,
            "subjects": list(cfg.subjects),
            "strict_extensions": cfg.strict_extensions,
        }
    )


async def add_client(request: web.Request) -> web.Response:
    sandbox = request.app[SANDBOX]
    try:
        client = Client.from_mapping(await read_json(request))
    except ValueError as exc:
        raise bad_request(str(exc)) from None
    if client.client_id in sandbox.clients:
        raise ApiError(409, "conflict", f"client {client.client_id!r} exists")
    sandbox.clients[client.client_id] = client
    return json_response(client.public(), status=201)


async def revoke_tokens(request: web.Request) -> web.Response:
    request.app[SANDBOX].signer.revoke_all()
    return json_response({"status": "revoked"})


def add_routes(app: web.Application) -> None:
    app.router.add_get(f"{PREFIX}/stats", stats)
    app.router.add_get(f"{PREFIX}/events", events)
    app.router.add_get(PREFIX + "/events/{event_id:.+}", event)
    app.router.add_get(f"{PREFIX}/rejections", rejections)
    app.router.add_post(f"{PREFIX}/process", process)
    app.router.add_post(f"{PREFIX}/reset", reset)
    app.router.add_get(f"{PREFIX}/faults", get_faults)
    app.router.add_post(f"{PREFIX}/faults", post_faults)
    app.router.add_delete(f"{PREFIX}/faults", delete_faults)
    app.router.add_get(f"{PREFIX}/config", config)
    app.router.add_post(f"{PREFIX}/clients", add_client)
    app.router.add_post(f"{PREFIX}/tokens/revoke", revoke_tokens)
