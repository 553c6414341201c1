"""Reconcile a traffic plan with what actually happened: XP in the ledger, records in the DLQ.

Used by ``relay demo`` for its summary and by the reliability suite. Valid records reconcile by
the XP they add to each student's ledger; planted invalid records by their exact bytes, which the
dead-letter topic keeps with the relay's stage and reason.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from relay.ops.dead_letters import DeadLetterView
from relay.timeback.client import TimeBackClient
from relay.tools.traffic import PlannedRecord, TrafficPlan


async def materialized_xp(
    client: TimeBackClient, students: list[str], app_id: str | None = None
) -> dict[str, float]:
    """Each student's XP total from ``GET /xp/1.0/users/{id}/entries`` (all pages)."""
    totals: dict[str, float] = {}
    for student in students:
        total, offset = 0.0, 0
        while True:
            page = await client.xp_entries(student, application_id=app_id, limit=100, offset=offset)
            entries = page.get("entries", [])
            total += sum(float(entry["value"]) for entry in entries)
            offset += len(entries)
            if not entries or offset >= int(page.get("total", 0)):
                break
        totals[student] = total
    return totals


@dataclass
class Reconciliation:
    expected_xp: dict[str, float]
    materialized_xp: dict[str, float]
    planted: Counter[tuple[str, str]] = field(default_factory=Counter)
    dead_lettered: Counter[tuple[str, str]] = field(default_factory=Counter)
    missing: list[PlannedRecord] = field(default_factory=list)  # planted, not in the DLQ
    wrong_reason: list[tuple[PlannedRecord, DeadLetterView]] = field(default_factory=list)
    unexpected: list[DeadLetterView] = field(default_factory=list)  # DLQ'd, not planted

    @property
    def xp_mismatches(self) -> dict[str, tuple[float, float]]:
        return {
            s: (want, self.materialized_xp.get(s, 0.0))
            for s, want in self.expected_xp.items()
            if abs(want - self.materialized_xp.get(s, 0.0)) > 1e-6
        }

    @property
    def ok(self) -> bool:
        return not (self.xp_mismatches or self.missing or self.wrong_reason or self.unexpected)


def reconcile(
    plan: TrafficPlan, xp: dict[str, float], letters: list[DeadLetterView]
) -> Reconciliation:
    result = Reconciliation(expected_xp=plan.expected_xp(), materialized_xp=xp)
    by_value: dict[bytes, list[DeadLetterView]] = {}
    for letter in letters:
        by_value.setdefault(letter.value, []).append(letter)
        result.dead_lettered[(letter.stage, letter.reason)] += 1
    for record in plan.invalid():
        result.planted[record.expected_reason or ("", "")] += 1
        found = by_value.get(record.value)
        if not found:
            result.missing.append(record)
            continue
        letter = found.pop()
        if (letter.stage, letter.reason) != record.expected_reason:
            result.wrong_reason.append((record, letter))
    result.unexpected = [letter for group in by_value.values() for letter in group]
    return result
