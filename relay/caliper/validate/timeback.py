"""The TimeBack Partner API's rules on top of Caliper (docs/partner-api.md#event-rules).

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

from relay.caliper.validate.caliper import NOT_AN_OBJECT, Accepted, Issue, is_object, keep

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
    # compiled checkers of these rules: (type, action) here, (type, action, profile) in check()
    _timeback: dict[tuple[Any, Any], TimeBackChecker] = field(
        init=False, repr=False, compare=False, default_factory=dict
    )
    events: dict[tuple[Any, Any, Any], Any] = field(
        init=False, repr=False, compare=False, default_factory=dict
    )

    def __post_init__(self) -> None:
        base = self.iri_base.rstrip("/")
        # frozen: the derived lookups are set once here, through object.__setattr__
        object.__setattr__(self, "_stu", _IriRule.under(f"{base}/rostering/1.0/users/", "STU"))
        object.__setattr__(self, "_crs", _IriRule.under(f"{base}/rostering/1.0/courses/", "CRS"))
        object.__setattr__(self, "_app", _IriRule.under(f"{base}/applications/1.0/", "APP"))
        object.__setattr__(self, "_subjects", frozenset(self.subjects))

    def checker(self, type_: Any, action: Any) -> TimeBackChecker:
        """The TimeBack checker of one (type, action): built once for terms, afresh otherwise."""
        combo = (type_, action)
        try:
            return self._timeback[combo]
        except (KeyError, TypeError):  # TypeError: a list or an object, never a valid term
            pass
        return keep(self._timeback, combo, TimeBackChecker(self, type_, action))


@dataclass(frozen=True, slots=True)
class _IriRule:
    pattern: re.Pattern[str]
    message: str
    seen: Accepted = field(default_factory=Accepted)  # accepted before: students and apps recur
    good: set[str] = field(init=False)  # ``seen.young``, tested inline by the checks

    def __post_init__(self) -> None:
        object.__setattr__(self, "good", self.seen.young)  # frozen: set once, here

    @classmethod
    def under(cls, prefix: str, name: str) -> _IriRule:
        """IRIs of one path segment under ``prefix``."""
        pattern = re.compile(re.escape(prefix) + r"[^/\s?#]+\Z")
        return cls(pattern, f"must be {prefix}{{sourcedId}} ({name})")

    def accepts(self, value: str) -> bool:
        return self.seen.admits(value, self.pattern.match)


def timeback_issues(event: Mapping[str, Any], rules: TimeBackRules) -> list[Issue]:
    """Every TimeBack rule the event breaks (an empty list means the API would accept it)."""
    if not is_object(event):
        return [NOT_AN_OBJECT]
    out: list[Issue] = []
    rules.checker(event.get("type"), event.get("action")).run(event, out)
    return out


class TimeBackChecker:
    """The TimeBack rules of one (type, action) under one ``TimeBackRules``, resolved once."""

    __slots__ = ("_grade", "_head", "_needs_course", "_rules", "_student_iri", "_submitted")

    def __init__(self, rules: TimeBackRules, type_: Any, action: Any) -> None:
        self._rules: Final = rules
        actions = SUPPORTED.get(type_) if isinstance(type_, str) else None
        if actions is None:
            head = [Issue("type", f"TimeBack does not accept {type_!r} events")]
        elif not isinstance(action, str) or action not in actions:
            head = [Issue("action", f"TimeBack does not accept {type_} {action!r}")]
        else:
            head = []
        self._head: Final = tuple(head)  # the type and action issues
        known_type = isinstance(type_, str)
        self._needs_course: Final = known_type and type_ in NEEDS_COURSE
        self._grade: Final = type_ == "GradeEvent"
        # whether an actor given as an IRI must be the student's
        student = known_type and type_ in STUDENT_ACTOR
        self._student_iri: Final = action != "TimedOut" if type_ == "SessionEvent" else student
        self._submitted: Final = action == "Submitted"

    def run(self, event: Mapping[str, Any], out: list[Issue]) -> None:
        """Append the issues of ``event`` (a JSON object of this type and action) to ``out``."""
        rules = self._rules
        if self._head:
            out.extend(self._head)
        if not _usual_extensions(event.get("extensions"), rules):
            _check_extensions(event, self._needs_course, rules, out)
        self._check_agents(event, out)
        obj: Any = event.get("object")
        generated: Any = event.get("generated")
        # an absent assignee (None) is nothing to check: skip the call
        if (type(obj) is dict or is_object(obj)) and (assignee := obj.get("assignee")) is not None:
            _check_iri(assignee, "object.assignee", rules._stu, out)
        generated_is_object = type(generated) is dict or is_object(generated)
        if generated_is_object:
            if (assignee := generated.get("assignee")) is not None:
                _check_iri(assignee, "generated.assignee", rules._stu, out)
            attempt: Any = generated.get("attempt")
            if (
                attempt is not None
                and (type(attempt) is dict or is_object(attempt))
                and (assignee := attempt.get("assignee")) is not None
            ):
                _check_iri(assignee, "generated.attempt.assignee", rules._stu, out)
        if self._grade:
            _check_score(generated, out)
        if self._submitted and (not generated_is_object or generated.get("endedAtTime") is None):
            out.append(Issue("generated.endedAtTime", "required for Submitted"))

    def _check_agents(self, event: Mapping[str, Any], out: list[Issue]) -> None:
        rules = self._rules
        actor: Any = event.get("actor")
        actor_type = actor.get("type") if type(actor) is dict or is_object(actor) else None
        # An entity object whose id was accepted before needs no _check_iri call (it would find
        # nothing): tested inline, as this runs twice for every event.
        actor_id = actor.get("id") if actor_type is not None else None
        if self._grade:
            if actor_type != "SoftwareApplication":
                message = "the GradeEvent actor must be the app (SoftwareApplication)"
                out.append(Issue("actor", message))
            if type(actor_id) is not str or actor_id not in rules._app.good:
                _check_iri(actor, "actor", rules._app, out)
        elif (actor_type == "Person" or (isinstance(actor, str) and self._student_iri)) and (
            type(actor_id) is not str or actor_id not in rules._stu.good
        ):
            _check_iri(actor, "actor", rules._stu, out)
        ed_app = event.get("edApp")
        app_id = ed_app.get("id") if type(ed_app) is dict else None
        if type(app_id) is not str or app_id not in rules._app.good:
            _check_iri(ed_app, "edApp", rules._app, out)


def _usual_extensions(ext: Any, rules: TimeBackRules) -> bool:
    """``{"subject": <configured>, "course": {"id": <accepted before>}}``, as the relay writes
    them: nothing for ``_check_extensions`` to find, known without its walk."""
    if type(ext) is not dict or len(ext) != 2:
        return False
    course = ext.get("course")
    if type(course) is not dict or len(course) != 1:
        return False
    course_id, subject = course.get("id"), ext.get("subject")
    return (
        type(course_id) is str
        and course_id in rules._crs.good
        and type(subject) is str
        and subject in rules._subjects
    )


def _check_extensions(
    event: Mapping[str, Any], required: bool, rules: TimeBackRules, out: list[Issue]
) -> None:
    ext = event.get("extensions")
    if ext is None:
        ext = {}
    elif type(ext) is not dict and not is_object(ext):
        return  # the Caliper rules already report it
    if rules.strict_extensions and not EXTENSION_KEYS.issuperset(ext.keys()):
        out.extend(
            Issue(f"extensions.{k}", "unrecognized key") for k in ext if k not in EXTENSION_KEYS
        )
    subject = ext.get("subject")
    if subject is None:
        if required:
            out.append(Issue("extensions.subject", "required on this event type"))
    elif not isinstance(subject, str) or subject not in rules._subjects:
        out.append(Issue("extensions.subject", f"{subject!r} is not one of {list(rules.subjects)}"))
    course = ext.get("course")
    if course is None:
        if required:
            out.append(Issue("extensions.course", "required on this event type"))
    elif type(course) is not dict and not is_object(course):
        out.append(Issue("extensions.course", "must be an object {id}"))
    else:
        if rules.strict_extensions and len(course) > 1:
            out.extend(
                Issue(f"extensions.course.{k}", "unrecognized key") for k in course if k != "id"
            )
        course_id = course.get("id")
        if type(course_id) is not str or course_id not in rules._crs.good:
            _check_iri(course_id, "extensions.course.id", rules._crs, out)
        if "id" not in course:
            out.append(Issue("extensions.course.id", "required"))


def _check_iri(value: Any, path: str, rule: _IriRule, out: list[Issue]) -> None:
    """``value`` (an IRI string or an entity object) must have an id that ``rule`` accepts."""
    if type(value) is str:
        if value not in rule.good and not rule.accepts(value):
            out.append(Issue(path, rule.message))
    elif type(value) is dict or is_object(value):
        id_ = value.get("id")
        # a missing id is the Caliper rules' to report
        if id_ is not None and (
            type(id_) is not str or (id_ not in rule.good and not rule.accepts(id_))
        ):
            out.append(Issue(f"{path}.id", rule.message))
    elif value is not None:
        out.append(Issue(path, rule.message))


def _check_score(generated: Any, out: list[Issue]) -> None:
    if generated is None:
        out.append(Issue("generated", "required: a Score with extensions.scoreType"))
        return
    is_dict = type(generated) is dict or is_object(generated)
    if not is_dict or generated.get("type") != "Score":
        out.append(Issue("generated", "must be a Score object"))
        return
    ext = generated.get("extensions")
    score_type = ext.get("scoreType") if type(ext) is dict or is_object(ext) else None
    if not isinstance(score_type, str) or score_type not in SCORE_TYPES:
        out.append(Issue("generated.extensions.scoreType", f"must be one of {sorted(SCORE_TYPES)}"))
