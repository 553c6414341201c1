"""Mapper: the enrich + map stage, and its refusal to pass an event the checker rejects."""

from __future__ import annotations

from pathlib import Path

import pytest

from relay import wiring
from relay.caliper.validate import TimeBackRules
from relay.config import load_settings
from relay.contract.activity import (
    ActivityRef,
    QuestionAnswered,
    ResourceViewed,
    XpEarned,
)
from relay.courses import CourseContext, CourseResolver
from relay.errors import ConfigError, Rejection
from relay.mapping import Mapper, MappingContext
from tests.shared import WHEN

BASE = "https://api.alpha-1edtech.ai"


def xp(activity: str = "math5/l1") -> XpEarned:
    return XpEarned("e1", WHEN, "stu-1", ActivityRef(activity, "L1"), 3.0)


def test_context_from_settings() -> None:
    settings = load_settings(app_id="my-app", activity_base_url="https://app.example.com/")
    ctx = wiring.mapping_context(settings)
    assert ctx.app_iri == f"{BASE}/applications/1.0/my-app"
    assert ctx.activity_base_url == "https://app.example.com"
    assert ctx.id_namespace == settings.id_namespace


def test_context_needs_the_app_id() -> None:
    with pytest.raises(ConfigError, match="RELAY_APP_ID"):
        wiring.mapping_context(load_settings(app_id=None))


async def test_mapper_from_settings_resolves_maps_and_checks(tmp_path: Path) -> None:
    course_map = tmp_path / "courses.yaml"
    course_map.write_text(
        "courses:\n  - id: math-g5\n    subject: Math\n    activities: ['math5/*']\n"
    )
    settings = load_settings(
        app_id="my-app", activity_base_url="https://app.example.com", course_map=course_map
    )
    mapper = wiring.mapper(settings, wiring.course_resolver(settings))
    (event,) = await mapper.map(xp())
    assert event.body["extensions"] == {
        "subject": "Math",
        "course": {"id": f"{BASE}/rostering/1.0/courses/math-g5"},
    }
    question = QuestionAnswered("e2", WHEN, "stu-1", ActivityRef("math5/q1", "Q"), correct=True)
    assert [e.type for e in await mapper.map(question)] == ["AssessmentItemEvent", "GradeEvent"]


async def test_enrichment_rejections_pass_through() -> None:
    settings = load_settings(
        app_id="my-app", activity_base_url="https://app.example.com", course_map=None
    )
    mapper = wiring.mapper(settings, wiring.course_resolver(settings))
    with pytest.raises(Rejection) as caught:
        await mapper.map(xp())
    assert (caught.value.stage, caught.value.reason) == ("enrich", "course-unresolved")


def test_a_local_activity_id_without_a_base_is_rejected() -> None:
    settings = load_settings(app_id="my-app", activity_base_url=None)
    mapper = wiring.mapper(settings, CourseResolver(settings.subjects))
    with pytest.raises(Rejection) as caught:
        mapper.map_resolved(xp(), CourseContext("c", "Math"))
    assert (caught.value.stage, caught.value.reason) == ("map", "activity-iri-unresolved")
    # an absolute IRI needs no base
    assert mapper.map_resolved(xp("https://x.org/l/1"), CourseContext("c", "Math"))


def test_an_event_that_breaks_a_rule_is_an_invalid_caliper_rejection_with_paths() -> None:
    # RELAY_APP_ID given as a full IRI that is not an APP IRI on the TimeBack host
    settings = load_settings(app_id="https://app.example.com/me", activity_base_url=None)
    mapper = wiring.mapper(settings, CourseResolver(settings.subjects))
    with pytest.raises(Rejection) as caught:
        mapper.map_resolved(xp("https://x.org/l/1"), CourseContext("c", "Math"))
    assert (caught.value.stage, caught.value.reason) == ("map", "invalid-caliper")
    assert caught.value.detail.startswith("GradeEvent urn:uuid:")
    assert "actor.id: must be" in caught.value.detail
    assert "edApp.id: must be" in caught.value.detail


def test_the_checker_runs_with_the_configured_subjects() -> None:
    ctx = MappingContext(BASE, f"{BASE}/applications/1.0/a", None, load_settings().id_namespace)
    mapper = Mapper(ctx, CourseResolver(("Math",)), TimeBackRules(BASE, ("Math",)))
    view = ResourceViewed("e", WHEN, "stu-1", ActivityRef("https://x.org/r", "R"))
    with pytest.raises(Rejection, match=r"extensions\.subject"):
        mapper.map_resolved(view, CourseContext("c", "Science"))
    assert mapper.map_resolved(view, CourseContext("c", "Math"))
