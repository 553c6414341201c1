"""The schema catalogue: every ``.avsc`` of the activity contract, by name, version and fingerprint.

Files are named ``<Record>.v<N>.avsc`` (``XpEarned.v1.avsc``); the highest ``N`` of a record is its
reader schema, every version is a possible writer. Each schema is identified on the wire by the
CRC-64-AVRO fingerprint of its parsing canonical form, 8 bytes little-endian, exactly as Avro
single-object encoding carries it.

Two parsed forms are kept per schema. ``parsed`` is the ordinary fastavro form (logical types on:
datetimes and UUIDs), for anyone who wants it. ``plain`` is the same schema with the ``uuid`` and
``timestamp-millis`` logical types removed: the decoder reads with it so that a malformed uuid or
an out-of-range timestamp reaches the semantic checks (``invalid-field`` naming the field) instead
of failing inside fastavro, and so that no datetime is built twice. Both have the same canonical
form, hence the same fingerprint.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastavro import parse_schema
from fastavro.schema import fingerprint as _fastavro_fingerprint
from fastavro.schema import to_parsing_canonical_form

from relay.contract.activity import NAMESPACE, require_every_type
from relay.errors import ConfigError

Schema = dict[str, Any]  # a fastavro parsed schema (a dict with __fastavro_parsed)

_FILE_NAME = re.compile(r"(?P<name>[A-Za-z_][A-Za-z0-9_]*)\.v(?P<version>[0-9]+)\.avsc")
# Logical types the decoder interprets itself (see the module docstring).
_PLAIN_LOGICAL_TYPES = frozenset({"uuid", "timestamp-millis"})


def default_schema_dir() -> Path:
    """``schemas/activity`` of the source tree (the package is installed editable or run in place).

    The schemas live beside the package, not inside it, so a non-editable wheel does not carry
    them: such an install passes its own directory to ``Catalogue.load``.
    """
    return Path(__file__).resolve().parents[2] / "schemas" / "activity"


def fingerprint_of(schema: Schema) -> bytes:
    """CRC-64-AVRO of the parsing canonical form, as the 8 little-endian bytes of the wire."""
    canonical = to_parsing_canonical_form(schema)
    return bytes.fromhex(_fastavro_fingerprint(canonical, "CRC-64-AVRO"))


def strip_logical_types(node: Any) -> Any:
    """A copy of a schema (JSON form) without the logical types the decoder interprets itself."""
    if isinstance(node, dict):
        return {
            key: strip_logical_types(value)
            for key, value in node.items()
            if not (key == "logicalType" and value in _PLAIN_LOGICAL_TYPES)
        }
    if isinstance(node, list):
        return [strip_logical_types(item) for item in node]
    return node


def parse_both(schema_json: Any) -> tuple[Schema, Schema]:
    """``(parsed, plain)`` of one schema; each parse gets its own named-type table, so the
    ``Activity`` record defined inline in every file never clashes with another file's."""
    parsed = parse_schema(schema_json, named_schemas={})
    plain = parse_schema(strip_logical_types(schema_json), named_schemas={})
    if not isinstance(parsed, dict) or not isinstance(plain, dict):
        raise ValueError(f"a named schema is required, got {parsed!r:.60}")
    return parsed, plain


@dataclass(frozen=True, slots=True)
class SchemaEntry:
    """One version of one record schema."""

    full_name: str  # timeback.activity.XpEarned
    version: int
    path: Path
    text: str  # the .avsc as written: what a producer registers with a Schema Registry
    parsed: Schema
    plain: Schema
    fingerprint: bytes  # 8 bytes, little-endian CRC-64-AVRO

    @property
    def short_name(self) -> str:
        return self.full_name.rpartition(".")[2]


class Catalogue:
    """Every known schema version: writer lookup by fingerprint, newest version as reader."""

    def __init__(self, entries: Iterable[SchemaEntry]) -> None:
        self._newest: dict[str, SchemaEntry] = {}
        self._by_fingerprint: dict[bytes, SchemaEntry] = {}
        self._versions: dict[tuple[str, int], SchemaEntry] = {}
        for entry in entries:
            self._add(entry)

    def _add(self, entry: SchemaEntry) -> None:
        key = (entry.full_name, entry.version)
        if key in self._versions:
            other = self._versions[key].path
            raise ConfigError(
                f"schema {entry.full_name} v{entry.version} is defined twice: {other}, {entry.path}"
            )
        self._versions[key] = entry
        # Identical canonical forms are the same writer: keep the newest as its entry.
        known = self._by_fingerprint.get(entry.fingerprint)
        if known is None or known.version < entry.version:
            self._by_fingerprint[entry.fingerprint] = entry
        newest = self._newest.get(entry.full_name)
        if newest is None or newest.version < entry.version:
            self._newest[entry.full_name] = entry

    @classmethod
    def load(cls, *dirs: Path) -> Catalogue:
        """Load every ``<Record>.v<N>.avsc`` of ``dirs`` (default: the repository's schemas)."""
        paths = dirs or (default_schema_dir(),)
        return cls(_load_file(path) for directory in paths for path in _avsc_files(directory))

    # -- lookups ------------------------------------------------------------------------------

    def names(self) -> tuple[str, ...]:
        """Full names of every record with a schema, sorted."""
        return tuple(sorted(self._newest))

    def entry(self, full_name: str) -> SchemaEntry:
        """The newest version of ``full_name``; KeyError names the record when it is unknown."""
        try:
            return self._newest[full_name]
        except KeyError:
            raise KeyError(f"no schema for record {full_name!r}") from None

    def reader(self, full_name: str) -> Schema:
        """The parsed reader schema (newest version) of ``full_name``."""
        return self.entry(full_name).parsed

    def fingerprint(self, full_name: str) -> bytes:
        """The 8-byte fingerprint of the newest version of ``full_name``."""
        return self.entry(full_name).fingerprint

    def writer_by_fingerprint(self, fp: bytes) -> Schema | None:
        """The parsed writer schema whose fingerprint is ``fp``, or None."""
        entry = self._by_fingerprint.get(bytes(fp))
        return entry.parsed if entry else None

    def entry_by_fingerprint(self, fp: bytes) -> SchemaEntry | None:
        return self._by_fingerprint.get(bytes(fp))

    def version(self, full_name: str, version: int) -> SchemaEntry:
        try:
            return self._versions[(full_name, version)]
        except KeyError:
            raise KeyError(f"no schema for record {full_name!r} version {version}") from None

    def resolve(self, record_type: str) -> str:
        """The full name of a short (``XpEarned``) or full record name; KeyError when unknown."""
        full = record_type if "." in record_type else f"{NAMESPACE}.{record_type}"
        if full not in self._newest:
            known = ", ".join(entry.short_name for entry in self._newest.values())
            raise KeyError(f"unknown record type {record_type!r} (known: {known})")
        return full

    def __iter__(self) -> Iterator[SchemaEntry]:
        """Every version of every record."""
        return iter(self._versions.values())

    def __len__(self) -> int:
        return len(self._versions)


@functools.cache
def default_catalogue() -> Catalogue:
    """The repository's catalogue, loaded once per process: one schema per record type (a
    schema without its model, or a model without its schema, stops the relay at start)."""
    catalogue = Catalogue.load()
    short_names = [name.rpartition(".")[2] for name in catalogue.names()]
    require_every_type(f"the schemas of {default_schema_dir()}", short_names)
    return catalogue


def _avsc_files(directory: Path) -> list[Path]:
    if not directory.is_dir():
        raise ConfigError(f"schema directory {directory} does not exist")
    return sorted(directory.glob("*.avsc"))


def _load_file(path: Path) -> SchemaEntry:
    match = _FILE_NAME.fullmatch(path.name)
    if match is None:
        raise ConfigError(f"{path}: schema files are named <Record>.v<N>.avsc")
    text = path.read_text(encoding="utf-8")
    try:
        parsed, plain = parse_both(json.loads(text))
    except Exception as exc:  # fastavro raises several types for a bad schema
        raise ConfigError(f"{path}: not a valid Avro schema: {exc}") from exc
    full_name = parsed.get("name") if parsed.get("type") == "record" else None
    if not isinstance(full_name, str) or full_name.rpartition(".")[2] != match["name"]:
        raise ConfigError(f"{path}: must define the record {match['name']!r}")
    return SchemaEntry(
        full_name=full_name,
        version=int(match["version"]),
        path=path,
        text=text,
        parsed=parsed,
        plain=plain,
        fingerprint=fingerprint_of(parsed),
    )
