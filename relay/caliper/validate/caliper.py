"""The Caliper v1p2 rules (docs/caliper-rules.md), compiled once per event type.

Every issue is collected (never stop at the first) with the JSON path of the offending value.
What depends only on the event's (type, action, profile) is resolved once per combination into a
``CaliperChecker``: the type, action and profile issues, which properties hold entities and of
which types. What depends only on an entity's type is resolved once per (type, allowed types) into
an ``_EntityShape``: the type issue, the known properties, the rule of each property with its
entity types bound. Checking an event is then dict and set lookups, a few precompiled regexes,
and string building only for an issue.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, TypeGuard, TypeVar

from relay.caliper.validate import terms as T
from relay.caliper.validate.event_rules import allowed_actions, constraints
from relay.caliper.validate.formats import (
    datetime_fields,
    is_entity_iri,
    is_event_id,
    is_plain_datetime,
)


@dataclass(frozen=True, slots=True)
class Issue:
    """One broken rule: where (a JSON path such as ``generated.scoreGiven``) and what."""

    path: str
    message: str


NOT_AN_OBJECT: Final = Issue("", "an event must be a JSON object")


def caliper_issues(event: Mapping[str, Any]) -> list[Issue]:
    """Every Caliper v1p2 rule the event breaks (an empty list means valid)."""
    if not is_object(event):
        return [NOT_AN_OBJECT]
    out: list[Issue] = []
    caliper_checker(event.get("type"), event.get("action"), event.get("profile")).run(event, out)
    return out


# --- one event type ---------------------------------------------------------------------------

_REQUIRED: Final = frozenset(T.REQUIRED_EVENT_PROPS)
_NULL = "null value: omit the property"


class CaliperChecker:
    """The Caliper rules of one (type, action, profile) combination, resolved once."""

    __slots__ = ("combo_issues", "entities")

    def __init__(self, type_: Any, action: Any, profile: Any) -> None:
        out: list[Issue] = []
        type_ = _check_type(type_, out)
        action = _check_action(action, type_, out)
        profile = _check_profile(profile, type_, out)
        # the type, action and profile issues: a function of the combination alone
        self.combo_issues: Final = tuple(out)
        # event property -> the check of its entity, types bound
        self.entities: Final = {
            key: _entity_check(types)
            for key, types in constraints(type_ or "", action, profile).items()
        }

    def run(self, event: Mapping[str, Any], out: list[Issue]) -> None:
        """Append the issues of ``event`` (a JSON object of this combination) to ``out``."""
        if event.get("@context") != T.CONTEXT:
            _check_context(event, out)
        keys = event.keys()
        # view-to-set comparisons: no temporary set (frozenset.issubset(keys) builds one)
        if not (keys >= _REQUIRED and keys <= T.EVENT_PROPS):
            _check_keys(event, out)
        nulls_at = len(out)  # the null properties' issues go here, found in the last loop
        if self.combo_issues:
            out.extend(self.combo_issues)
        id_ = event.get("id")
        if id_ is not None and (type(id_) is not str or not is_event_id(id_)):
            out.append(Issue("id", "must be a urn:uuid: URN of a lowercase RFC 4122 UUID"))
        time = event.get("eventTime")
        if time is not None and not (type(time) is str and _good_time(time)):
            _check_datetime(time, "eventTime", out)
        ext = event.get("extensions")
        if ext is not None and type(ext) is not dict and not is_object(ext):
            out.append(Issue("extensions", "must be a JSON object"))
        entities = self.entities
        nulls: list[Issue] | None = None
        for key, value in event.items():
            if value is None:
                message = "required, must not be null" if key in _REQUIRED else _NULL
                nulls = [] if nulls is None else nulls
                nulls.append(Issue(key, message))
                continue
            check = entities.get(key)
            if check is not None:
                check.check(value, key, out)
        if nulls is not None:
            out[nulls_at:nulls_at] = nulls


_CHECKERS: dict[tuple[Any, Any, Any], CaliperChecker] = {}


def caliper_checker(type_: Any, action: Any, profile: Any) -> CaliperChecker:
    """The checker of one combination: built once for terms (strings), afresh for anything else
    (a number or a list in place of a term is rare, and ``1 == True`` must not share an entry)."""
    combo = (type_, action, profile)
    try:
        return _CHECKERS[combo]
    except (KeyError, TypeError):  # TypeError: a list or an object, never a valid term
        pass
    return keep(_CHECKERS, combo, CaliperChecker(type_, action, profile))


def is_term(value: Any) -> bool:
    """A value that may key a cache of compiled checkers: None or exactly a str."""
    return value is None or type(value) is str


C = TypeVar("C")
TERM_CACHE: Final = 512  # compiled checkers kept per cache: unknown terms sent to the sandbox
GOOD_CACHE: Final = 4096  # values already accepted, kept per generation (``Accepted``)


def keep(cache: dict[Any, C], terms: tuple[Any, ...], checker: C) -> C:
    """``checker``, just built for ``terms``, kept in ``cache`` when every term is a term (a
    number or a list in place of one is rare, and ``1 == True`` must not share an entry); the
    cache starts afresh at ``TERM_CACHE`` entries, so made-up terms cannot grow it forever."""
    if all(is_term(term) for term in terms):
        if len(cache) >= TERM_CACHE:
            cache.clear()
        cache[terms] = checker
    return checker


class Accepted:
    """Values accepted before, in two generations of at most ``GOOD_CACHE`` each.

    The app, the students, the courses and activities recur, while the ids of attempts, scores
    and responses, and most times, are new with every event. A single set started afresh when
    full lost the recurring values to those (in S1's traffic every student was checked again
    about six times); a full young generation becomes the old one instead, and a value found
    there is taken back, so what recurs within two fillings is never checked again. Callers may
    test ``young`` inline (a set look-up, no call) before ``admits``."""

    __slots__ = ("old", "young")

    def __init__(self) -> None:
        self.young: set[str] = set()
        self.old: set[str] = set()

    def admits(self, value: str, test: Callable[[str], object]) -> bool:
        """``value`` accepted before, or now by ``test`` (truthy: accepted), and remembered."""
        if value in self.young:
            return True
        if value not in self.old and not test(value):
            return False
        self.add(value)
        return True

    def add(self, value: str) -> None:
        """Note ``value`` as accepted (again, when it came from the old generation)."""
        young = self.young
        if len(young) >= GOOD_CACHE:
            self.old.clear()
            self.old.update(young)
            young.clear()  # the same set: callers may hold it
        young.add(value)


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
    """Required and unknown properties (the null ones are found in ``run``'s walk)."""
    keys = event.keys()
    if not _REQUIRED.issubset(keys):
        out.extend(Issue(k, "required") for k in T.REQUIRED_EVENT_PROPS if k not in keys)
    if not T.EVENT_PROPS.issuperset(keys):
        out.extend(
            Issue(k, "unknown property: custom properties belong in extensions")
            for k in keys
            if k not in T.EVENT_PROPS
        )


def _check_type(type_: Any, out: list[Issue]) -> str | None:
    if type_ is None:
        return None
    if not isinstance(type_, str) or type_ not in T.EVENT_TYPES:
        out.append(Issue("type", f"unknown event type {type_!r}"))
        return None
    return type_


def _check_action(action: Any, type_: str | None, out: list[Issue]) -> str | None:
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


def _check_profile(profile: Any, type_: str | None, out: list[Issue]) -> str | None:
    if profile is None:
        return None
    governed = T.PROFILES.get(profile) if isinstance(profile, str) else None
    if governed is None:
        out.append(Issue("profile", f"unknown profile {profile!r}"))
        return None
    if type_ is not None and type_ not in governed:
        out.append(Issue("profile", f"{profile} does not govern {type_}"))
    return str(profile)


# --- values -----------------------------------------------------------------------------------
# Each value rule takes (value, parent path, key, out) and builds the value's path only when it
# reports an issue: most values are fine, and the string building is the cost.

_TIMES: Final = Accepted()  # date-times already checked: an event's times recur in the next ones


# JSON values that are never a Mapping: asked of them, isinstance against the ABC is slow (a
# property left out is None, and TimeBack's rules ask about absent ``generated``/``attempt``).
_NEVER_OBJECTS: Final = frozenset({str, type(None), int, float, bool, list})


def is_object(value: Any) -> TypeGuard[Mapping[str, Any]]:
    """A JSON object: a dict, or any other Mapping (a str is never one)."""
    # dict first: isinstance against the Mapping ABC is slow, and this runs many times per event
    kind = type(value)
    return kind is dict or (kind not in _NEVER_OBJECTS and isinstance(value, Mapping))


def _check_datetime(value: Any, path: str, out: list[Issue]) -> None:
    fields = datetime_fields(value) if type(value) is str else None
    if fields is None:
        out.append(Issue(path, "must be a UTC date-time YYYY-MM-DDTHH:MM:SS.mmmZ"))
        return
    _, mo, d, h, mi, sec = fields
    # Zero-padded digits compare as strings; only days 29-31 need the calendar.
    if not ("01" <= mo <= "12" and "01" <= d <= "28" and h < "24" and mi < "60" and sec < "60"):
        try:
            datetime(*(int(g) for g in fields))  # type: ignore[arg-type]
        except ValueError:
            out.append(Issue(path, f"not a real date and time: {value}"))
            return
    _TIMES.add(value)


def _good_time(value: str) -> bool:
    """A date-time checked before, or a new one in range without the calendar (remembered).
    False says nothing: ``_check_datetime`` decides, and builds an issue's path only then."""
    return _TIMES.admits(value, is_plain_datetime)


def _v_datetime(value: Any, parent: str, key: str, out: list[Issue]) -> None:
    if type(value) is not str or not _good_time(value):
        _check_datetime(value, f"{parent}.{key}", out)


def _v_decimal(value: Any, parent: str, key: str, out: list[Issue]) -> None:
    # x - x is 0.0 exactly for a finite float, NaN for an infinity or a NaN: math.isfinite's
    # answer without the call (two per GradeEvent)
    if type(value) is not float or value - value != 0.0:
        msg = "must be a finite decimal number written with a fraction (10.0)"
        out.append(Issue(f"{parent}.{key}", msg))


def _v_integer(value: Any, parent: str, key: str, out: list[Issue]) -> None:
    if type(value) is not int:
        out.append(Issue(f"{parent}.{key}", "must be an integer"))


def _v_object(value: Any, parent: str, key: str, out: list[Issue]) -> None:
    if type(value) is not dict and not is_object(value):
        out.append(Issue(f"{parent}.{key}", "must be a JSON object"))


def _v_string(value: Any, parent: str, key: str, out: list[Issue]) -> None:
    if type(value) is not str:
        out.append(Issue(f"{parent}.{key}", "must be a string"))


def _v_duration(value: Any, parent: str, key: str, out: list[Issue]) -> None:
    if type(value) is not str or not T.DURATION.match(value):
        out.append(Issue(f"{parent}.{key}", "must be an ISO 8601 duration such as PT5M"))


def _v_boolean(value: Any, parent: str, key: str, out: list[Issue]) -> None:
    if type(value) is not bool:
        out.append(Issue(f"{parent}.{key}", "must be a boolean"))


def _v_identifiers(value: Any, parent: str, key: str, out: list[Issue]) -> None:
    path = f"{parent}.{key}"
    if type(value) is not list:
        out.append(Issue(path, "must be an array of SystemIdentifier"))
        return
    for i, item in enumerate(value):
        p = f"{path}[{i}]"
        if not is_object(item) or item.get("type") != "SystemIdentifier":
            out.append(Issue(p, "must be a SystemIdentifier object"))
            continue
        if "id" in item:
            out.append(Issue(f"{p}.id", "a SystemIdentifier has no id"))
        if type(item.get("identifier")) is not str:
            out.append(Issue(f"{p}.identifier", "required string"))
        id_type = item.get("identifierType")
        if not isinstance(id_type, str) or id_type not in T.SYSTEM_IDENTIFIER_TYPES:
            out.append(Issue(f"{p}.identifierType", "unknown SystemIdentifier type"))


_ValueRule = Callable[[Any, str, str, list[Issue]], None]

# The rules that do not depend on the owner's type; entity-valued keys are bound per owner.
_PLAIN_RULES: Final[dict[str, _ValueRule]] = {
    **dict.fromkeys(T.DATETIME_PROPS, _v_datetime),
    **dict.fromkeys(T.DECIMAL_PROPS, _v_decimal),
    **dict.fromkeys(T.INTEGER_PROPS, _v_integer),
    **dict.fromkeys(T.OBJECT_PROPS, _v_object),
    **dict.fromkeys(T.STRING_PROPS, _v_string),
    **dict.fromkeys(T.DURATION_PROPS, _v_duration),
    **dict.fromkeys(T.BOOLEAN_PROPS, _v_boolean),
}


class _Always:
    """A type no value has: the rule of a property with it runs on every value."""


# The one type that passes a rule without running it (a count is an int, a name a str...): most
# values are fine, and the call is most of a rule's cost. Another Mapping than a dict still goes
# to _v_object.
_PASSING_TYPE: Final[dict[_ValueRule, type]] = {
    _v_integer: int,
    _v_string: str,
    _v_boolean: bool,
    _v_object: dict,
}
# A property's rule, with the type that passes it without the call (_Always: none does).
_Rule = tuple[type, _ValueRule]


def _rules_of(owner: str) -> dict[str, _Rule]:
    """Every property rule of an entity of type ``owner`` ("" when its type is not a string)."""
    rules: dict[str, _ValueRule] = dict(_PLAIN_RULES)
    for key, types in T.ENTITY_REFS.items():
        rules[key] = _entity_check(T.ENTITY_REFS_BY_OWNER.get((owner, key)) or types).check_ref
    for key, types in T.ENTITY_LIST_REFS.items():
        rules[key] = _entity_check(types).check_list
    rules["otherIdentifiers"] = _v_identifiers
    return {key: (_PASSING_TYPE.get(rule, _Always), rule) for key, rule in rules.items()}


# --- entities ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _EntityShape:
    """What an entity of one type needs, under one set of allowed types."""

    type_issue: str | None  # the message at ``<path>.type``, None when the type is allowed
    known: frozenset[str] | None  # every property of the type; None: not checked
    rules: dict[str, _Rule]


class _EntityCheck:
    """The check of an entity whose type must be (or descend from) one of ``types``."""

    __slots__ = ("_shapes", "types")

    def __init__(self, types: frozenset[str]) -> None:
        self.types: Final = types
        self._shapes: dict[str, _EntityShape] = {}  # by entity type: the known ones only

    def check(self, value: Any, path: str, out: list[Issue]) -> None:
        """An entity: an IRI string, or an object with an IRI id, a known type of ``types``,
        and properties that each follow their rule."""
        if type(value) is not dict:  # dict first: the ABC check in is_object is slow
            if type(value) is str:
                if value not in _GOOD_IRIS and not _is_iri(value):
                    out.append(Issue(path, "an entity given as a string must be an absolute IRI"))
                return
            if not is_object(value):
                out.append(Issue(path, "must be an entity object or an IRI string"))
                return
        id_ = value.get("id")
        if type(id_) is not str or (id_ not in _GOOD_IRIS and not _is_iri(id_)):
            msg = "required" if id_ is None else "must be an absolute IRI"
            out.append(Issue(f"{path}.id", msg))
        type_ = value.get("type")
        shape = self._shapes.get(type_) if type(type_) is str else None
        if shape is None:
            shape = self._shape(type_)
        if shape.type_issue is not None:
            out.append(Issue(f"{path}.type", shape.type_issue))
        if len(value) == 2 and id_ is not None and type_ is not None:
            return  # a reference such as {"id": …, "type": "Person"}: nothing more to check
        known = shape.known
        if known is not None and not known.issuperset(value.keys()):
            for key in value:
                if key not in known:
                    owner = type_  # a known type: a string
                    out.append(Issue(f"{path}.{key}", f"not a property of {owner}: use extensions"))
        # One walk finds the null properties and runs the rules; the nulls' issues still come
        # before the rules' (inserted where they were found to belong).
        nulls_at = len(out)
        nulls: list[Issue] | None = None
        rules = shape.rules
        for key, item in value.items():
            if item is None:
                nulls = [] if nulls is None else nulls
                nulls.append(Issue(f"{path}.{key}", _NULL))
                continue
            rule = rules.get(key)
            if rule is not None and type(item) is not rule[0]:
                rule[1](item, path, key, out)
        if nulls is not None:
            out[nulls_at:nulls_at] = nulls

    def check_ref(self, value: Any, parent: str, key: str, out: list[Issue]) -> None:
        """An entity-valued property of an entity."""
        kind = type(value)
        if kind is str:
            if value in _GOOD_IRIS:
                return  # an IRI reference seen before (the student, the assessment): valid
        elif kind is dict and len(value) == 2:
            # A reference {"id", "type"} whose id was accepted before and whose type is allowed
            # here: what check() would find valid, without building the path it passes on.
            id_, type_ = value.get("id"), value.get("type")
            if type(id_) is str and type(type_) is str and id_ in _GOOD_IRIS:
                shape = self._shapes.get(type_)
                if shape is not None and shape.type_issue is None:
                    return
        self.check(value, f"{parent}.{key}", out)

    def check_list(self, value: Any, parent: str, key: str, out: list[Issue]) -> None:
        """An array of entities."""
        path = f"{parent}.{key}"
        if type(value) is not list:
            out.append(Issue(path, "must be an array"))
            return
        for i, item in enumerate(value):
            self.check(item, f"{path}[{i}]", out)

    def _shape(self, type_: Any) -> _EntityShape:
        """Resolve an entity type once; kept for the known types (a bounded set)."""
        owner = type_ if type(type_) is str else ""
        ancestors = T.IS_A.get(owner)
        if ancestors is None:
            issue: str | None = "required" if type_ is None else f"unknown entity type {type_!r}"
        elif ancestors.isdisjoint(self.types):
            issue = f"must be {_list(self.types)}, not {type_}"
        else:
            issue = None
        shape = _EntityShape(issue, T.KNOWN_PROPS.get(owner), _owner_rules(owner))
        if ancestors is not None:
            self._shapes[owner] = shape
        return shape


_ENTITY_CHECKS: dict[frozenset[str], _EntityCheck] = {}
_OWNER_RULES: dict[str, dict[str, _Rule]] = {}


def _entity_check(types: frozenset[str]) -> _EntityCheck:
    """One check per set of allowed types, shared by every property and event type using it."""
    check = _ENTITY_CHECKS.get(types)
    if check is None:
        check = _ENTITY_CHECKS[types] = _EntityCheck(types)
    return check


def _owner_rules(owner: str) -> dict[str, _Rule]:
    # only known types and "" reach here with a table worth keeping; unknown ones share ""
    key = owner if owner in T.IS_A else ""
    rules = _OWNER_RULES.get(key)
    if rules is None:
        rules = _OWNER_RULES[key] = _rules_of(key)
    return rules


# IRIs already checked (``Accepted``: the recurring ones outlive the one-off ids).
_IRIS: Final = Accepted()
_GOOD_IRIS: Final = _IRIS.young  # tested inline by the entity checks


def _is_iri(value: str) -> bool:
    return _IRIS.admits(value, is_entity_iri)


def _list(types: frozenset[str]) -> str:
    return " or ".join(sorted(types))
