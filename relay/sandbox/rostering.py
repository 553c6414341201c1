"""``/rostering/1.0/{collection}``: PUT upserts, GET by id, and filtered, sorted, paged lists.

PUT needs the body wrapped (``{"user": {...}}``) with the path's ``sourcedId``; it answers 201
when it created the record, 200 when it replaced it, 403 over another app's record, 400 with
``issues`` for a bad body or a reference to nothing. References to a course or class must be the
caller's own (403 otherwise): a class cannot hang under someone else's course.
"""

from __future__ import annotations

from typing import Any, Final

from aiohttp import web

from relay.sandbox.auth import authorize
from relay.sandbox.filters import FilterError, as_number, as_text, leaves, parse
from relay.sandbox.responses import ApiError, bad_request, check_params, json_response, read_json
from relay.sandbox.schemas import SCHEMAS, Schema
from relay.sandbox.state import SANDBOX, Sandbox
from relay.sandbox.store import Roster

LIST_PARAMS: Final = frozenset({"filter", "sort", "orderBy", "fields", "offset", "limit"})
ONE_PARAMS: Final = frozenset({"fields"})
DEFAULT_LIMIT: Final = 100
MAX_LIMIT: Final = 1000
# (path in the body, referenced collection, must the caller own it)
REFERENCES: Final[dict[str, tuple[tuple[tuple[str, ...], str, bool], ...]]] = {
    "orgs": ((("parent",), "orgs", False),),
    "users": ((("roles", "org"), "orgs", False), (("primaryOrg",), "orgs", False)),
    "courses": ((("org",), "orgs", False),),
    "classes": ((("course",), "courses", True), (("org",), "orgs", False)),
    "enrollments": ((("user",), "users", False), (("class",), "classes", True)),
}


def _schema(request: web.Request) -> Schema:
    schema = SCHEMAS.get(request.match_info["collection"])
    if schema is None:
        raise ApiError(404, "not_found", f"no collection {request.match_info['collection']!r}")
    return schema


async def put_record(request: web.Request) -> web.Response:
    claims = authorize(request, "roster.createput")
    schema = _schema(request)
    sandbox = request.app[SANDBOX]
    check_params(request, frozenset())
    sourced_id = request.match_info["sourced_id"]
    data = _unwrap(await read_json(request), schema, sourced_id)
    existing = sandbox.roster.get(schema.collection, sourced_id)
    if existing is not None and existing.owner != claims.app_id:
        raise ApiError(
            403, "forbidden", f"{schema.wrapper} {sourced_id!r} belongs to another application"
        )
    _check_references(sandbox.roster, schema.collection, data, claims.app_id)
    created = sandbox.roster.put(schema.collection, data, claims.app_id)
    stored = sandbox.roster.visible(schema.collection, sourced_id, claims.app_id)
    return json_response({schema.wrapper: stored}, status=201 if created else 200)


def _unwrap(body: Any, schema: Schema, sourced_id: str) -> dict[str, Any]:
    if not isinstance(body, dict) or not isinstance(body.get(schema.wrapper), dict):
        raise bad_request(
            f'the body must be {{"{schema.wrapper}": {{...}}}}',
            issues=[{"path": schema.wrapper, "message": "required: the record, wrapped"}],
        )
    extra = sorted(set(body) - {schema.wrapper})
    data: dict[str, Any] = body[schema.wrapper]
    issues = schema.issues(data)
    issues += [{"path": key, "message": "unexpected key beside the wrapper"} for key in extra]
    if isinstance(data.get("sourcedId"), str) and data["sourcedId"] != sourced_id:
        issues.append(
            {
                "path": f"{schema.wrapper}.sourcedId",
                "message": f"must equal the sourcedId in the path ({sourced_id!r})",
            }
        )
    if issues:
        raise bad_request(f"invalid {schema.wrapper}", issues=issues)
    return data


def _check_references(roster: Roster, collection: str, data: dict[str, Any], app: str) -> None:
    issues = []
    wrapper = SCHEMAS[collection].wrapper
    for path, target, owned in REFERENCES[collection]:
        for ref in leaves(data, path):
            target_id = ref.get("sourcedId") if isinstance(ref, dict) else None
            record = roster.get(target, target_id) if isinstance(target_id, str) else None
            where = f"{wrapper}.{'.'.join(path)}.sourcedId"
            noun = SCHEMAS[target].wrapper
            if record is None:
                issues.append({"path": where, "message": f"no {noun} {target_id!r}"})
            elif owned and record.owner != app:
                raise ApiError(
                    403, "forbidden", f"{noun} {target_id!r} belongs to another application"
                )
    if issues:
        raise bad_request("unknown references", issues=issues)


async def get_record(request: web.Request) -> web.Response:
    claims = authorize(request, "roster.readonly")
    schema = _schema(request)
    roster = request.app[SANDBOX].roster
    check_params(request, ONE_PARAMS)
    fields = _fields(request, roster, schema)
    sourced_id = request.match_info["sourced_id"]
    record = roster.visible(schema.collection, sourced_id, claims.app_id)
    if record is None:
        raise ApiError(404, "not_found", f"no {schema.wrapper} {sourced_id!r}")
    return json_response({schema.wrapper: _project(record, fields)})


async def list_records(request: web.Request) -> web.Response:
    claims = authorize(request, "roster.readonly")
    schema = _schema(request)
    sandbox = request.app[SANDBOX]
    check_params(request, LIST_PARAMS)
    records = _select(request, sandbox, schema, claims.app_id)
    offset, limit = paging(request, DEFAULT_LIMIT, MAX_LIMIT)
    fields = _fields(request, sandbox.roster, schema)
    page = [_project(r, fields) for r in records[offset : offset + limit]]
    return json_response(
        {schema.collection: page, "offset": offset, "limit": limit, "total": len(records)}
    )


def _select(
    request: web.Request, sandbox: Sandbox, schema: Schema, app: str
) -> list[dict[str, Any]]:
    known = sandbox.roster.known_fields(schema.collection)
    records = sandbox.roster.listed(schema.collection, app)
    text = request.query.get("filter")
    if text is not None:
        try:
            keep = parse(text, known)
        except FilterError as exc:
            raise ApiError(400, "invalid_filter", str(exc), filter=text) from None
        records = [r for r in records if keep(r)]
    order = request.query.get("orderBy", "asc")
    if order not in ("asc", "desc"):
        raise bad_request("orderBy must be 'asc' or 'desc'")
    sort = request.query.get("sort")
    if sort is None:
        return records[::-1] if order == "desc" else records
    path = tuple(sort.split("."))
    if path[0] not in known:
        raise bad_request(f"unknown sort field {sort!r}; fields: {', '.join(sorted(known))}")
    return _sorted(records, path, order == "desc")


def _sorted(
    records: list[dict[str, Any]], path: tuple[str, ...], desc: bool
) -> list[dict[str, Any]]:
    """Sort by the first value at ``path``: numbers numerically, then text; missing ones last."""
    keyed: list[tuple[tuple[int, float, str], dict[str, Any]]] = []
    missing: list[dict[str, Any]] = []
    for record in records:
        text = next((t for t in map(as_text, leaves(record, path)) if t is not None), None)
        if text is None:
            missing.append(record)
            continue
        number = as_number(text)
        keyed.append(((0, number, "") if number is not None else (1, 0.0, text), record))
    keyed.sort(key=lambda pair: pair[0], reverse=desc)
    return [record for _, record in keyed] + missing


def _fields(request: web.Request, roster: Roster, schema: Schema) -> list[str] | None:
    raw = request.query.get("fields")
    if raw is None:
        return None
    names = [name.strip() for name in raw.split(",") if name.strip()]
    known = roster.known_fields(schema.collection)
    unknown = [n for n in names if n not in known]
    if not names or unknown:
        raise bad_request(
            f"unknown field(s) in fields: {', '.join(unknown) or '(none given)'}; "
            f"fields: {', '.join(sorted(known))}"
        )
    return names


def _project(record: dict[str, Any], fields: list[str] | None) -> dict[str, Any]:
    if fields is None:
        return record
    return {name: record[name] for name in fields if name in record}


def paging(request: web.Request, default_limit: int, max_limit: int) -> tuple[int, int]:
    """``offset`` (>= 0, default 0) and ``limit`` (1..max, default given), or 400."""
    offset = _integer(request, "offset", 0)
    limit = _integer(request, "limit", default_limit)
    if offset < 0:
        raise bad_request("offset must be >= 0")
    if not 1 <= limit <= max_limit:
        raise bad_request(f"limit must be between 1 and {max_limit}")
    return offset, limit


def _integer(request: web.Request, name: str, default: int) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        return int(raw)
    except ValueError:
        raise bad_request(f"{name} must be an integer, not {raw!r}") from None
