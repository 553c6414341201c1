"""The Caliper v1p2 rules (CALIPER.md §1-§6) as one pass over an event.

Every issue is collected (never stop at the first) with the JSON path of the offending value.
The walk is plain dict/set lookups and a few precompiled regexes, because the relay runs it on
every event it sends.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from relay.caliper.validate import terms as T
from relay.caliper.validate.event_rules import allowed_actions, constraints


@dataclass(frozen=True, slots=True)
class Issue:
    """One broken rule: where (a JSON path such as ``generated.scoreGiven``) and what."""

    path: str
    message: str


def caliper_issues(event: Mapping[str, Any]) -> list[Issue]:
    """Every Caliper v1p2 rule the event breaks (an empty list means valid)."""
    if not isinstance(event, Mapping):
        return [Issue("", "an event must be a JSON object")]
    out: list[Issue] = []
    _check_context(event, out)
    _check_keys(event, out)
    type_ = _check_type(event, out)
    action = _check_action(event, type_, out)
    profile = _check_profile(event, type_, out)
    _check_event_id(event.get("id"), out)
    time = event.get("eventTime")
    if time is not None:
        _check_datetime(time, "eventTime", out)
    ext = event.get("extensions")
    if ext is not None and not isinstance(ext, Mapping):
        out.append(Issue("extensions", "must be a JSON object"))
    allowed = constraints(type_ or "", action, profile)
    for prop, types in allowed.items():
        value = event.get(prop)
        if value is not None:
            _check_entity(value, prop, types, out)
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
    for key in T.REQUIRED_EVENT_PROPS:
        if key not in event:
            out.append(Issue(key, "required"))
    for key, value in event.items():
        if key not in T.EVENT_PROPS:
            out.append(Issue(key, "unknown property: custom properties belong in extensions"))
        elif value is None:
            required = key in T.REQUIRED_EVENT_PROPS
            out.append(Issue(key, "required, must not be null" if required else _NULL))


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

_NULL = "null value: omit the property"


def _check_datetime(value: Any, path: str, out: list[Issue]) -> None:
    m = T.DATETIME.match(value) if isinstance(value, str) else None
    if m is None:
        out.append(Issue(path, "must be a UTC date-time YYYY-MM-DDTHH:MM:SS.mmmZ"))
        return
    try:
        y, mo, d, h, mi, sec = (int(g) for g in m.groups())
        datetime(y, mo, d, h, mi, sec)
    except ValueError:
        out.append(Issue(path, f"not a real date and time: {value}"))


def _check_value(owner: str, key: str, value: Any, path: str, out: list[Issue]) -> None:
    """The rules of one entity property, by the kind of property it is."""
    if value is None:
        out.append(Issue(path, _NULL))
    elif key in T.DATETIME_PROPS:
        _check_datetime(value, path, out)
    elif key in T.DECIMAL_PROPS:
        if type(value) is not float or not math.isfinite(value):
            out.append(Issue(path, "must be a finite decimal number written with a fraction"))
    elif key in T.INTEGER_PROPS:
        if type(value) is not int:
            out.append(Issue(path, "must be an integer"))
    elif key in T.ENTITY_REFS:
        types = T.ENTITY_REFS_BY_OWNER.get((owner, key)) or T.ENTITY_REFS[key]
        _check_entity(value, path, types, out)
    elif key in T.OBJECT_PROPS:
        if not isinstance(value, Mapping):
            out.append(Issue(path, "must be a JSON object"))
    elif key in T.STRING_PROPS:
        if not isinstance(value, str):
            out.append(Issue(path, "must be a string"))
    elif key in T.DURATION_PROPS:
        if not isinstance(value, str) or not T.DURATION.match(value):
            out.append(Issue(path, "must be an ISO 8601 duration such as PT5M"))
    elif key in T.BOOLEAN_PROPS:
        if not isinstance(value, bool):
            out.append(Issue(path, "must be a boolean"))
    elif key in T.ENTITY_LIST_REFS:
        _check_entity_list(value, path, T.ENTITY_LIST_REFS[key], out)
    elif key == "otherIdentifiers":
        _check_identifiers(value, path, out)


def _check_entity_list(value: Any, path: str, types: frozenset[str], out: list[Issue]) -> None:
    if not isinstance(value, list):
        out.append(Issue(path, "must be an array"))
        return
    for i, item in enumerate(value):
        _check_entity(item, f"{path}[{i}]", types, out)


def _check_identifiers(value: Any, path: str, out: list[Issue]) -> None:
    if not isinstance(value, list):
        out.append(Issue(path, "must be an array of SystemIdentifier"))
        return
    for i, item in enumerate(value):
        p = f"{path}[{i}]"
        if not isinstance(item, Mapping) or item.get("type") != "SystemIdentifier":
            out.append(Issue(p, "must be a SystemIdentifier object"))
            continue
        if "id" in item:
            out.append(Issue(f"{p}.id", "a SystemIdentifier has no id"))
        if not isinstance(item.get("identifier"), str):
            out.append(Issue(f"{p}.identifier", "required string"))
        if item.get("identifierType") not in T.SYSTEM_IDENTIFIER_TYPES:
            out.append(Issue(f"{p}.identifierType", "unknown SystemIdentifier type"))


# --- entities ---------------------------------------------------------------------------------


def _check_entity(value: Any, path: str, types: frozenset[str], out: list[Issue]) -> None:
    """An entity: an IRI string, or an object with an IRI id, a known type of ``types``, and
    properties that each follow their rule."""
    if isinstance(value, str):
        if not T.ENTITY_IRI.match(value):
            out.append(Issue(path, "an entity given as a string must be an absolute IRI"))
        return
    if not isinstance(value, Mapping):
        out.append(Issue(path, "must be an entity object or an IRI string"))
        return
    id_ = value.get("id")
    if id_ is None:
        out.append(Issue(f"{path}.id", "required"))
    elif not isinstance(id_, str) or not T.ENTITY_IRI.match(id_):
        out.append(Issue(f"{path}.id", "must be an absolute IRI"))
    type_ = value.get("type")
    owner = type_ if isinstance(type_, str) else ""
    ancestors = T.IS_A.get(owner)
    if type_ is None:
        out.append(Issue(f"{path}.type", "required"))
    elif ancestors is None:
        out.append(Issue(f"{path}.type", f"unknown entity type {type_!r}"))
    elif ancestors.isdisjoint(types):
        out.append(Issue(f"{path}.type", f"must be {_list(types)}, not {type_}"))
    known = T.KNOWN_PROPS.get(owner)
    for key, item in value.items():
        if key == "id" or key == "type":
            continue
        if known is not None and key not in known:
            out.append(Issue(f"{path}.{key}", f"not a property of {owner}: use extensions"))
        else:
            _check_value(owner, key, item, f"{path}.{key}", out)


def _list(types: frozenset[str]) -> str:
    return " or ".join(sorted(types))
