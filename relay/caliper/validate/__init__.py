"""The rule checker of emitted events: Caliper v1p2 (docs/caliper-rules.md) plus the TimeBack rules.

Used by the relay before it sends an event (a failure is a mapping bug: ``invalid-caliper``) and
by the sandbox to judge what it receives. Paths are JSON paths such as ``generated.scoreGiven``;
the sandbox adds ``data[0].`` itself for envelopes.

- ``caliper_issues(event)``: docs/caliper-rules.md (context, event, entity and per-type rules).
- ``timeback_issues(event, rules)``: docs/partner-api.md#event-rules.
- ``check(event, rules)``: both.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from relay.caliper.validate.caliper import Issue, caliper_issues
from relay.caliper.validate.timeback import TimeBackRules, timeback_issues

__all__ = ["Issue", "TimeBackRules", "caliper_issues", "check", "timeback_issues"]


def check(event: Mapping[str, Any], rules: TimeBackRules) -> list[Issue]:
    """Every Caliper and TimeBack rule the event breaks; empty when the event is good to send."""
    issues = caliper_issues(event)
    if type(event) is dict or isinstance(event, Mapping):
        issues.extend(timeback_issues(event, rules))
    return issues
