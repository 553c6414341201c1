"""The course map file (format in ``relay.courses``) and subject normalisation onto the enum."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import yaml

from relay.caliper.ids import parse_course_id
from relay.errors import ConfigError

# --- subjects ---------------------------------------------------------------------------------

BUILTIN_ALIASES: Final[dict[str, str]] = {
    "mathematics": "Math", "maths": "Math",
    "math facts": "FastMath", "fast math": "FastMath",
    "ela": "Language", "english": "Language", "english language arts": "Language",
    "language arts": "Language",
    "vocab": "Vocabulary",
    "socialstudies": "Social Studies", "social science": "Social Studies",
    "social sciences": "Social Studies", "history": "Social Studies", "civics": "Social Studies",
    "geography": "Social Studies",
    "composition": "Writing",
    "biology": "Science", "chemistry": "Science", "physics": "Science",
}  # fmt: skip
_SEPARATORS: Final = re.compile(r"[\s_\-]+")


def _key(text: str) -> str:
    return _SEPARATORS.sub(" ", text).strip().casefold()


class SubjectNormalizer:
    """Free-text subjects onto the configured enum (rules in the module docstring)."""

    def __init__(self, subjects: Iterable[str], aliases: Mapping[str, str] = {}) -> None:
        self.subjects = tuple(subjects)
        table = {_key(k): v for k, v in BUILTIN_ALIASES.items()}
        table.update({_key(k): v for k, v in aliases.items()})
        table.update({_key(s): s for s in self.subjects})
        self._table = {k: v for k, v in table.items() if v in self.subjects}

    def normalize(self, text: str) -> str | None:
        """The enum value ``text`` stands for, or None."""
        if text in self.subjects:
            return text
        return self._table.get(_key(text))


# --- the course map file ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CourseEntry:
    id: str
    subject: str | None = None
    patterns: tuple[str, ...] = ()
    _regex: re.Pattern[str] | None = field(default=None, compare=False, repr=False)

    def matches(self, activity_id: str) -> bool:
        return self._regex is not None and self._regex.match(activity_id) is not None


@dataclass(frozen=True)
class CourseMap:
    """Activity-id patterns to courses, a default course, subject aliases (format: module doc)."""

    courses: tuple[CourseEntry, ...] = ()
    default: CourseEntry | None = None
    aliases: Mapping[str, str] = field(default_factory=dict)
    _memo: dict[str, CourseEntry | None] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def load(cls, path: Path | str) -> CourseMap:
        """Read and check a course map file; a ConfigError names RELAY_COURSE_MAP and the key."""
        try:
            data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"RELAY_COURSE_MAP: cannot read {path}: {exc}") from None
        return cls.parse(data, source=str(path))

    @classmethod
    def parse(cls, data: Any, source: str = "course map") -> CourseMap:
        def fail(where: str, what: str) -> ConfigError:
            return ConfigError(f"RELAY_COURSE_MAP: {source}: {where}: {what}")

        if data is None:
            return cls()
        if not isinstance(data, Mapping):
            raise fail("top level", "must be a mapping with courses, default, subject_aliases")
        unknown = set(data) - {"courses", "default", "subject_aliases"}
        if unknown:
            raise fail("top level", f"unknown keys {sorted(unknown)}")
        raw_courses = data.get("courses") or []
        if not isinstance(raw_courses, list):
            raise fail("courses", "must be a list")
        courses = tuple(_entry(c, f"courses[{i}]", fail) for i, c in enumerate(raw_courses))
        raw_default = data.get("default")
        if isinstance(raw_default, str):
            raw_default = {"id": raw_default}
        default = None if raw_default is None else _entry(raw_default, "default", fail)
        aliases = data.get("subject_aliases") or {}
        if not isinstance(aliases, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in aliases.items()
        ):
            raise fail("subject_aliases", "must map strings to subjects")
        return cls(courses, default, dict(aliases))

    def course_for(self, activity_ids: Iterable[str]) -> CourseEntry | None:
        """The first course whose patterns match one of the ids (in order), else the default."""
        for activity_id in activity_ids:
            entry = self._match(activity_id)
            if entry is not None:
                return entry
        return self.default

    def subject_of(self, course_id: str) -> str | None:
        """The subject the file gives for a course id, if any."""
        for entry in (*self.courses, self.default):
            if entry is not None and entry.id == course_id and entry.subject:
                return entry.subject
        return None

    def _match(self, activity_id: str) -> CourseEntry | None:
        try:
            return self._memo[activity_id]
        except KeyError:
            pass
        found = next((c for c in self.courses if c.matches(activity_id)), None)
        if len(self._memo) >= 10_000:  # bounded: activity ids are many, the hot set is small
            self._memo.clear()
        self._memo[activity_id] = found
        return found


def _entry(raw: Any, where: str, fail: Callable[[str, str], ConfigError]) -> CourseEntry:
    if not isinstance(raw, Mapping) or not isinstance(raw.get("id"), str):
        raise fail(where, "needs an id (a course sourcedId or CRS IRI)")
    unknown = set(raw) - {"id", "subject", "activities"}
    if unknown:
        raise fail(where, f"unknown keys {sorted(unknown)}")
    try:
        course_id = parse_course_id(raw["id"])
    except ValueError as exc:
        raise fail(f"{where}.id", str(exc)) from None
    subject = raw.get("subject")
    if subject is not None and not isinstance(subject, str):
        raise fail(f"{where}.subject", "must be a string")
    patterns = raw.get("activities") or []
    if not isinstance(patterns, list) or not all(isinstance(p, str) for p in patterns):
        raise fail(f"{where}.activities", "must be a list of glob patterns")
    regex = re.compile("|".join(fnmatch.translate(p) for p in patterns)) if patterns else None
    return CourseEntry(course_id, subject, tuple(patterns), regex)
