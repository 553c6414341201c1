"""``GET /xp/1.0/users/{id}/entries`` over HTTP: paging, date and application filters, errors."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from relay.sandbox.seed import xp_event
from tests.integration.conftest import SandboxHandle

pytestmark = pytest.mark.integration

MAR1, MAR2 = "2026-03-01T12:00:00.000Z", "2026-03-02T12:00:00.000Z"
TIMES = [f"2026-03-{day:02d}T{hour:02d}:00:00.000Z" for day in (1, 2, 3) for hour in (0, 12)]


@pytest.fixture
def http(sandbox: SandboxHandle) -> Iterator[httpx.Client]:
    """Six entries of sandbox-app (values 1..6 on 1-3 March) and one of other-app."""
    sandbox.setup_roster()
    with sandbox.api() as client:
        for i, when in enumerate(TIMES):
            event = xp_event(
                app_id="sandbox-app",
                student_id="student-1",
                course_id="course-1",
                xp=float(i + 1),
                event_time=when,
            )
            client.post("/events/1.0", json=event).raise_for_status()
        with sandbox.api("other-client") as other:
            other.put(
                "/rostering/1.0/courses/course-b",
                json={"course": {"sourcedId": "course-b", "title": "B"}},
            ).raise_for_status()
            event = xp_event(
                app_id="other-app", student_id="student-1", course_id="course-b", xp=100.0
            )
            other.post("/events/1.0", json=event).raise_for_status()
        sandbox.process()
        yield client


def values(http: httpx.Client, **params: Any) -> list[float]:
    response = http.get("/xp/1.0/users/student-1/entries", params=params)
    assert response.status_code == 200, response.text
    return [e["value"] for e in response.json()["entries"]]


def test_entries_of_every_app_oldest_first(http: httpx.Client) -> None:
    body = http.get("/xp/1.0/users/student-1/entries").json()
    assert (body["offset"], body["limit"], body["total"]) == (0, 50, 7)
    assert [e["value"] for e in body["entries"]] == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 100.0]
    assert values(http, applicationId="other-app") == [100.0]
    assert values(http, applicationId="sandbox-app") == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    assert values(http, applicationId="nobody") == []


def test_paging(http: httpx.Client) -> None:
    page = http.get("/xp/1.0/users/student-1/entries", params={"offset": 2, "limit": 3}).json()
    assert [e["value"] for e in page["entries"]] == [3.0, 4.0, 5.0]
    assert (page["offset"], page["limit"], page["total"]) == (2, 3, 7)
    assert values(http, offset=7) == []
    assert values(http, limit=100, applicationId="sandbox-app", offset=5) == [6.0]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"startDate": "2026-03-02", "applicationId": "sandbox-app"}, [3.0, 4.0, 5.0, 6.0]),
        ({"after": "2026-03-02", "applicationId": "sandbox-app"}, [5.0, 6.0]),
        ({"endDate": "2026-03-02"}, [1.0, 2.0, 3.0, 4.0]),
        ({"before": "2026-03-02"}, [1.0, 2.0]),
        ({"startDate": MAR1, "endDate": MAR2}, [2.0, 3.0, 4.0]),
        ({"after": MAR1, "before": MAR2}, [3.0]),
        ({"startDate": "2026-03-02", "before": "2026-03-03", "limit": 1, "offset": 1}, [4.0]),
    ],
)  # fmt: skip
def test_date_filters(http: httpx.Client, params: dict[str, Any], expected: list[float]) -> None:
    assert values(http, **params) == expected


@pytest.mark.parametrize(
    "params",
    [
        {"limit": 101},
        {"limit": 0},
        {"limit": "x"},
        {"offset": -1},
        {"startDate": "yesterday"},
        {"before": "2026-13-01"},
        {"userId": "student-1"},
        {"page": 2},
    ],
)
def test_bad_parameters_get_400(http: httpx.Client, params: dict[str, Any]) -> None:
    response = http.get("/xp/1.0/users/student-1/entries", params=params)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


def test_unknown_user_gets_404_and_a_user_without_xp_an_empty_page(
    sandbox: SandboxHandle, http: httpx.Client
) -> None:
    response = http.get("/xp/1.0/users/nobody/entries")
    assert response.status_code == 404 and response.json()["error"] == "not_found"
    sandbox.setup_roster("student-2", "course-2")
    assert http.get("/xp/1.0/users/student-2/entries").json() == {
        "entries": [],
        "offset": 0,
        "limit": 50,
        "total": 0,
    }
