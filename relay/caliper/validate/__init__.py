"""The rule checker of emitted events: Caliper v1p2 (docs/caliper-rules.md) plus the TimeBack rules.

Used by the relay before it sends an event (a failure is a mapping bug: ``invalid-caliper``) and
by the sandbox to judge what it receives. Paths are JSON paths such as ``generated.scoreGiven``;
the sandbox adds ``data[0].`` itself for envelopes.

- ``caliper_issues(event)``: docs/caliper-rules.md (context, event, entity and per-type rules).
- ``timeback_issues(event, rules)``: docs/partner-api.md#event-rules.
- ``check(event, rules)``: both, through one ``EventChecker`` per (type, action, profile), built
  the first time that combination is seen and kept on ``rules``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from relay.caliper.validate.caliper import (
    NOT_AN_OBJECT,
    CaliperChecker,
    Issue,
    caliper_checker,
    caliper_issues,
    is_object,
    keep,
)
from relay.caliper.validate.timeback import TimeBackChecker, TimeBackRules, timeback_issues

__all__ = [
    "EventChecker",
    "Issue",
    "TimeBackRules",
    "caliper_issues",
    "check",
    "event_checker",
    "timeback_issues",
]


class EventChecker:
    """Every rule of one (type, action, profile) under one ``TimeBackRules``: Caliper, then
    TimeBack, each resolved once."""

    __slots__ = ("caliper", "timeback")

    def __init__(self, caliper: CaliperChecker, timeback: TimeBackChecker) -> None:
        self.caliper = caliper
        self.timeback = timeback

    def __call__(self, event: Mapping[str, Any]) -> list[Issue]:
        """The issues of ``event``, a JSON object of this combination."""
        out: list[Issue] = []
        self.caliper.run(event, out)
        self.timeback.run(event, out)
        return out


def event_checker(rules: TimeBackRules, type_: Any, action: Any, profile: Any) -> EventChecker:
    """The checker of one combination: built once for terms (strings), afresh for anything else."""
    combo = (type_, action, profile)
    try:
        checker: EventChecker = rules.events[combo]
        return checker
    except (KeyError, TypeError):  # TypeError: a list or an object, never a valid term
        pass
    checker = EventChecker(caliper_checker(type_, action, profile), rules.checker(type_, action))
    return keep(rules.events, combo, checker)


def check(event: Mapping[str, Any], rules: TimeBackRules) -> list[Issue]:
    """Every Caliper and TimeBack rule the event breaks; empty when the event is good to send."""
    # event_checker and EventChecker.__call__ inlined for the checker already built: this runs
    # for every event the relay sends
    if type(event) is not dict and not is_object(event):
        return [NOT_AN_OBJECT]
    combo = (event.get("type"), event.get("action"), event.get("profile"))
    try:
        checker: EventChecker = rules.events[combo]
    except (KeyError, TypeError):  # TypeError: a list or an object, never a valid term
        checker = event_checker(rules, *combo)
    out: list[Issue] = []
    checker.caliper.run(event, out)
    checker.timeback.run(event, out)
    return out
