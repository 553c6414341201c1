"""End to end against the TimeBack sandbox: resolve through its rostering API with the real
client, map, send every event, and let the sandbox process them as production would (course
owned, student known, edApp the caller's, XP in the ledger)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from relay import wiring
from relay.config import load_settings
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
from relay.errors import Rejection
from relay.sandbox.config import Delay, SandboxConfig
from relay.sandbox.server import SandboxThread
from relay.sandbox.testing import SandboxControl
from relay.timeback.client import TimeBackClient
from tests.shared import WHEN

STUDENT = "9a1f0c4e-2b3d-4e5f-8a9b-0c1d2e3f4a5b"


@pytest.fixture
def sandbox() -> Iterator[SandboxControl]:
    thread = SandboxThread(SandboxConfig(processing_delay=Delay(3600.0))).start()
    control = SandboxControl(thread.url)
    with control.api() as http:  # sandbox-client (app sandbox-app) owns what it puts
        course = {"sourcedId": "math-g5", "title": "Math 5", "subjects": ["Mathematics"]}
        assert http.put("/rostering/1.0/courses/math-g5", json={"course": course}).is_success
        user = {"sourcedId": STUDENT, "givenName": "Ada", "familyName": "L",
                "metadata": {"isTestUser": True}}  # fmt: skip
        assert http.put(f"/rostering/1.0/users/{STUDENT}", json={"user": user}).is_success
    yield control
    control.close()
    thread.stop()


def _activities() -> list[Activity]:
    lesson = ActivityRef("math5/lesson-1", "Lesson 1")
    quiz = ActivityRef("math5/quiz-1", "Quiz 1")
    common = {"occurred_at": WHEN, "student_id": STUDENT, "course_id": "math-g5"}
    return [
        XpEarned("0f8e7c2a-1234-4567-89ab-000000000001", activity=lesson, xp=12.0, **common),
        AssessmentProgress(
            "0f8e7c2a-1234-4567-89ab-000000000002", assessment=quiz,
            action=AssessmentAction.SUBMITTED, total_questions=3, correct_questions=2, **common,
        ),
        QuestionAnswered(
            "0f8e7c2a-1234-4567-89ab-000000000003", item=ActivityRef("math5/quiz-1/q1", "Q1"),
            assessment=quiz, response="4", correct=True, **common,
        ),
        ResourceViewed("0f8e7c2a-1234-4567-89ab-000000000004", resource=lesson, **common),
        SessionChanged(
            "0f8e7c2a-1234-4567-89ab-000000000005", WHEN, STUDENT, "s-1", SessionAction.LOGGED_IN
        ),
    ]  # fmt: skip


async def test_mapped_events_are_accepted_and_processed(sandbox: SandboxControl) -> None:
    settings = load_settings(
        api_base_url=sandbox.url, allow_insecure_http=True, client_id="sandbox-client",
        client_secret="sandbox-secret", app_id="sandbox-app",
        activity_base_url="https://app.example.com", preflight="course+student", course_map=None,
    )  # fmt: skip
    async with TimeBackClient(wiring.client_config(settings)) as client:
        mapper = wiring.mapper(settings, wiring.course_resolver(settings, client))
        sent = []
        for activity in _activities():
            for event in await mapper.map(activity):
                result = await client.send_event(event.payload, event_type=event.type)
                assert result.status in (200, 202), event.type
                sent.append(event)
        # the rostering subject "Mathematics" became "Math"; preflight asked once per course/user
        assert {e.body.get("extensions", {}).get("subject") for e in sent} == {"Math", None}
        assert (mapper.resolver.courses.misses, mapper.resolver.users.misses) == (1, 1)

        unknown = XpEarned(
            "0f8e7c2a-1234-4567-89ab-000000000009", WHEN, "nobody", ActivityRef("x", "X"), 1.0,
            course_id="math-g5",
        )  # fmt: skip
        with pytest.raises(Rejection, match="student-unknown"):
            await mapper.map(unknown)

    sandbox.process()
    fates = {sandbox.event(e.id)["fate"] for e in sent}
    assert fates == {"processed"}, [sandbox.event(e.id) for e in sent]
    stats = sandbox.stats()
    assert stats["rejected_at_validation"] == 0 and stats["rejected_at_processing"] == 0
    xp = sandbox.event(sent[0].id)["xp_entry"]
    assert xp["value"] == 12.0 and xp["sourceEventId"] == sent[0].id
