"""Python / JSON values -> the Avro datum of a record, checked exactly as a decoded record is.

Used by ``relay map`` (NDJSON records) and by ``encode`` (producer apps). The value is coerced
field by field against the newest schema of its record type (timestamps from ISO-8601 strings,
aware datetimes or epoch milliseconds; UUID objects; enum members; absent optional fields), then
validated by fastavro against the same plain schema the decoder reads with, then handed to the
same ``activity_from_record``. So a record accepted here is one the relay accepts from Kafka.
"""

from __future__ import annotations

import enum
import math
import uuid
from collections.abc import Mapping
from dataclasses import fields, is_dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from fastavro.validation import ValidationError, validate

from relay.contract.activity import Activity
from relay.contract.build import Checks, activity_from_record, invalid
from relay.contract.catalogue import Catalogue, Schema
from relay.errors import Rejection

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MS: Final = timedelta(milliseconds=1)
_INT_RANGE: Final = {"int": (-(2**31), 2**31 - 1), "long": (-(2**63), 2**63 - 1)}


def activity_from_json(obj: Any, catalogue: Catalogue, checks: Checks) -> Activity:
    """The checked Activity of ``{"type": "XpEarned" (or the full name), ...fields}``."""
    if not isinstance(obj, Mapping) or not isinstance(obj.get("type"), str):
        raise Rejection(
            "decode", "unsupported-record", 'expected an object with a "type" (the record name)'
        )
    full_name = resolve_type(catalogue, obj["type"])
    fields_only = {key: value for key, value in obj.items() if key != "type"}
    datum = to_datum(full_name, fields_only, catalogue)
    return activity_from_record(full_name, datum, checks)


def resolve_type(catalogue: Catalogue, record_type: str) -> str:
    """The full name of a short or full record name; Rejection unsupported-record if unknown."""
    try:
        return catalogue.resolve(record_type)
    except KeyError as exc:
        raise Rejection("decode", "unsupported-record", str(exc.args[0])) from None


def to_datum(full_name: str, value: Mapping[str, Any], catalogue: Catalogue) -> dict[str, Any]:
    """The Avro datum of ``value`` for the newest schema of ``full_name`` (plain form: timestamps
    as epoch ms, uuids as strings), validated; Rejection ``invalid-field`` naming the field."""
    entry = catalogue.entry(full_name)
    named = entry.parsed["__named_schemas"]
    datum = _Coercer(named).record(entry.parsed, value, "")
    # A backstop: the coercion above should have caught everything. raise_errors=False first,
    # because with True fastavro builds an error for every union branch it tries.
    if not validate(datum, entry.plain, raise_errors=False, strict=True):
        raise invalid(_failing_field(datum, entry.plain), "does not match the schema")
    return datum


def as_mapping(value: Any) -> Mapping[str, Any]:
    """A mapping view of a record value: a Mapping as is, an Activity dataclass field by field."""
    if isinstance(value, Mapping):
        return value
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: _undataclass(getattr(value, f.name)) for f in fields(value)}
    raise invalid("record", f"expected a mapping or an Activity, got {type(value).__name__}")


def _undataclass(value: Any) -> Any:
    return as_mapping(value) if is_dataclass(value) and not isinstance(value, type) else value


class _Coercer:
    """Walks a parsed schema beside a value, converting what has one obvious Avro form."""

    def __init__(self, named: Mapping[str, Any]) -> None:
        self._named = named

    def record(self, schema: Schema, value: Any, path: str) -> dict[str, Any]:
        if not isinstance(value, Mapping):
            raise invalid(path or "record", f"expected an object, got {_kind(value)}")
        known = {f["name"] for f in schema["fields"]}
        unknown = sorted(str(key) for key in value if key not in known)
        if unknown:
            raise invalid(_join(path, unknown[0]), f"unknown field (known: {', '.join(known)})")
        datum: dict[str, Any] = {}
        for field in schema["fields"]:
            name, where = field["name"], _join(path, field["name"])
            if name in value:
                datum[name] = self.value(field["type"], value[name], where)
            elif "default" in field:
                datum[name] = field["default"]
            else:
                raise invalid(where, "missing")
        return datum

    def value(self, schema: Any, value: Any, path: str) -> Any:
        if isinstance(schema, str) and schema in self._named:
            schema = self._named[schema]
        if isinstance(schema, list):
            return self._union(schema, value, path)
        kind = schema if isinstance(schema, str) else schema["type"]
        if kind == "record":
            return self.record(schema, value, path)
        if kind == "enum":
            return _enum(schema, value, path)
        logical = schema.get("logicalType") if isinstance(schema, dict) else None
        if logical == "timestamp-millis":
            return _epoch_ms(value, path)
        if logical == "uuid" and isinstance(value, uuid.UUID):
            return str(value)
        return _primitive(kind, value, path)

    def _union(self, branches: list[Any], value: Any, path: str) -> Any:
        if value is None:
            if "null" in branches:
                return None
            raise invalid(path, "must not be null")
        error: Rejection | None = None
        for branch in branches:
            if branch == "null":
                continue
            try:
                return self.value(branch, value, path)
            except Rejection as exc:
                error = exc
        assert error is not None  # a union has at least one non-null branch
        raise error


def _primitive(kind: str, value: Any, path: str) -> Any:
    if kind == "string":
        if not isinstance(value, str):
            raise invalid(path, f"expected a string, got {_kind(value)}")
        return str(value)  # a plain str, also for str subclasses
    if kind in _INT_RANGE:
        low, high = _INT_RANGE[kind]
        if type(value) is not int:
            raise invalid(path, f"expected an integer, got {_kind(value)}")
        if not low <= value <= high:
            raise invalid(path, f"{value} does not fit an Avro {kind}")
        return value
    if kind in ("double", "float"):
        if type(value) not in (int, float):
            raise invalid(path, f"expected a number, got {_kind(value)}")
        return float(value)
    if kind == "boolean":
        if type(value) is not bool:
            raise invalid(path, f"expected true or false, got {_kind(value)}")
        return value
    raise invalid(path, f"Avro type {kind} is not supported in JSON input")


def _enum(schema: Schema, value: Any, path: str) -> str:
    symbol = value.value if isinstance(value, enum.Enum) else value
    if not isinstance(symbol, str) or symbol not in schema["symbols"]:
        raise invalid(path, f"{value!r} is not one of {', '.join(schema['symbols'])}")
    return str(symbol)


def _epoch_ms(value: Any, path: str) -> int:
    """Epoch milliseconds from an int, an aware datetime or an ISO-8601 string with an offset."""
    if type(value) is int:
        return value
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)  # JSON numbers such as 1.7e12
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise invalid(path, f"{value[:40]!r} is not an ISO-8601 date-time") from None
    if isinstance(value, datetime):
        if value.utcoffset() is None:
            raise invalid(path, "date-time without a timezone (add Z or an offset)")
        return (value - _EPOCH) // _MS
    raise invalid(path, f"expected an ISO-8601 string or epoch milliseconds, got {_kind(value)}")


def _failing_field(datum: dict[str, Any], schema: Schema) -> str:
    try:
        validate(datum, schema, raise_errors=True, strict=True)
    except ValidationError as exc:
        # fastavro names a field after its record's full name: timeback.activity.XpEarned.xp,
        # timeback.activity.Activity.id (no path to nested records): keep what is informative.
        errors: list[Any] = list(exc.errors or [])
        name = str(getattr(errors[0], "field", "")) if errors else ""
        top, namespace = f"{schema['name']}.", schema["name"].rpartition(".")[0] + "."
        return name.removeprefix(top).removeprefix(namespace) or "record"
    return "record"


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__
