"""The in-memory roster: records per collection, each owned by the app that PUT it.

Seeded records (org ``partner-sandbox``) have no owner: everyone sees them and nobody may replace
them. Users are visible to every app by id (students are shared); everything else only to its
owner. Lists show the caller's records plus the seeded ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from relay.caliper.ids import format_time
from relay.sandbox.config import DEFAULT_ORG
from relay.sandbox.schemas import SCHEMAS

SHARED_BY_ID: Final = frozenset({"users"})
# References processing follows for every event (enrollment attribution): indexed, so that an
# event costs the same with 10 or 100 000 enrollments.
INDEXED: Final = (("classes", "course"), ("enrollments", "user"))


@dataclass
class Record:
    data: dict[str, Any]
    owner: str | None  # the app that PUT it; None: seeded


def _now() -> str:
    return format_time(datetime.now(UTC))


class Roster:
    """Records by collection (``users``, ``courses``, ``classes``, ``enrollments``, ``orgs``)."""

    def __init__(self) -> None:
        self.tables: dict[str, dict[str, Record]] = {name: {} for name in SCHEMAS}
        self._refs: dict[tuple[str, str], dict[str, set[str]]] = {key: {} for key in INDEXED}
        self.reset()

    def reset(self) -> None:
        for table in self.tables.values():
            table.clear()
        for index in self._refs.values():
            index.clear()
        self.tables["orgs"][DEFAULT_ORG] = Record(
            {
                "sourcedId": DEFAULT_ORG,
                "status": "active",
                "dateLastModified": _now(),
                "name": "Partner sandbox",
                "type": "school",
            },
            None,
        )

    def get(self, collection: str, sourced_id: str) -> Record | None:
        return self.tables[collection].get(sourced_id)

    def visible(self, collection: str, sourced_id: str, app: str) -> dict[str, Any] | None:
        """The record as ``app`` may see it by id, or None (missing, or someone else's)."""
        record = self.get(collection, sourced_id)
        if record is None:
            return None
        if record.owner in (None, app) or collection in SHARED_BY_ID:
            return record.data
        return None

    def listed(self, collection: str, app: str) -> list[dict[str, Any]]:
        """What a list GET of ``app`` starts from: its own records and the seeded ones."""
        return [r.data for r in self.tables[collection].values() if r.owner in (None, app)]

    def put(self, collection: str, data: dict[str, Any], owner: str) -> bool:
        """Store ``data`` (ownership already checked); True when it was created."""
        table = self.tables[collection]
        sourced_id = data["sourcedId"]
        old = table.get(sourced_id)
        stored = {"status": "active", **data, "dateLastModified": _now()}
        table[sourced_id] = Record(stored, owner)
        for (indexed, field), index in self._refs.items():
            if indexed == collection:
                if old is not None:
                    index.get(_ref_id(old.data, field), set()).discard(sourced_id)
                index.setdefault(_ref_id(stored, field), set()).add(sourced_id)
        return old is None

    def referencing(
        self, collection: str, field: str, target_id: str | None
    ) -> list[dict[str, Any]]:
        """Records of ``collection`` whose ``field.sourcedId`` is ``target_id`` (indexed)."""
        ids = self._refs[(collection, field)].get(target_id or "", set())
        table = self.tables[collection]
        return [table[i].data for i in sorted(ids)]

    def known_fields(self, collection: str) -> set[str]:
        """Fields a filter, sort or ``fields`` may name: the schema's and any a record has."""
        fields = set(SCHEMAS[collection].fields)
        for record in self.tables[collection].values():
            fields.update(record.data)
        return fields


def _ref_id(record: dict[str, Any], field: str) -> str:
    ref = record.get(field)
    return str(ref.get("sourcedId", "")) if isinstance(ref, dict) else ""
