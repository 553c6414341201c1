"""``POST /events/1.0``: intake of one Caliper event (or an envelope of at most N).

Checks, in order (docs/partner-api.md#sandbox-events): bearer with ``events.write``; JSON (415);
parsable body (400); envelope shape and size; then the relay's own checker
(``relay.caliper.validate.check``: Caliper, then the TimeBack rules). A failure answers 400
``invalid_event`` with every issue (``data[i].`` in front for envelopes) and nothing is accepted.
Otherwise each event gets a receipt: a seen id is a ``duplicate`` (same 202, never processed
again, unless ``dedupe`` is off); a SessionEvent is processed at once (200); the rest wait for
the processor (202).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any, Final

import orjson
from aiohttp import web

from relay.caliper.ids import format_time
from relay.sandbox.auth import authorize
from relay.sandbox.journal import Receipt
from relay.sandbox.responses import ApiError, check_params, json_response
from relay.sandbox.state import SANDBOX, Sandbox
from relay.sandbox.tokens import Claims

CONTEXT: Final = "http://purl.imsglobal.org/ctx/caliper/v1p2"
ENVELOPE_KEYS: Final = frozenset({"sensor", "sendTime", "dataVersion", "data"})
_TIME: Final = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z\Z")
RAW_LIMIT: Final = 2000  # characters of an unparsable body kept for inspection

Issues = list[dict[str, str]]


async def post_event(request: web.Request) -> web.Response:
    claims = authorize(request, "events.write")
    sandbox = request.app[SANDBOX]
    check_params(request, frozenset())
    raw = await request.read()
    if request.content_type != "application/json" and not request.content_type.endswith("+json"):
        _reject(sandbox, claims, raw.decode(errors="replace")[:RAW_LIMIT], 415, [])
        raise ApiError(415, "unsupported_media_type", "send application/json")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        issues = [{"path": "", "message": f"not valid JSON: {exc}"}]
        _reject(sandbox, claims, raw.decode(errors="replace")[:RAW_LIMIT], 400, issues)
        raise ApiError(400, "invalid_event", "the body is not valid JSON", issues=issues) from None
    events, prefix, issues = _split(body, sandbox.config.max_events_per_request)
    if not issues:
        issues = _check_all(sandbox, events, prefix)
    if issues:
        for event in events or [body]:
            _reject(sandbox, claims, event, 400, issues)
        raise ApiError(400, "invalid_event", "the event breaks the rules", issues=issues)
    receipts = [_accept(sandbox, claims, event) for event in events]
    sandbox.journal.took(len(receipts))
    status = max(r.status for r in receipts)
    reply: dict[str, Any] = {
        "status": "processed" if status == 200 else "accepted",
        "id": receipts[0].id,
    }
    if len(receipts) > 1:
        reply["ids"] = [r.id for r in receipts]
    return json_response(reply, status=status)


def _split(body: Any, limit: int) -> tuple[list[Any], str, Issues]:
    """The events in ``body`` (a bare event or an envelope), the issue prefix, and any issues."""
    if not isinstance(body, dict):
        return [], "", [{"path": "", "message": "the body must be a JSON object"}]
    if "type" in body or "data" not in body:
        return [body], "", []
    issues = [
        {"path": k, "message": "unrecognized envelope key"} for k in body if k not in ENVELOPE_KEYS
    ]
    if not isinstance(body.get("sensor"), str) or not body["sensor"]:
        issues.append({"path": "sensor", "message": "required: a string (an IRI)"})
    if not isinstance(body.get("sendTime"), str) or not _TIME.match(body["sendTime"]):
        issues.append({"path": "sendTime", "message": "required: YYYY-MM-DDTHH:MM:SS.sssZ"})
    if body.get("dataVersion") != CONTEXT:
        issues.append({"path": "dataVersion", "message": f"must be {CONTEXT}"})
    data = body.get("data")
    if not isinstance(data, list) or not data:
        issues.append({"path": "data", "message": "must be a non-empty array of events"})
        return [], "", issues
    if len(data) > limit:
        issues.append(
            {"path": "data", "message": f"at most {limit} event(s) per request, got {len(data)}"}
        )
    return data, "data[{i}].", issues


def _check_all(sandbox: Sandbox, events: list[Any], prefix: str) -> Issues:
    from relay.caliper.validate import check  # the relay's own (docs/partner-api.md#sandbox-events)

    issues: Issues = []
    for i, event in enumerate(events):
        head = prefix.format(i=i)
        for issue in check(event, sandbox.rules):
            path = f"{head}{issue.path}" if issue.path else head.rstrip(".")
            issues.append({"path": path, "message": issue.message})
    return issues


def _new_receipt(sandbox: Sandbox, claims: Claims, event: Any, status: int, fate: str) -> Receipt:
    fields = event if isinstance(event, dict) else {}
    return Receipt(
        seq=sandbox.journal.next_seq(),
        client_id=claims.client_id,
        app_id=claims.app_id,
        received_at=format_time(datetime.now(UTC)),
        status=status,
        fate=fate,
        body=event,
        id=_text(fields.get("id")),
        type=_text(fields.get("type")),
        action=_text(fields.get("action")),
    )


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _reject(sandbox: Sandbox, claims: Claims, event: Any, status: int, issues: Issues) -> None:
    receipt = _new_receipt(sandbox, claims, event, status, "rejected_at_validation")
    receipt.issues = issues or [{"path": "", "message": "not application/json"}]
    receipt.reason = "unsupported_media_type" if status == 415 else "invalid_event"
    sandbox.journal.add(receipt)


def _accept(sandbox: Sandbox, claims: Claims, event: dict[str, Any]) -> Receipt:
    session = event.get("type") == "SessionEvent"
    receipt = _new_receipt(sandbox, claims, event, 200 if session else 202, "pending")
    first = sandbox.journal.first_accepted(receipt.id) if receipt.id else None
    sandbox.journal.add(receipt)
    if first is not None:
        if sandbox.config.dedupe:
            same = _canonical(first.body) == _canonical(event)
            receipt.fate = "duplicate" if same else "duplicate_mismatch"
            receipt.duplicate_of = first.seq
            receipt.reason = f"id already received (receipt {first.seq})"
            return receipt
        receipt.extra["fact_key_suffix"] = f"#{receipt.seq}"
    if session:
        sandbox.processor.process(receipt)
    else:
        sandbox.processor.schedule(receipt)
    return receipt


def _canonical(value: Any) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
