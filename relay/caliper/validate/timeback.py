"""The TimeBack Partner API's rules on top of Caliper (TIMEBACK.md §2 and §4 "Events").

What the API accepts: supported types and actions; event ``extensions`` with only ``subject`` and
``course: {id}``; both required on Grade/Assessment/AssessmentItem events; the subject in the
configured enum; user, course and app IRIs on the configured IRI base; GradeEvent Scores typed by
``extensions.scoreType``; Submitted attempts with an end time.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from relay.caliper.validate.caliper import Issue

SUPPORTED: Final[dict[str, frozenset[str]]] = {
    "GradeEvent": frozenset({"Graded"}),
    "AssessmentEvent": frozenset(
        {"Started", "Paused", "Resumed", "Restarted", "Reset", "Submitted"}
    ),
    "AssessmentItemEvent": frozenset({"Started", "Skipped", "Completed"}),
    "AssignableEvent": frozenset(
        {"Activated", "Deactivated", "Started", "Completed", "Submitted", "Reviewed"}
    ),
    "ViewEvent": frozenset({"Viewed"}),
    "SessionEvent": frozenset({"LoggedIn", "LoggedOut", "TimedOut"}),
}
# Event types whose facts need a subject and a course, else the API drops them after the 202.
NEEDS_COURSE: Final = frozenset({"GradeEvent", "AssessmentEvent", "AssessmentItemEvent"})
# Event types whose actor must be the student (a Person).
STUDENT_ACTOR: Final = frozenset(
    {"AssessmentEvent", "AssessmentItemEvent", "AssignableEvent", "ViewEvent"}
)
SCORE_TYPES: Final = frozenset({"XP", "QUESTION_RESULT"})
EXTENSION_KEYS: Final = frozenset({"subject", "course"})


@dataclass(frozen=True)
class TimeBackRules:
    """The knobs of the TimeBack rules: the IRI base of STU/CRS/APP and the subject enum."""

    iri_base: str
    subjects: tuple[str, ...]
    strict_extensions: bool = True
    _stu: _IriRule = field(init=False, repr=False, compare=False)
    _crs: _IriRule = field(init=False, repr=False, compare=False)
    _app: _IriRule = field(init=False, repr=False, compare=False)
    _subjects: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        base = self.iri_base.rstrip("/")
        # frozen: the derived lookups are set once here, through object.__setattr__
        object.__setattr__(self, "_stu", _IriRule.under(f"{base}/rostering/1.0/users/", "STU"))
        object.__setattr__(self, "_crs", _IriRule.under(f"{base}/rostering/1.0/courses/", "CRS"))
        object.__setattr__(self, "_app", _IriRule.under(f"{base}/applications/1.0/", "APP"))
        object.__setattr__(self, "_subjects", frozenset(self.subjects))


@dataclass(frozen=True, slots=True)
class _IriRule:
    pattern: re.Pattern[str]
    message: str

    @classmethod
    def under(cls, prefix: str, name: str) -> _IriRule:
        """IRIs of one path segment under ``prefix``."""
        pattern = re.compile(re.escape(prefix) + r"[^/\s?#]+\Z")
        return cls(pattern, f"must be {prefix}{{sourcedId}} ({name})")


def timeback_issues(event: Mapping[str, Any], rules: TimeBackRules) -> list[Issue]:
    """Every TimeBack rule the event breaks (an empty list means the API would accept it)."""
    if not isinstance(event, Mapping):
        return [Issue("", "an event must be a JSON object")]
    out: list[Issue] = []
    type_ = event.get("type")
    action = event.get("action")
    actions = SUPPORTED.get(type_) if isinstance(type_, str) else None
    if actions is None:
        out.append(Issue("type", f"TimeBack does not accept {type_!r} events"))
    elif action not in actions:
        out.append(Issue("action", f"TimeBack does not accept {type_} {action!r}"))
    _check_extensions(event, type_ in NEEDS_COURSE, rules, out)
    _check_agents(event, type_, rules, out)
    for path, keys in _ASSIGNEES:
        _check_iri(_at(event, keys), path, rules._stu, out)
    if type_ == "GradeEvent":
        _check_score(event.get("generated"), out)
    if action == "Submitted":
        generated = event.get("generated")
        if not isinstance(generated, Mapping) or generated.get("endedAtTime") is None:
            out.append(Issue("generated.endedAtTime", "required for Submitted"))
    return out


def _check_extensions(
    event: Mapping[str, Any], required: bool, rules: TimeBackRules, out: list[Issue]
) -> None:
    ext = event.get("extensions")
    if ext is None:
        ext = {}
    elif not isinstance(ext, Mapping):
        return  # the Caliper rules already report it
    if rules.strict_extensions:
        out.extend(
            Issue(f"extensions.{k}", "unrecognized key") for k in ext if k not in EXTENSION_KEYS
        )
    subject = ext.get("subject")
    if subject is None:
        if required:
            out.append(Issue("extensions.subject", "required on this event type"))
    elif subject not in rules._subjects:
        out.append(Issue("extensions.subject", f"{subject!r} is not one of {list(rules.subjects)}"))
    course = ext.get("course")
    if course is None:
        if required:
            out.append(Issue("extensions.course", "required on this event type"))
    elif not isinstance(course, Mapping):
        out.append(Issue("extensions.course", "must be an object {id}"))
    else:
        if rules.strict_extensions:
            out.extend(
                Issue(f"extensions.course.{k}", "unrecognized key") for k in course if k != "id"
            )
        _check_iri(course.get("id"), "extensions.course.id", rules._crs, out)
        if "id" not in course:
            out.append(Issue("extensions.course.id", "required"))


def _check_agents(
    event: Mapping[str, Any], type_: Any, rules: TimeBackRules, out: list[Issue]
) -> None:
    actor = event.get("actor")
    actor_type = actor.get("type") if isinstance(actor, Mapping) else None
    if type_ == "GradeEvent":
        if actor_type != "SoftwareApplication":
            out.append(Issue("actor", "the GradeEvent actor must be the app (SoftwareApplication)"))
        _check_iri(actor, "actor", rules._app, out)
    elif actor_type == "Person" or (isinstance(actor, str) and _student_actor(event, type_)):
        _check_iri(actor, "actor", rules._stu, out)
    _check_iri(event.get("edApp"), "edApp", rules._app, out)


def _check_iri(value: Any, path: str, rule: _IriRule, out: list[Issue]) -> None:
    """``value`` (an IRI string or an entity object) must have an id that ``rule`` accepts."""
    if value is None:
        return
    if isinstance(value, Mapping):
        value, path = value.get("id"), f"{path}.id"
        if value is None:
            return  # the Caliper rules report a missing id
    if not isinstance(value, str) or not rule.pattern.match(value):
        out.append(Issue(path, rule.message))


def _check_score(generated: Any, out: list[Issue]) -> None:
    if generated is None:
        out.append(Issue("generated", "required: a Score with extensions.scoreType"))
        return
    if not isinstance(generated, Mapping) or generated.get("type") != "Score":
        out.append(Issue("generated", "must be a Score object"))
        return
    ext = generated.get("extensions")
    score_type = ext.get("scoreType") if isinstance(ext, Mapping) else None
    if score_type not in SCORE_TYPES:
        out.append(Issue("generated.extensions.scoreType", f"must be one of {sorted(SCORE_TYPES)}"))


def _student_actor(event: Mapping[str, Any], type_: Any) -> bool:
    """Whether this event type's actor must be the student (so an IRI actor is a STU)."""
    if type_ == "SessionEvent":
        return event.get("action") != "TimedOut"
    return type_ in STUDENT_ACTOR


_ASSIGNEES: Final = tuple(
    (p, tuple(p.split(".")))
    for p in ("object.assignee", "generated.assignee", "generated.attempt.assignee")
)


def _at(event: Mapping[str, Any], keys: tuple[str, ...]) -> Any:
    value: Any = event
    for key in keys:
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value
