"""The checker compiled per event type reports what the per-event walk reported, issue for issue.

The reference is that walk as it was (tests/unit/checker_reference.py, commit 4ecc44c, guarded
against the TypeError it raised on a list or object in place of a term). Hypothesis mutates the
valid golden events (tests/golden/*.json): drops, nulls and retypes values anywhere in the tree,
writes bad IRIs, bad times and ids, wrong or misspelt terms, unknown keys, entities moved to the
wrong place, and compares the issues (paths, messages and order) of ``check``,
``caliper_issues`` and ``timeback_issues`` with the reference's, under strict and relaxed rules.
Each event is checked twice: the compiled checkers and their caches must not change an answer.
"""

from __future__ import annotations

import copy
import json
import math
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from relay.caliper.validate import TimeBackRules, caliper_issues, check, terms, timeback_issues
from relay.config import DEFAULT_SUBJECTS
from tests.unit import checker_reference as reference

BASE = "https://api.alpha-1edtech.ai"
OTHER = "https://other.example.com"
GOLDEN = Path(__file__).resolve().parent.parent / "golden"


def _golden_events() -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    for path in sorted(GOLDEN.glob("*.json")):
        loaded = json.loads(path.read_text())
        events.extend(loaded if isinstance(loaded, list) else [loaded])
    return events


EVENTS = _golden_events()
RULE_SETS = [
    (TimeBackRules(BASE, DEFAULT_SUBJECTS), reference.TimeBackRules(BASE, DEFAULT_SUBJECTS)),
    (
        TimeBackRules(f"{OTHER}/", ("Math", "Other"), strict_extensions=False),
        reference.TimeBackRules(f"{OTHER}/", ("Math", "Other"), strict_extensions=False),
    ),
]

# --- the values a mutation writes -------------------------------------------------------------

TERMS = sorted(
    {
        *terms.EVENT_TYPES, *terms.ACTIONS, *terms.PROFILES, *terms.IS_A,
        *terms.SYSTEM_IDENTIFIER_TYPES, "XP", "QUESTION_RESULT", *DEFAULT_SUBJECTS,
    }
)  # fmt: skip
MISSPELT = st.sampled_from(TERMS).flatmap(
    lambda t: st.sampled_from([t.lower(), t + "s", t[:-1], f" {t}"])
)
IRIS = [
    "not an iri", "lesson-1", "https://x.org/a b", "urn:", ":x", "_:b0", "_:", "ftp://x.org/f",
    "HTTPS://x.org", "https://x.org/\u00e9", "https://x.org/\u00a0", "https://x.org/\x01",
    "https://x.org/\x1c", "a_b:c", "https://x.org/<x>", "https://x.org/{a}", "tag:x.org,2026:q",
    "mailto:a@b.c", "x+y.z-1:ok", "1x:y", f"{BASE}/rostering/1.0/users/stu-1",
    f"{BASE}/rostering/1.0/users/a/b", f"{BASE}/rostering/1.0/users/", f"{BASE}/users/stu-1",
    f"{OTHER}/rostering/1.0/users/stu-1", f"{BASE}/rostering/1.0/courses/math-g5",
    f"{OTHER}/rostering/1.0/courses/math-5", f"{BASE}/applications/1.0/app-1",
    f"{OTHER}/applications/1.0/app-1", f"{BASE}/applications/1.0/a?b",
]  # fmt: skip
TIMES = [
    "2026-01-15T14:30:00.000+00:00", "2026-01-15T14:30:00.000000Z", "2026-01-15T14:30:00Z",
    "2026-02-30T14:30:00.000Z", "2026-01-15T24:00:00.000Z", "2024-02-29T23:59:59.999Z",
    "2025-02-29T23:59:59.999Z", "2026-04-31T00:00:00.000Z", "2026-12-31T23:59:59.999Z",
    "2026-13-01T00:00:00.000Z", "2026-00-10T00:00:00.000Z", "2026-01-00T00:00:00.000Z",
    "2026-01-15T14:60:00.000Z", "2026-01-15T14:30:60.000Z", "2026-01-15t14:30:00.000Z",
    "2026-01-15T14:30:00.000z", "\u0662\u0660\u0662\u0666-01-15T14:30:00.000Z",
    "2026-01-15T14:30:00.12\u0663Z", "0000-01-01T00:00:00.000Z", "2026-01-15", "",
]  # fmt: skip
IDS = [
    "urn:uuid:6f1d2c3a-8b4e-4f60-9a7b-c8d9e0f1a2b3",
    "urn:uuid:6F1D2C3A-8B4E-4F60-9A7B-C8D9E0F1A2B3",
    "urn:uuid:6f1d2c3a-8b4e-6f60-9a7b-c8d9e0f1a2b3",
    "urn:uuid:6f1d2c3a-8b4e-4f60-ca7b-c8d9e0f1a2b3",
    "6f1d2c3a-8b4e-4f60-9a7b-c8d9e0f1a2b3",
    "urn:uuid:6f1d2c3a-8b4e-4f60-9a7b-c8d9e0f1a2b",
    "urn:uuid:6f1d2c3a-8b4e-4f60-9a7b-c8d9e0f1a2b3 ",
    "urn:uuid:6f1d2c3a-8b4e-4f60-9a7b-c8d9e0f1a2\u0663",
    "urn:uuid:6f1d2c3a08b4e-4f60-9a7b-c8d9e0f1a2b3",
    "urn:uuid:6f1d2c3g-8b4e-4f60-9a7b-c8d9e0f1a2b3",
]  # fmt: skip
DURATIONS = ["PT5M", "PT", "P", "PT50M12S", "P1Y2M3DT4H5M6.5S", "P1W", "5M", "PT1.5S", "PT1H"]
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 3), st.sampled_from([0.0, 1.0, 15.5, math.nan,
    math.inf, -math.inf, 2**70]), st.text(max_size=8),
)  # fmt: skip
STRINGS = st.one_of(
    st.sampled_from(IRIS), st.sampled_from(TIMES), st.sampled_from(IDS),
    st.sampled_from(DURATIONS), st.sampled_from(TERMS), MISSPELT,
)  # fmt: skip
CONTAINERS = st.one_of(
    st.just([]), st.just({}), st.lists(SCALARS | STRINGS, max_size=2),
    st.dictionaries(st.sampled_from(["id", "type", "name", "x"]), SCALARS | STRINGS, max_size=3),
)  # fmt: skip
KEYS = st.sampled_from(
    sorted({"lesson", "colour", "score", "activityName", *terms.EVENT_PROPS, *terms.STRING_PROPS,
            *terms.DATETIME_PROPS, *terms.ENTITY_REFS, *terms.ENTITY_LIST_REFS, "otherIdentifiers",
            "subject", "course", "scoreType", "identifier", "identifierType"})
)  # fmt: skip


def _entities(events: list[dict[str, Any]]) -> list[Any]:
    """Every entity object in the golden events: material to move to the wrong place."""
    found: list[Any] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if "type" in node and "id" in node:
                found.append(node)
            for child in node.values():
                walk(child)
        elif isinstance(node, list):
            for child in node:
                walk(child)

    for event in events:
        walk(event)
    return found


ENTITIES = _entities(EVENTS)
VALUES = st.one_of(SCALARS, STRINGS, STRINGS, CONTAINERS, st.sampled_from(ENTITIES))

ENTITY_KEYS = ["actor", "edApp", "assignee", "assignable", "isPartOf", "scoredBy", "user",
               "client", "attempt", "object", "generated", "referrer", "target"]  # fmt: skip
TERM_KEYS = ["type", "action", "profile", "scoreType", "subject", "identifierType"]
# Values of the family a key expects, so that most mutations are near misses, not type errors.
_NEAR: dict[str, tuple[Any, ...]] = {
    **dict.fromkeys([*terms.DATETIME_PROPS, "eventTime"], tuple(TIMES)),
    **dict.fromkeys(terms.DURATION_PROPS, tuple(DURATIONS)),
    "id": (*IDS, *IRIS),
    **dict.fromkeys(ENTITY_KEYS, tuple(IRIS)),
    **dict.fromkeys(TERM_KEYS, tuple(TERMS)),
    **dict.fromkeys(terms.DECIMAL_PROPS, (10, 10.0, "10.0", True, math.nan, -0.0, 1e308)),
    **dict.fromkeys(terms.INTEGER_PROPS, (1, 1.0, "1", True, -1, 2**64)),
}  # fmt: skip


def _near(key: Any) -> st.SearchStrategy[Any]:
    values = _NEAR.get(key) if isinstance(key, str) else None
    if values is None:
        return VALUES
    return st.sampled_from(values) | MISSPELT | VALUES


# --- mutations ----------------------------------------------------------------------------------


def _slots(node: Any, found: list[tuple[Any, Any]]) -> list[tuple[Any, Any]]:
    """(container, key or index) of every value in the tree, the root's children first."""
    if isinstance(node, dict):
        for key, child in node.items():
            found.append((node, key))
            _slots(child, found)
    elif isinstance(node, list):
        for i, child in enumerate(node):
            found.append((node, i))
            _slots(child, found)
    return found


@st.composite
def mutated_events(draw: st.DrawFn) -> Any:
    event: Any = copy.deepcopy(draw(st.sampled_from(EVENTS)))
    for _ in range(draw(st.integers(1, 3))):
        slots = _slots(event, [])
        containers = [event, *(c[k] for c, k in slots if isinstance(c[k], dict))]
        ops = ["drop", "drop", "set", "set", "set", "set", "add"] * 4 + ["root"]
        op = draw(st.sampled_from(ops))
        if op == "add":
            draw(st.sampled_from(containers))[draw(KEYS)] = copy.deepcopy(draw(VALUES))
        elif op == "root":
            event = draw(st.sampled_from([[], "x", 7, None, event]))
        elif slots:
            container, key = draw(st.sampled_from(slots))
            if op == "drop" and isinstance(container, dict):
                del container[key]
            else:
                container[key] = copy.deepcopy(draw(_near(key)))
        if not isinstance(event, dict):
            break
    return event


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_events(), st.sampled_from(RULE_SETS))
def test_the_compiled_checker_reports_what_the_walk_reported(
    event: Any, rule_pair: tuple[TimeBackRules, reference.TimeBackRules]
) -> None:
    rules, old_rules = rule_pair
    expected = reference.check(event, old_rules)
    assert check(event, rules) == expected
    assert check(event, rules) == expected  # again: now through every cache
    assert caliper_issues(event) == reference.caliper_issues(event)
    if isinstance(event, dict):
        assert timeback_issues(event, rules) == reference.timeback_issues(event, old_rules)


def test_the_golden_events_are_valid_and_the_mutations_reach_every_rule_family() -> None:
    """The corpus the property runs on: valid before mutation (else sameness proves little)."""
    rules = RULE_SETS[0][0]
    assert len(EVENTS) >= 13
    for event in EVENTS:
        assert check(event, rules) == [], event["type"]
    assert {e["type"] for e in EVENTS} >= {"GradeEvent", "AssessmentEvent", "AssessmentItemEvent",
                                           "ViewEvent", "SessionEvent"}  # fmt: skip


def test_a_list_in_place_of_a_term_is_an_issue_not_an_error() -> None:
    """The walk raised TypeError (unhashable) here, a 500 from the sandbox; now each is an issue
    at its path."""
    rules = RULE_SETS[0][0]
    grade = next(e for e in EVENTS if e["type"] == "GradeEvent")
    for path, value in [
        ("eventTime", []),
        ("type", []),
        ("action", {}),
        ("extensions.subject", ["Math"]),
        ("generated.extensions.scoreType", {}),
        ("generated.startedAtTime", []),
    ]:
        event = copy.deepcopy(grade)
        *parents, last = path.split(".")
        node = event
        for key in parents:
            node = node[key]
        node[last] = value
        assert path.split(".")[0] in {i.path.split(".")[0] for i in check(event, rules)}, path


def _single_mutations() -> Iterator[Any]:
    """Every golden event with one value dropped, or replaced by each near miss of its family
    (in place, restored once the caller has looked at it)."""
    for original in EVENTS:
        for n, (_, key) in enumerate(_slots(original, [])):
            dropped = copy.deepcopy(original)
            container, _ = _slots(dropped, [])[n]
            if isinstance(container, dict):
                del container[key]
                yield dropped
        event = copy.deepcopy(original)
        for container, key in _slots(event, []):
            kept = container[key]
            for value in [None, [], {}, 1, 1.5, "x", *_NEAR.get(key, [])]:
                container[key] = value
                yield event
            container[key] = kept
        assert event == original


def test_every_single_near_miss_reports_what_the_walk_reported() -> None:
    """Exhaustive over one mutation at a time (the property covers combinations)."""
    count = 0
    rules, old_rules = RULE_SETS[0]
    for event in _single_mutations():
        assert check(event, rules) == reference.check(event, old_rules), event
        count += 1
    assert count > 5000


def test_iris_checked_before_survive_a_flood_of_new_ones_and_bad_ones_never_pass(
    monkeypatch: Any,
) -> None:
    """The accepted IRIs are kept in two generations: one that recurs within two fillings is
    not checked again however many one-off ids (attempts, scores) pass; the answers stay the
    walk's, and an IRI that is not one is refused each time."""
    from relay.caliper.validate import caliper

    rules = RULE_SETS[0][0]
    view = copy.deepcopy(next(e for e in EVENTS if e["type"] == "ViewEvent"))
    assert check(view, rules) == []  # the student and the app: checked once here
    seen: list[str] = []
    real = caliper.is_entity_iri
    monkeypatch.setattr(caliper, "is_entity_iri", lambda value: seen.append(value) or real(value))
    for n in range(3 * caliper.GOOD_CACHE):  # three fillings of the young generation
        view["object"]["id"] = f"https://app.example.com/one-off/{n}"
        assert check(view, rules) == []
    # each one-off checked once; the student and the app never again
    assert seen == [f"https://app.example.com/one-off/{n}" for n in range(3 * caliper.GOOD_CACHE)]
    view["object"]["id"] = "not an iri"
    for _ in range(2):
        assert check(view, rules) == reference.check(view, RULE_SETS[0][1]) != []


def test_a_recurring_student_outlives_a_flood_of_new_ones_and_a_stranger_never_passes() -> None:
    """TimeBack's IRI rules keep what they accepted in two generations too (``Accepted``): a
    student who recurs within two fillings is matched once, however many new students pass."""
    from relay.caliper.validate.caliper import GOOD_CACHE
    from relay.caliper.validate.timeback import _IriRule

    base = "https://api.example.com/rostering/1.0/users/"
    real = _IriRule.under(base, "STU")
    matched: list[str] = []

    class Counting:  # the rule's pattern, counting what it is asked
        def match(self, value: str) -> re.Match[str] | None:
            matched.append(value)
            return real.pattern.match(value)

    rule = _IriRule(cast(re.Pattern[str], Counting()), real.message)
    regular = f"{base}regular"
    for n in range(3 * GOOD_CACHE):  # three fillings of the young generation
        assert rule.accepts(f"{base}s{n}")
        assert rule.accepts(regular)
    assert matched.count(regular) == 1
    assert len(matched) == 3 * GOOD_CACHE + 1
    for _ in range(2):
        assert not rule.accepts("https://elsewhere.example.com/users/x")
    assert matched[-2:] == ["https://elsewhere.example.com/users/x"] * 2
