"""CourseResolver: resolution order (record -> course map -> rostering), caching, preflight.

The rostering API is a real HTTP server on 127.0.0.1: a tiny aiohttp app in this module stood in
for the TimeBack sandbox before it existed, and stays because it can hold answers back and count
requests (single flight, TTL). ``HttpLookup`` is a minimal CourseLookup over httpx, so lookups
really travel over a socket. test_mapping_sandbox.py does the same against the sandbox with the
real client.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from relay.config import DEFAULT_SUBJECTS
from relay.contract.activity import (
    Activity,
    ActivityRef,
    AssessmentAction,
    AssessmentProgress,
    QuestionAnswered,
    ResourceViewed,
    SessionAction,
    SessionChanged,
    XpEarned,
)
from relay.courses import CourseContext, CourseMap, CourseResolver, TtlCache
from relay.errors import ConfigError, Rejection, TransientError
from relay.pipeline.stages import rejection_of
from relay.timeback.errors import RequestRejected
from tests.shared import WHEN

CRS = "https://api.alpha-1edtech.ai/rostering/1.0/courses"


# --- the stand-in rostering API ---------------------------------------------------------------


@dataclass
class Roster:
    """What the test server knows, and what it was asked."""

    courses: dict[str, Any] = field(default_factory=dict)
    users: dict[str, Any] = field(default_factory=dict)
    requests: Counter[str] = field(default_factory=Counter)
    status: int | None = None  # answer every request with this status instead
    gate: asyncio.Event | None = None  # hold every answer until set
    arrived: asyncio.Event = field(default_factory=asyncio.Event)  # a request came in

    async def handle(self, request: web.Request) -> web.Response:
        self.requests[request.path] += 1
        self.arrived.set()
        if self.gate is not None:
            await self.gate.wait()
        if self.status is not None:
            return web.json_response({"error": "boom"}, status=self.status)
        kind, sourced_id = request.match_info["kind"], request.match_info["id"]
        record = (self.courses if kind == "courses" else self.users).get(sourced_id)
        if record is None:
            return web.json_response({"error": "not found"}, status=404)
        return web.json_response(record)

    def count(self, kind: str, sourced_id: str) -> int:
        return self.requests[f"/rostering/1.0/{kind}/{sourced_id}"]


class HttpLookup:
    """A minimal CourseLookup over httpx (the real one is relay.timeback.client)."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    async def get_course(self, course_id: str) -> dict[str, Any] | None:
        return await self._get(f"/rostering/1.0/courses/{course_id}")

    async def get_user(self, user_id: str) -> dict[str, Any] | None:
        return await self._get(f"/rostering/1.0/users/{user_id}")

    async def _get(self, path: str) -> dict[str, Any] | None:
        response = await self.client.get(path)
        if response.status_code == 404:
            return None
        if response.status_code >= 500:
            raise TransientError(f"GET {path}: HTTP {response.status_code}")
        if response.status_code >= 400:  # as the real client: an API-level refusal
            raise RequestRejected(
                f"GET {path}: HTTP {response.status_code}",
                endpoint="rostering",
                status=response.status_code,
                body=response.text,
            )
        body: dict[str, Any] = response.json()
        return body


@pytest.fixture
async def roster() -> AsyncIterator[Roster]:
    yield Roster(
        courses={
            "math-g5": {"sourcedId": "math-g5", "title": "Math 5", "subjects": ["Mathematics"]},
            "read-g5": {"course": {"sourcedId": "read-g5", "subjects": "reading"}},  # wrapped
            "art-1": {"sourcedId": "art-1", "subjects": ["Art", "Pottery"]},
            "mixed": {"sourcedId": "mixed", "subjects": ["Art", "ELA", "Math"]},
        },
        users={"stu-1": {"sourcedId": "stu-1"}},
    )


@pytest.fixture
async def lookup(roster: Roster) -> AsyncIterator[HttpLookup]:
    app = web.Application()
    app.router.add_get("/rostering/1.0/{kind}/{id}", roster.handle)
    async with (
        TestServer(app) as running,
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{running.port}") as client,
    ):
        yield HttpLookup(client)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def xp(course_id: str | None = None, subject: str | None = None, activity: str = "x/1") -> XpEarned:
    return XpEarned(
        "e1", WHEN, "stu-1", ActivityRef(activity, "A"), 5.0, course_id=course_id, subject=subject
    )


COURSE_MAP = CourseMap.parse(
    {
        "courses": [
            {"id": "math-g5", "activities": ["math5/*"]},
            {"id": "read-g5", "subject": "Reading", "activities": ["read5/*"]},
        ],
        "default": {"id": "general", "subject": "None"},
    }
)


def resolver(lookup: HttpLookup | None = None, **kwargs: Any) -> CourseResolver:
    return CourseResolver(DEFAULT_SUBJECTS, kwargs.pop("course_map", None), lookup, **kwargs)


async def rejected(resolver: CourseResolver, activity: Activity) -> str:
    with pytest.raises(Rejection) as caught:
        await resolver.resolve(activity)
    assert caught.value.stage == "enrich"
    return caught.value.reason


# --- resolution order -------------------------------------------------------------------------


async def test_the_record_wins_and_nothing_is_asked(lookup: HttpLookup, roster: Roster) -> None:
    r = resolver(lookup, course_map=COURSE_MAP)
    assert await r.resolve(xp("art-1", "Math", "read5/1")) == CourseContext("art-1", "Math")
    assert sum(roster.requests.values()) == 0


async def test_the_record_course_may_be_a_crs_iri(lookup: HttpLookup) -> None:
    r = resolver(lookup)
    assert await r.resolve(xp(f"{CRS}/math-g5", "Math")) == CourseContext("math-g5", "Math")
    assert await rejected(r, xp("https://app.example.com/c/1", "Math")) == "course-invalid"


async def test_record_subjects_are_normalised_or_rejected(lookup: HttpLookup) -> None:
    r = resolver(lookup)
    assert (await r.resolve(xp("math-g5", "mathematics"))).subject == "Math"
    assert await rejected(r, xp("math-g5", "Pottery")) == "subject-invalid"


async def test_record_course_then_map_subject(lookup: HttpLookup, roster: Roster) -> None:
    r = resolver(lookup, course_map=COURSE_MAP)
    assert await r.resolve(xp("read-g5")) == CourseContext("read-g5", "Reading")
    assert sum(roster.requests.values()) == 0


async def test_map_pattern_gives_the_course_then_the_map_its_subject(
    lookup: HttpLookup, roster: Roster
) -> None:
    r = resolver(lookup, course_map=COURSE_MAP)
    assert await r.resolve(xp(activity="read5/lesson-2")) == CourseContext("read-g5", "Reading")
    assert await r.resolve(xp(activity="other/1")) == CourseContext("general", "None")
    assert sum(roster.requests.values()) == 0


async def test_rostering_gives_the_subject_last_and_is_cached(
    lookup: HttpLookup, roster: Roster
) -> None:
    r = resolver(lookup, course_map=COURSE_MAP)
    # the map says math-g5 but not its subject; rostering says "Mathematics"
    assert await r.resolve(xp(activity="math5/1")) == CourseContext("math-g5", "Math")
    assert await r.resolve(xp("math-g5")) == CourseContext("math-g5", "Math")
    assert roster.count("courses", "math-g5") == 1
    assert (r.misses, r.hits) == (1, 1)


async def test_wrapped_records_and_string_subjects(lookup: HttpLookup) -> None:
    assert await resolver(lookup).resolve(xp("read-g5")) == CourseContext("read-g5", "Reading")


async def test_the_first_rostering_subject_that_maps_wins(lookup: HttpLookup) -> None:
    assert (await resolver(lookup).resolve(xp("mixed"))).subject == "Language"


async def test_unmappable_rostering_subjects(lookup: HttpLookup) -> None:
    assert await rejected(resolver(lookup), xp("art-1")) == "subject-unresolved"


async def test_unknown_course_in_rostering(lookup: HttpLookup) -> None:
    assert await rejected(resolver(lookup), xp("nope")) == "course-not-owned"


async def test_no_lookup_means_no_subject_from_rostering() -> None:
    r = resolver(None)
    with pytest.raises(Rejection) as caught:
        await r.resolve(xp("math-g5"))
    assert caught.value.reason == "subject-unresolved"
    assert "lookup is off" in caught.value.detail


async def test_no_course_anywhere() -> None:
    assert await rejected(resolver(None), xp(subject="Math")) == "course-unresolved"


@pytest.mark.parametrize(
    "activity",
    [
        xp(),
        AssessmentProgress("e", WHEN, "stu-1", ActivityRef("q", "Q"), AssessmentAction.STARTED),
        QuestionAnswered("e", WHEN, "stu-1", ActivityRef("i", "I")),
    ],
)
async def test_graded_records_need_a_course(activity: Activity) -> None:
    assert await rejected(resolver(None), activity) == "course-unresolved"


async def test_question_maps_by_assessment_before_item() -> None:
    r = resolver(None, course_map=COURSE_MAP)
    question = QuestionAnswered(
        "e", WHEN, "stu-1", ActivityRef("math5/i", "I"), assessment=ActivityRef("read5/q", "Q")
    )
    assert await r.resolve(question) == CourseContext("read-g5", "Reading")


# --- views and sessions -----------------------------------------------------------------------


def view(course_id: str | None = None, subject: str | None = None) -> ResourceViewed:
    return ResourceViewed("e", WHEN, "stu-1", ActivityRef("v/1", "V"), course_id, subject)


async def test_a_refused_lookup_leaves_a_view_without_and_rejects_the_rest(
    roster: Roster, lookup: HttpLookup
) -> None:
    roster.status = 400
    r = resolver(lookup)
    assert await r.resolve(view("math-g5")) == CourseContext("math-g5", None)  # best effort
    with pytest.raises(RequestRejected) as caught:
        await r.resolve(xp("math-g5"))
    rejection = rejection_of(caught.value)  # what the pipeline dead-letters it as
    assert (rejection.stage, rejection.reason, rejection.status) == (
        "enrich",
        "rostering-rejected",
        400,
    )


async def test_views_get_what_resolves(lookup: HttpLookup) -> None:
    r = resolver(lookup)
    assert await r.resolve(view("math-g5")) == CourseContext("math-g5", "Math")
    assert await r.resolve(view()) == CourseContext()
    assert await r.resolve(view("nope")) == CourseContext()  # 404: not ours, left out
    assert await r.resolve(view("art-1")) == CourseContext("art-1", None)  # no subject maps
    assert await r.resolve(view(subject="Science")) == CourseContext(None, "Science")
    assert await resolver(None).resolve(view("math-g5")) == CourseContext("math-g5", None)
    assert await r.resolve(view("https://app.example.com/c/1")) == CourseContext()


async def test_a_wrong_subject_on_a_view_is_still_rejected() -> None:
    assert await rejected(resolver(None), view(subject="Pottery")) == "subject-invalid"


async def test_sessions_never_resolve(lookup: HttpLookup, roster: Roster) -> None:
    r = resolver(lookup, preflight="course+student", course_map=COURSE_MAP)
    session = SessionChanged("e", WHEN, "nobody", "s", SessionAction.LOGGED_IN)
    assert await r.resolve(session) == CourseContext()
    assert sum(roster.requests.values()) == 0


# --- preflight --------------------------------------------------------------------------------


async def test_preflight_course_asks_even_when_the_record_says_everything(
    lookup: HttpLookup, roster: Roster
) -> None:
    r = resolver(lookup, preflight="course")
    assert await r.resolve(xp("art-1", "Math")) == CourseContext("art-1", "Math")
    assert roster.count("courses", "art-1") == 1
    assert await rejected(r, xp("nope", "Math")) == "course-not-owned"
    assert roster.count("users", "stu-1") == 0


async def test_preflight_student(lookup: HttpLookup, roster: Roster) -> None:
    r = resolver(lookup, preflight="course+student")
    assert await r.resolve(xp("math-g5", "Math")) == CourseContext("math-g5", "Math")
    stranger = XpEarned("e", WHEN, "ghost", ActivityRef("x", "X"), 1.0, course_id="math-g5")
    assert await rejected(r, stranger) == "student-unknown"
    assert await rejected(r, stranger) == "student-unknown"
    assert roster.count("users", "ghost") == 1  # 404s are cached too


def test_preflight_needs_a_lookup() -> None:
    with pytest.raises(ConfigError, match="RELAY_PREFLIGHT"):
        resolver(None, preflight="course")


# --- cache: TTL, single flight, errors --------------------------------------------------------


async def test_ttl_expiry_with_an_injected_clock(lookup: HttpLookup, roster: Roster) -> None:
    clock = Clock()
    r = resolver(lookup, ttl=60, clock=clock)
    await r.resolve(xp("math-g5"))
    clock.now += 59.9
    await r.resolve(xp("math-g5"))
    assert roster.count("courses", "math-g5") == 1
    clock.now += 0.1
    roster.courses["math-g5"]["subjects"] = ["Science"]  # changed meanwhile
    assert (await r.resolve(xp("math-g5"))).subject == "Science"
    assert roster.count("courses", "math-g5") == 2
    assert (r.hits, r.misses) == (1, 2)


async def test_concurrent_misses_share_one_request(lookup: HttpLookup, roster: Roster) -> None:
    roster.gate = asyncio.Event()
    heard: list[tuple[str, str]] = []
    r = resolver(lookup, observe=lambda s, o: heard.append((s, o)))
    waiting = [asyncio.create_task(r.resolve(xp("math-g5"))) for _ in range(20)]
    await roster.arrived.wait()  # the one request reached the server and is held there
    roster.gate.set()
    results = await asyncio.gather(*waiting)
    assert set(results) == {CourseContext("math-g5", "Math")}
    assert roster.count("courses", "math-g5") == 1
    assert (r.courses.misses, r.courses.shared) == (1, 19)
    assert Counter(h for h in heard if h[0] != "record") == {
        ("api", "found"): 1,
        ("cache", "found"): 19,
    }


async def test_a_cancelled_waiter_does_not_cancel_the_shared_request(
    lookup: HttpLookup, roster: Roster
) -> None:
    roster.gate = asyncio.Event()
    r = resolver(lookup)
    first = asyncio.create_task(r.resolve(xp("math-g5")))
    second = asyncio.create_task(r.resolve(xp("math-g5")))
    await roster.arrived.wait()
    first.cancel()
    roster.gate.set()
    assert await second == CourseContext("math-g5", "Math")
    assert first.cancelled()
    assert roster.count("courses", "math-g5") == 1


async def test_transient_errors_reach_every_waiter_and_are_not_cached(
    lookup: HttpLookup, roster: Roster
) -> None:
    roster.status = 503
    r = resolver(lookup)
    results = await asyncio.gather(
        *(r.resolve(xp("math-g5")) for _ in range(3)), return_exceptions=True
    )
    assert all(isinstance(e, TransientError) for e in results)
    roster.status = None
    assert await r.resolve(xp("math-g5")) == CourseContext("math-g5", "Math")
    assert roster.count("courses", "math-g5") == 2


async def test_the_cache_keeps_at_most_max_entries() -> None:
    calls: list[str] = []

    async def fetch(key: str) -> str:
        calls.append(key)
        return key.upper()

    cache = TtlCache(ttl=60, clock=Clock(), max_entries=2)
    for key in ("a", "b", "c", "a"):
        assert await cache.get(key, lambda k=key: fetch(k)) == key.upper()
    assert calls == ["a", "b", "c", "a"]  # "a" was the oldest, evicted by "c"


async def test_observer_hears_each_source(lookup: HttpLookup) -> None:
    heard: list[tuple[str, str]] = []
    r = CourseResolver(
        DEFAULT_SUBJECTS, COURSE_MAP, lookup, observe=lambda s, o: heard.append((s, o))
    )
    await r.resolve(xp("math-g5"))
    await r.resolve(xp(activity="math5/1"))
    assert heard == [("record", "found"), ("api", "found"), ("map", "found"), ("cache", "found")]
