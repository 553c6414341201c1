"""CourseResolver: the resolution order, preflight checks and rejections of ``relay.courses``."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from relay.caliper.ids import parse_course_id
from relay.contract.activity import Activity
from relay.courses.cache import TtlCache
from relay.courses.coursemap import CourseMap, SubjectNormalizer
from relay.errors import ConfigError, Rejection
from relay.timeback.errors import RequestRejected

Preflight = Literal["off", "course", "course+student"]


@dataclass(frozen=True, slots=True)
class CourseContext:
    """What enrichment attaches to a record: the course sourcedId and the subject (enum value)."""

    course_id: str | None = None
    subject: str | None = None


class CourseLookup(Protocol):
    """The rostering calls the resolver needs (implemented by the Partner API client)."""

    async def get_course(self, course_id: str) -> dict[str, Any] | None:
        """The course record (bare or wrapped in ``{"course": …}``); None on 404.
        May raise TransientError, or RequestRejected for another 4xx."""
        ...

    async def get_user(self, user_id: str) -> dict[str, Any] | None:
        """The user record; None on 404. May raise TransientError or RequestRejected."""
        ...


Observer = Callable[[str, str], None]  # (source, result), e.g. ("api", "found")


class CourseResolver:
    """Attaches course and subject to an activity (order, rules and rejections: module doc)."""

    def __init__(
        self,
        subjects: Iterable[str],
        course_map: CourseMap | None = None,
        lookup: CourseLookup | None = None,
        preflight: Preflight = "off",
        ttl: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
        observe: Observer | None = None,
    ) -> None:
        self.map = course_map or CourseMap()
        self.subjects = SubjectNormalizer(subjects, self.map.aliases)
        self.lookup = lookup
        self.preflight = preflight
        self.courses = TtlCache(ttl, clock)
        self.users = TtlCache(ttl, clock)
        self._observe = observe
        self._check_map()
        if preflight != "off" and lookup is None:
            raise ConfigError(f"RELAY_PREFLIGHT={preflight} needs the rostering API (no lookup)")

    @property
    def hits(self) -> int:
        return self.courses.hits + self.users.hits

    @property
    def misses(self) -> int:
        return self.courses.misses + self.users.misses

    async def resolve(self, activity: Activity) -> CourseContext:
        """As the record type's ``COURSE`` policy says: required, best effort, or none."""
        if activity.COURSE == "none":
            return CourseContext()
        if activity.COURSE == "best-effort":
            return await self._best_effort(activity)
        course_id = self._course_id(activity)
        if course_id is None:
            raise Rejection(
                "enrich", "course-unresolved",
                f"no course_id in the record and no course map entry for {_ids(activity)}",
            )  # fmt: skip
        subject = self._record_subject(activity) or self._map_subject(course_id)
        if self.preflight != "off" or subject is None:
            course = await self._course(course_id)
            if subject is None:
                subject = self._rostering_subject(course_id, course)
        if self.preflight == "course+student" and await self._user(activity.student_id) is None:
            raise Rejection("enrich", "student-unknown", f"user {activity.student_id}: 404")
        return CourseContext(course_id, subject)

    async def _best_effort(self, activity: Activity) -> CourseContext:
        """A view carries course and subject when they resolve; failing to is not an error.

        A course the rostering API does not know (404) is left out, subject or not.
        """
        subject = self._record_subject(activity)  # a wrong subject is still the producer's error
        try:
            course_id = self._course_id(activity)
        except Rejection:
            course_id = None
        if course_id is None or subject is not None:
            return CourseContext(course_id, subject)
        subject = self._map_subject(course_id)
        if subject is None and self.lookup is not None:
            try:
                subject = self._rostering_subject(course_id, await self._course(course_id))
            except RequestRejected:  # rostering refused the lookup (a 4xx): a view goes without
                pass
            except Rejection as exc:
                if exc.reason == "course-not-owned":
                    course_id = None
        return CourseContext(course_id, subject)

    def _course_id(self, activity: Activity) -> str | None:
        given = getattr(activity, "course_id", None)
        if given:
            try:
                course_id = parse_course_id(given)
            except ValueError as exc:
                raise Rejection("enrich", "course-invalid", f"course_id: {exc}") from None
            self._note("record", "found")
            return course_id
        entry = self.map.course_for(activity.course_refs())
        self._note("map", "found" if entry else "none")
        return entry.id if entry else None

    def _map_subject(self, course_id: str) -> str | None:
        given = self.map.subject_of(course_id)
        # normalize() cannot fail here: _check_map vetted every subject of the file at start
        return self.subjects.normalize(given) if given else None

    def _record_subject(self, activity: Activity) -> str | None:
        given = getattr(activity, "subject", None)
        if not given:
            return None
        subject = self.subjects.normalize(given)
        if subject is None:
            raise Rejection(
                "enrich", "subject-invalid",
                f"subject {given!r} is not one of {list(self.subjects.subjects)}",
            )  # fmt: skip
        return subject

    async def _course(self, course_id: str) -> dict[str, Any]:
        if self.lookup is None:
            raise Rejection(
                "enrich", "subject-unresolved",
                f"course {course_id}: no subject in the record or the course map, "
                "and the rostering lookup is off",
            )  # fmt: skip
        lookup = self.lookup
        course, source = await self.courses.get_with_source(
            course_id, lambda: lookup.get_course(course_id)
        )
        # a shared flight made no request of its own: it counts as answered from the cache
        self._note("api" if source == "api" else "cache", "found" if course else "404")
        if course is None:
            raise Rejection(
                "enrich", "course-not-owned",
                f"course {course_id}: 404 from rostering (unknown, or not this client's)",
            )  # fmt: skip
        inner = course.get("course")
        return inner if isinstance(inner, dict) else course

    def _rostering_subject(self, course_id: str, course: Mapping[str, Any]) -> str:
        raw = course.get("subjects") or []
        texts = [raw] if isinstance(raw, str) else [s for s in raw if isinstance(s, str)]
        for text in texts:
            subject = self.subjects.normalize(text)
            if subject is not None:
                return subject
        raise Rejection(
            "enrich", "subject-unresolved",
            f"course {course_id}: rostering subjects {texts} map onto none of "
            f"{list(self.subjects.subjects)}",
        )  # fmt: skip

    async def _user(self, user_id: str) -> dict[str, Any] | None:
        assert self.lookup is not None  # checked at construction when preflight is on
        lookup = self.lookup
        return await self.users.get(user_id, lambda: lookup.get_user(user_id))

    def _check_map(self) -> None:
        for entry in (*self.map.courses, self.map.default):
            if entry is not None and entry.subject and not self.subjects.normalize(entry.subject):
                raise ConfigError(
                    f"RELAY_COURSE_MAP: course {entry.id}: subject {entry.subject!r} is not one "
                    f"of RELAY_SUBJECTS {list(self.subjects.subjects)}"
                )

    def _note(self, source: str, result: str) -> None:
        if self._observe is not None:
            self._observe(source, result)


def _ids(activity: Activity) -> str:
    return ", ".join(repr(i) for i in activity.course_refs()) or "this record"
