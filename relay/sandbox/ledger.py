"""The XP ledger: one entry per counted XP GradeEvent (docs/partner-api.md#xp-ledger)."""

from __future__ import annotations

from datetime import datetime
from typing import Any


class Ledger:
    """Entries by id, in the order they were written; ids are decimal strings."""

    def __init__(self) -> None:
        self.entries: dict[str, dict[str, Any]] = {}
        self._times: dict[str, datetime] = {}
        self._next = 1

    def reset(self) -> None:
        self.entries.clear()
        self._times.clear()
        self._next = 1

    def add(self, entry: dict[str, Any], generated: datetime) -> dict[str, Any]:
        entry_id = str(self._next)
        self._next += 1
        stored = {"id": entry_id, **entry}
        self.entries[entry_id] = stored
        self._times[entry_id] = generated
        return stored

    def remove(self, entry_id: str) -> None:
        self.entries.pop(entry_id, None)
        self._times.pop(entry_id, None)

    def for_user(self, user_id: str) -> list[tuple[datetime, dict[str, Any]]]:
        """The user's entries with their times, oldest first (ties in write order)."""
        rows = [(self._times[k], e) for k, e in self.entries.items() if e["userId"] == user_id]
        rows.sort(key=lambda row: row[0])
        return rows
