"""The rule checker as it was before it was compiled per event type (commit 4ecc44c): the reference
the compiled checker is compared with in test_caliper_validate_compiled.py.

A frozen copy of relay/caliper/validate/caliper.py and timeback.py at 4ecc44c, kept only here,
sharing the rule data (terms, event_rules) with the relay. The only changes: hashability guards
where the old walk raised TypeError on a list or object in place of a term (``# fix:``), which
the compiled checker reports as an issue instead. Do not edit it to follow later rule changes:
once the rules change on purpose, delete it with its test.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final, TypeGuard

from relay.caliper.validate import terms as T
from relay.caliper.validate.caliper import Issue
from relay.caliper.validate.event_rules import allowed_actions, constraints


def caliper_issues(event: Mapping[str, Any]) -> list[Issue]:
    """Every Caliper v1p2 rule the event breaks (an empty list means valid)."""
    if not _is_object(event):
        return [Issue("", "an event must be a JSON object")]
    out: list[Issue] = []
    if event.get("@context") != T.CONTEXT:
        _check_context(event, out)
    _check_keys(event, out)
    allowed = _allowed(event, out)
    _check_event_id(event.get("id"), out)
    time = event.get("eventTime")
    if time is not None:
        _check_datetime(time, "eventTime", out)
    ext = event.get("extensions")
    if ext is not None and not _is_object(ext):
        out.append(Issue("extensions", "must be a JSON object"))
    for key, value in event.items():
        types = allowed.get(key)
        if types is not None and value is not None:
            _check_entity(value, key, types, out)
    return out


# --- event level ------------------------------------------------------------------------------


def _check_context(event: Mapping[str, Any], out: list[Issue]) -> None:
    ctx = event.get("@context")
    if ctx is None:
        out.append(Issue("@context", "required on a top-level event"))
    elif isinstance(ctx, str):
        if ctx != T.CONTEXT:
            out.append(Issue("@context", f"must be exactly {T.CONTEXT}"))
    elif isinstance(ctx, list):
        if not ctx or ctx[-1] != T.CONTEXT:
            out.append(Issue("@context", f"the last element must be {T.CONTEXT}"))
        for i, item in enumerate(ctx[:-1]):
            if isinstance(item, Mapping) and any(k in T.EVENT_PROPS or k in T.IS_A for k in item):
                out.append(Issue(f"@context[{i}]", "must not redefine Caliper terms"))
            elif not isinstance(item, str | Mapping):
                out.append(Issue(f"@context[{i}]", "must be an IRI or a context object"))
    else:
        out.append(Issue("@context", "must be a string or an array"))


def _check_keys(event: Mapping[str, Any], out: list[Issue]) -> None:
    # Set operations first: on a good event they are all the work there is, done in C.
    keys = event.keys()
    if not _REQUIRED.issubset(keys):
        out.extend(Issue(k, "required") for k in T.REQUIRED_EVENT_PROPS if k not in keys)
    if not T.EVENT_PROPS.issuperset(keys):
        out.extend(
            Issue(k, "unknown property: custom properties belong in extensions")
            for k in keys
            if k not in T.EVENT_PROPS
        )
    if None in event.values():
        for key, value in event.items():
            if value is None:
                required = key in _REQUIRED
                out.append(Issue(key, "required, must not be null" if required else _NULL))


_REQUIRED: Final = frozenset(T.REQUIRED_EVENT_PROPS)


_Combo = tuple[Any, Any, Any]
_GOOD_COMBOS: dict[_Combo, dict[str, frozenset[str]]] = {}  # valid (type, action, profile)


def _allowed(event: Mapping[str, Any], out: list[Issue]) -> dict[str, frozenset[str]]:
    """Check type, action and profile together; the allowed entity types of each property."""
    combo = (event.get("type"), event.get("action"), event.get("profile"))
    try:
        return _GOOD_COMBOS[combo]  # a handful of combinations, each checked once
    except (KeyError, TypeError):  # TypeError: an unhashable value, which is never valid
        pass
    before = len(out)
    type_ = _check_type(event, out)
    action = _check_action(event, type_, out)
    profile = _check_profile(event, type_, out)
    allowed = constraints(type_ or "", action, profile)
    if len(out) == before and type(combo[0]) is str and type(combo[1]) is str:
        _GOOD_COMBOS[combo] = allowed
    return allowed


def _check_type(event: Mapping[str, Any], out: list[Issue]) -> str | None:
    type_ = event.get("type")
    if type_ is None:
        return None
    if not isinstance(type_, str) or type_ not in T.EVENT_TYPES:
        out.append(Issue("type", f"unknown event type {type_!r}"))
        return None
    return type_


def _check_action(event: Mapping[str, Any], type_: str | None, out: list[Issue]) -> str | None:
    action = event.get("action")
    if action is None:
        return None
    if not isinstance(action, str) or action not in T.ACTIONS:
        out.append(Issue("action", f"unknown action {action!r}"))
        return None
    if type_ is not None:
        allowed = allowed_actions(type_)
        if allowed is not None and action not in allowed:
            out.append(Issue("action", f"{action} is not allowed on {type_} ({_list(allowed)})"))
    return action


def _check_profile(event: Mapping[str, Any], type_: str | None, out: list[Issue]) -> str | None:
    profile = event.get("profile")
    if profile is None:
        return None
    governed = T.PROFILES.get(profile) if isinstance(profile, str) else None
    if governed is None:
        out.append(Issue("profile", f"unknown profile {profile!r}"))
        return None
    if type_ is not None and type_ not in governed:
        out.append(Issue("profile", f"{profile} does not govern {type_}"))
    return str(profile)


def _check_event_id(value: Any, out: list[Issue]) -> None:
    if value is not None and (not isinstance(value, str) or not T.EVENT_ID.match(value)):
        out.append(Issue("id", "must be a urn:uuid: URN of a lowercase RFC 4122 UUID"))


# --- values -----------------------------------------------------------------------------------
# Each value rule takes (owner type, key, value, parent path, out) and builds the value's path
# only when it reports an issue: most values are fine, and the string building is the cost.

_NULL = "null value: omit the property"
_GOOD_TIMES: set[str] = set()  # date-times already checked; most events repeat the same few


def _is_object(value: Any) -> TypeGuard[Mapping[str, Any]]:
    # dict first: isinstance against the Mapping ABC is slow, and this runs many times per event
    return type(value) is dict or (type(value) is not str and isinstance(value, Mapping))


def _check_datetime(value: Any, path: str, out: list[Issue]) -> None:
    if _hashable(value) and value in _GOOD_TIMES:  # fix
        return
    m = T.DATETIME.match(value) if type(value) is str else None
    if m is None:
        out.append(Issue(path, "must be a UTC date-time YYYY-MM-DDTHH:MM:SS.mmmZ"))
        return
    _, mo, d, h, mi, sec = m.groups()
    # Zero-padded digits compare as strings; only days 29-31 need the calendar.
    if not ("01" <= mo <= "12" and "01" <= d <= "28" and h < "24" and mi < "60" and sec < "60"):
        try:
            datetime(*(int(g) for g in m.groups()))  # type: ignore[arg-type]
        except ValueError:
            out.append(Issue(path, f"not a real date and time: {value}"))
            return
    if len(_GOOD_TIMES) >= 4096:
        _GOOD_TIMES.clear()
    _GOOD_TIMES.add(value)


def _v_datetime(owner: str, key: str, value: Any, parent: str, out: list[Issue]) -> None:
    if not _hashable(value) or value not in _GOOD_TIMES:  # fix
        _check_datetime(value, f"{parent}.{key}", out)


def _v_decimal(owner: str, key: str, value: Any, parent: str, out: list[Issue]) -> None:
    if type(value) is not float or not math.isfinite(value):
        msg = "must be a finite decimal number written with a fraction (10.0)"
        out.append(Issue(f"{parent}.{key}", msg))


def _v_integer(owner: str, key: str, value: Any, parent: str, out: list[Issue]) -> None:
    if type(value) is not int:
        out.append(Issue(f"{parent}.{key}", "must be an integer"))


def _v_entity(owner: str, key: str, value: Any, parent: str, out: list[Issue]) -> None:
    if type(value) is str and value in _GOOD_IRIS:
        return  # an IRI reference seen before (the student, the assessment): valid
    types = T.ENTITY_REFS_BY_OWNER.get((owner, key)) or T.ENTITY_REFS[key]
    _check_entity(value, f"{parent}.{key}", types, out)


def _v_object(owner: str, key: str, value: Any, parent: str, out: list[Issue]) -> None:
    if not _is_object(value):
        out.append(Issue(f"{parent}.{key}", "must be a JSON object"))


def _v_string(owner: str, key: str, value: Any, parent: str, out: list[Issue]) -> None:
    if type(value) is not str:
        out.append(Issue(f"{parent}.{key}", "must be a string"))


def _v_duration(owner: str, key: str, value: Any, parent: str, out: list[Issue]) -> None:
    if type(value) is not str or not T.DURATION.match(value):
        out.append(Issue(f"{parent}.{key}", "must be an ISO 8601 duration such as PT5M"))


def _v_boolean(owner: str, key: str, value: Any, parent: str, out: list[Issue]) -> None:
    if type(value) is not bool:
        out.append(Issue(f"{parent}.{key}", "must be a boolean"))


def _v_entity_list(owner: str, key: str, value: Any, parent: str, out: list[Issue]) -> None:
    path = f"{parent}.{key}"
    if type(value) is not list:
        out.append(Issue(path, "must be an array"))
        return
    types = T.ENTITY_LIST_REFS[key]
    for i, item in enumerate(value):
        _check_entity(item, f"{path}[{i}]", types, out)


def _v_identifiers(owner: str, key: str, value: Any, parent: str, out: list[Issue]) -> None:
    path = f"{parent}.{key}"
    if type(value) is not list:
        out.append(Issue(path, "must be an array of SystemIdentifier"))
        return
    for i, item in enumerate(value):
        p = f"{path}[{i}]"
        if not _is_object(item) or item.get("type") != "SystemIdentifier":
            out.append(Issue(p, "must be a SystemIdentifier object"))
            continue
        if "id" in item:
            out.append(Issue(f"{p}.id", "a SystemIdentifier has no id"))
        if type(item.get("identifier")) is not str:
            out.append(Issue(f"{p}.identifier", "required string"))
        id_type = item.get("identifierType")
        if not _hashable(id_type) or id_type not in T.SYSTEM_IDENTIFIER_TYPES:  # fix
            out.append(Issue(f"{p}.identifierType", "unknown SystemIdentifier type"))


_ValueRule = Callable[[str, str, Any, str, list[Issue]], None]


def _rules_by_key() -> dict[str, _ValueRule]:
    table: dict[str, _ValueRule] = {}
    for keys, rule in (
        (T.DATETIME_PROPS, _v_datetime),
        (T.DECIMAL_PROPS, _v_decimal),
        (T.INTEGER_PROPS, _v_integer),
        (T.ENTITY_REFS, _v_entity),
        (T.OBJECT_PROPS, _v_object),
        (T.STRING_PROPS, _v_string),
        (T.DURATION_PROPS, _v_duration),
        (T.BOOLEAN_PROPS, _v_boolean),
        (T.ENTITY_LIST_REFS, _v_entity_list),
        (("otherIdentifiers",), _v_identifiers),
    ):
        for key in keys:
            table[key] = rule
    return table


_VALUE_RULES: Final = _rules_by_key()


# --- entities ---------------------------------------------------------------------------------


def _check_entity(value: Any, path: str, types: frozenset[str], out: list[Issue]) -> None:
    """An entity: an IRI string, or an object with an IRI id, a known type of ``types``, and
    properties that each follow their rule."""
    if type(value) is str:
        if not _is_iri(value):
            out.append(Issue(path, "an entity given as a string must be an absolute IRI"))
        return
    if not _is_object(value):
        out.append(Issue(path, "must be an entity object or an IRI string"))
        return
    id_ = value.get("id")
    if type(id_) is not str or (id_ not in _GOOD_IRIS and not _is_iri(id_)):
        out.append(Issue(f"{path}.id", "required" if id_ is None else "must be an absolute IRI"))
    type_ = value.get("type")
    owner = type_ if type(type_) is str else ""
    ancestors = _IS_A.get(owner)
    if ancestors is None:
        msg = "required" if type_ is None else f"unknown entity type {type_!r}"
        out.append(Issue(f"{path}.type", msg))
    elif ancestors.isdisjoint(types):
        out.append(Issue(f"{path}.type", f"must be {_list(types)}, not {type_}"))
    if len(value) == 2 and id_ is not None and type_ is not None:
        return  # a reference such as {"id": …, "type": "Person"}: nothing more to check
    known = _KNOWN_PROPS.get(owner)
    if known is not None and not known.issuperset(value.keys()):
        for key in value:
            if key not in known:
                out.append(Issue(f"{path}.{key}", f"not a property of {owner}: use extensions"))
    if None in value.values():
        out.extend(Issue(f"{path}.{k}", _NULL) for k, v in value.items() if v is None)
    rules = _VALUE_RULES
    for key, item in value.items():
        rule = rules.get(key)
        if rule is not None and item is not None:
            rule(owner, key, item, path, out)


_IS_A: Final = T.IS_A  # module globals: one lookup cheaper than T.<name> in the hot loop
_KNOWN_PROPS: Final = T.KNOWN_PROPS
_GOOD_IRIS: set[str] = set()  # IRIs already checked: the app, the student, the course recur


def _is_iri(value: str) -> bool:
    if value in _GOOD_IRIS:
        return True
    if T.ENTITY_IRI.match(value) is None:
        return False
    if len(_GOOD_IRIS) >= 4096:
        _GOOD_IRIS.clear()
    _GOOD_IRIS.add(value)
    return True


def _list(types: frozenset[str]) -> str:
    return " or ".join(sorted(types))


# --- TimeBack ---------------------------------------------------------------------------------

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
    _good: set[str] = field(default_factory=set)  # accepted before: students and apps recur

    @classmethod
    def under(cls, prefix: str, name: str) -> _IriRule:
        """IRIs of one path segment under ``prefix``."""
        pattern = re.compile(re.escape(prefix) + r"[^/\s?#]+\Z")
        return cls(pattern, f"must be {prefix}{{sourcedId}} ({name})")

    def accepts(self, value: str) -> bool:
        if value in self._good:
            return True
        if self.pattern.match(value) is None:
            return False
        if len(self._good) >= 4096:
            self._good.clear()
        self._good.add(value)
        return True


def timeback_issues(event: Mapping[str, Any], rules: TimeBackRules) -> list[Issue]:
    """Every TimeBack rule the event breaks (an empty list means the API would accept it)."""
    if not _is_object(event):
        return [Issue("", "an event must be a JSON object")]
    out: list[Issue] = []
    type_ = event.get("type")
    action = event.get("action")
    actions = SUPPORTED.get(type_) if isinstance(type_, str) else None
    if actions is None:
        out.append(Issue("type", f"TimeBack does not accept {type_!r} events"))
    elif not _hashable(action) or action not in actions:  # fix
        out.append(Issue("action", f"TimeBack does not accept {type_} {action!r}"))
    _check_extensions(event, _hashable(type_) and type_ in NEEDS_COURSE, rules, out)  # fix
    _check_agents(event, type_, rules, out)
    obj, generated = event.get("object"), event.get("generated")
    if _is_object(obj):
        _check_iri(obj.get("assignee"), "object.assignee", rules._stu, out)
    if _is_object(generated):
        _check_iri(generated.get("assignee"), "generated.assignee", rules._stu, out)
        attempt = generated.get("attempt")
        if _is_object(attempt):
            _check_iri(attempt.get("assignee"), "generated.attempt.assignee", rules._stu, out)
    if type_ == "GradeEvent":
        _check_score(generated, out)
    if action == "Submitted" and (
        not _is_object(generated) or generated.get("endedAtTime") is None
    ):
        out.append(Issue("generated.endedAtTime", "required for Submitted"))
    return out


def _check_extensions(
    event: Mapping[str, Any], required: bool, rules: TimeBackRules, out: list[Issue]
) -> None:
    ext = event.get("extensions")
    if ext is None:
        ext = {}
    elif not _is_object(ext):
        return  # the Caliper rules already report it
    if rules.strict_extensions and not EXTENSION_KEYS.issuperset(ext.keys()):
        out.extend(
            Issue(f"extensions.{k}", "unrecognized key") for k in ext if k not in EXTENSION_KEYS
        )
    subject = ext.get("subject")
    if subject is None:
        if required:
            out.append(Issue("extensions.subject", "required on this event type"))
    elif not _hashable(subject) or subject not in rules._subjects:  # fix
        out.append(Issue("extensions.subject", f"{subject!r} is not one of {list(rules.subjects)}"))
    course = ext.get("course")
    if course is None:
        if required:
            out.append(Issue("extensions.course", "required on this event type"))
    elif not _is_object(course):
        out.append(Issue("extensions.course", "must be an object {id}"))
    else:
        if rules.strict_extensions and len(course) > 1:
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
    actor_type = actor.get("type") if _is_object(actor) else None
    if type_ == "GradeEvent":
        if actor_type != "SoftwareApplication":
            out.append(Issue("actor", "the GradeEvent actor must be the app (SoftwareApplication)"))
        _check_iri(actor, "actor", rules._app, out)
    elif actor_type == "Person" or (isinstance(actor, str) and _student_actor(event, type_)):
        _check_iri(actor, "actor", rules._stu, out)
    _check_iri(event.get("edApp"), "edApp", rules._app, out)


def _check_iri(value: Any, path: str, rule: _IriRule, out: list[Issue]) -> None:
    """``value`` (an IRI string or an entity object) must have an id that ``rule`` accepts."""
    if type(value) is str:
        if not rule.accepts(value):
            out.append(Issue(path, rule.message))
    elif _is_object(value):
        id_ = value.get("id")
        # a missing id is the Caliper rules' to report
        if id_ is not None and (type(id_) is not str or not rule.accepts(id_)):
            out.append(Issue(f"{path}.id", rule.message))
    elif value is not None:
        out.append(Issue(path, rule.message))


def _check_score(generated: Any, out: list[Issue]) -> None:
    if generated is None:
        out.append(Issue("generated", "required: a Score with extensions.scoreType"))
        return
    if not _is_object(generated) or generated.get("type") != "Score":
        out.append(Issue("generated", "must be a Score object"))
        return
    ext = generated.get("extensions")
    score_type = ext.get("scoreType") if _is_object(ext) else None
    if not _hashable(score_type) or score_type not in SCORE_TYPES:  # fix
        out.append(Issue("generated.extensions.scoreType", f"must be one of {sorted(SCORE_TYPES)}"))


def _student_actor(event: Mapping[str, Any], type_: Any) -> bool:
    """Whether this event type's actor must be the student (so an IRI actor is a STU)."""
    if type_ == "SessionEvent":
        return event.get("action") != "TimedOut"
    return _hashable(type_) and type_ in STUDENT_ACTOR  # fix


def _hashable(value: Any) -> bool:
    return isinstance(value, Hashable)


def check(event: Mapping[str, Any], rules: TimeBackRules) -> list[Issue]:
    issues = caliper_issues(event)
    if type(event) is dict or isinstance(event, Mapping):
        issues.extend(timeback_issues(event, rules))
    return issues
