"""Shapes of the rostering records (OneRoster 1.2 subsets, docs/partner-api.md#rostering).

Only what the relay and its users rely on is checked; other keys are kept as sent (OneRoster is
extensible and production accepts more fields than the sandbox knows). References to other records
(``course.sourcedId`` ...) are checked against the roster in ``rostering.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Final

Check = Callable[[Any], str | None]  # a message when the value is wrong


def _string(value: Any) -> str | None:
    return None if isinstance(value, str) and value.strip() else "must be a non-empty string"


def _strings(value: Any) -> str | None:
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return None
    return "must be a list of strings"


def _object(value: Any) -> str | None:
    return None if isinstance(value, dict) else "must be an object"


def _boolean(value: Any) -> str | None:
    ok = isinstance(value, bool) or value in ("true", "false")
    return None if ok else "must be true or false"


def _status(value: Any) -> str | None:
    ok = value in ("active", "inactive", "tobedeleted")
    return None if ok else "must be 'active', 'inactive' or 'tobedeleted'"


def _ref(value: Any) -> str | None:
    if isinstance(value, dict) and isinstance(value.get("sourcedId"), str) and value["sourcedId"]:
        return None
    return "must be an object with a sourcedId"


def _refs(value: Any) -> str | None:
    if isinstance(value, list) and all(_ref(v) is None for v in value):
        return None
    return "must be a list of objects with a sourcedId"


def _date(value: Any) -> str | None:
    return None if parse_date(value) is not None else "must be a date (YYYY-MM-DD) or a datetime"


def _one_of(*options: str) -> Check:
    def check(value: Any) -> str | None:
        return None if value in options else f"must be one of {list(options)}"

    return check


def _roles(value: Any) -> str | None:
    if not isinstance(value, list):
        return "must be a list of {role, roleType, org: {sourcedId}}"
    for item in value:
        if not isinstance(item, dict) or _string(item.get("role")) or _ref(item.get("org")):
            return "each role needs a role and an org with a sourcedId"
    return None


def parse_date(value: Any) -> datetime | date | None:
    """A OneRoster date (``2026-01-15``) or datetime (``2026-01-15T00:00:00.000Z``), or None."""
    if not isinstance(value, str):
        return None
    try:
        if len(value) == 10:
            return date.fromisoformat(value)
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


@dataclass(frozen=True)
class Schema:
    collection: str  # users
    wrapper: str  # user
    fields: Mapping[str, Check]
    required: tuple[str, ...]

    def issues(self, record: Mapping[str, Any]) -> list[dict[str, str]]:
        out = [
            {"path": f"{self.wrapper}.{name}", "message": "required"}
            for name in self.required
            if record.get(name) is None
        ]
        for name, check in self.fields.items():
            value = record.get(name)
            message = None if value is None else check(value)
            if message:
                out.append({"path": f"{self.wrapper}.{name}", "message": message})
        return out


_COMMON: Final[dict[str, Check]] = {
    "sourcedId": _string,
    "status": _status,
    "dateLastModified": _string,
    "metadata": _object,
}
ROLES: Final = ("student", "teacher", "administrator", "aide", "guardian", "parent", "proctor")

SCHEMAS: Final[dict[str, Schema]] = {
    s.collection: s
    for s in (
        Schema(
            "orgs",
            "org",
            {**_COMMON, "name": _string, "type": _string, "identifier": _string, "parent": _ref},
            ("sourcedId", "name"),
        ),
        Schema(
            "users",
            "user",
            {
                **_COMMON,
                "enabledUser": _boolean,
                "givenName": _string,
                "familyName": _string,
                "middleName": _string,
                "email": _string,
                "username": _string,
                "identifier": _string,
                "roles": _roles,
                "grades": _strings,
                "primaryOrg": _ref,
                "agents": _refs,
            },
            ("sourcedId", "givenName", "familyName"),
        ),
        Schema(
            "courses",
            "course",
            {
                **_COMMON,
                "title": _string,
                "courseCode": _string,
                "grades": _strings,
                "subjects": _strings,
                "subjectCodes": _strings,
                "org": _ref,
                "schoolYear": _ref,
            },
            ("sourcedId", "title"),
        ),
        Schema(
            "classes",
            "class",
            {
                **_COMMON,
                "title": _string,
                "classCode": _string,
                "classType": _one_of("homeroom", "scheduled"),
                "location": _string,
                "grades": _strings,
                "subjects": _strings,
                "subjectCodes": _strings,
                "course": _ref,
                "org": _ref,
                "terms": _refs,
            },
            ("sourcedId", "title", "course"),
        ),
        Schema(
            "enrollments",
            "enrollment",
            {
                **_COMMON,
                "role": _one_of(*ROLES),
                "primary": _boolean,
                "beginDate": _date,
                "endDate": _date,
                "user": _ref,
                "class": _ref,
            },
            ("sourcedId", "role", "user", "class"),
        ),
    )
}
