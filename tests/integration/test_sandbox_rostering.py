"""Rostering over HTTP: upserts, validation, references, ownership, lists and their parameters."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from relay.sandbox import seed
from tests.integration.conftest import SandboxHandle

pytestmark = pytest.mark.integration

R = "/rostering/1.0"


@pytest.fixture
def other(sandbox: SandboxHandle) -> Iterator[httpx.Client]:
    with sandbox.api("other-client") as client:
        yield client


def put(
    http: httpx.Client, collection: str, wrapper: str, record: dict[str, Any]
) -> httpx.Response:
    return http.put(f"{R}/{collection}/{record['sourcedId']}", json={wrapper: record})


@pytest.mark.parametrize(
    ("collection", "wrapper", "record"),
    [
        ("orgs", "org", {"sourcedId": "o1", "name": "School", "type": "school"}),
        ("users", "user", seed.student("u1")),
        ("courses", "course", seed.course("c1")),
    ],
)
def test_put_creates_then_replaces_and_get_returns_it(
    http: httpx.Client, collection: str, wrapper: str, record: dict[str, Any]
) -> None:
    created = put(http, collection, wrapper, record)
    assert created.status_code == 201, created.text
    stored = created.json()[wrapper]
    assert stored["sourcedId"] == record["sourcedId"]
    assert stored["status"] == "active" and stored["dateLastModified"].endswith("Z")
    replaced = put(http, collection, wrapper, {**record, "metadata": {"v": 2}})
    assert replaced.status_code == 200
    fetched = http.get(f"{R}/{collection}/{record['sourcedId']}")
    assert fetched.status_code == 200
    assert fetched.json()[wrapper]["metadata"] == {"v": 2}


def test_class_and_enrollment_chain(http: httpx.Client) -> None:
    assert put(http, "users", "user", seed.student("u1")).status_code == 201
    assert put(http, "courses", "course", seed.course("c1")).status_code == 201
    assert put(http, "classes", "class", seed.klass("k1", "c1")).status_code == 201
    enrollment = seed.enrollment("e1", "u1", "k1", "2026-01-01", "2026-12-31")
    response = put(http, "enrollments", "enrollment", enrollment)
    assert response.status_code == 201
    assert response.json()["enrollment"]["class"] == {"sourcedId": "k1"}
    assert http.get(f"{R}/enrollments/e1").json()["enrollment"]["beginDate"] == "2026-01-01"


@pytest.mark.parametrize(
    ("body", "path_id", "paths"),
    [
        ({"sourcedId": "u1", "givenName": "A", "familyName": "B"}, "u1", ["user"]),  # no wrapper
        ({"user": {"givenName": "A", "familyName": "B"}}, "u1", ["user.sourcedId"]),
        ({"user": {**seed.student("u2")}}, "u1", ["user.sourcedId"]),
        ({"user": {"sourcedId": "u1"}}, "u1", ["user.givenName", "user.familyName"]),
        (
            {"user": {**seed.student("u1"), "enabledUser": "yes", "roles": "student"}},
            "u1",
            ["user.enabledUser", "user.roles"],
        ),
        ({"user": seed.student("u1"), "extra": 1}, "u1", ["extra"]),
        ({"course": seed.course("u1")}, "u1", ["user"]),  # wrong wrapper
        ([], "u1", ["user"]),
    ],
)
def test_bad_bodies_get_400_with_issues(
    http: httpx.Client, body: Any, path_id: str, paths: list[str]
) -> None:
    response = http.put(f"{R}/users/{path_id}", json=body)
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "invalid_request"
    assert sorted(i["path"] for i in response.json()["issues"]) == sorted(paths)
    assert http.get(f"{R}/users/{path_id}").status_code == 404


def test_invalid_json_and_unknown_collection(http: httpx.Client) -> None:
    response = http.put(
        f"{R}/users/u1", content=b"{nope", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400 and "not valid JSON" in response.json()["message"]
    assert http.get(f"{R}/teachers").status_code == 404
    assert http.put(f"{R}/teachers/t1", json={}).json()["error"] == "not_found"


NOWHERE = {"sourcedId": "nowhere"}
BAD_REFERENCES = [
    (
        "users",
        "user",
        seed.student("u1") | {"roles": [{"role": "student", "org": NOWHERE}]},
        "user.roles.org.sourcedId",
    ),
    ("courses", "course", seed.course("c1") | {"org": NOWHERE}, "course.org.sourcedId"),
    ("classes", "class", seed.klass("k1", "no-course"), "class.course.sourcedId"),
    (
        "enrollments",
        "enrollment",
        seed.enrollment("e1", "nobody", "no-class"),
        "enrollment.user.sourcedId",
    ),
]


@pytest.mark.parametrize(("collection", "wrapper", "record", "path"), BAD_REFERENCES)
def test_unknown_references_get_400(
    http: httpx.Client, collection: str, wrapper: str, record: dict[str, Any], path: str
) -> None:
    response = put(http, collection, wrapper, record)
    assert response.status_code == 400
    assert path in [i["path"] for i in response.json()["issues"]]
    assert "no " in response.json()["issues"][0]["message"]


def test_ownership(sandbox: SandboxHandle, http: httpx.Client, other: httpx.Client) -> None:
    sandbox.setup_roster("u1", "c1")
    # B cannot see A's course, class or enrollment, by id or in lists
    assert other.get(f"{R}/courses/c1").status_code == 404
    assert other.get(f"{R}/classes/c1-class").status_code == 404
    assert other.get(f"{R}/enrollments/c1-u1").status_code == 404
    assert other.get(f"{R}/courses").json()["total"] == 0
    # users are visible to all by id, but lists stay owner-scoped
    assert other.get(f"{R}/users/u1").status_code == 200
    assert other.get(f"{R}/users").json()["users"] == []
    # B cannot replace A's records, nor hang a class under A's course
    for collection, wrapper, record in [
        ("courses", "course", seed.course("c1")),
        ("users", "user", seed.student("u1")),
    ]:
        response = put(other, collection, wrapper, record)
        assert response.status_code == 403
        assert "belongs to another application" in response.json()["message"]
    response = put(other, "classes", "class", seed.klass("k-b", "c1"))
    assert response.status_code == 403
    assert response.json()["message"] == "course 'c1' belongs to another application"
    # B can enrol A's student in B's own class (students are shared)
    assert put(other, "courses", "course", seed.course("c-b")).status_code == 201
    assert put(other, "classes", "class", seed.klass("k-b", "c-b")).status_code == 201
    assert (
        put(other, "enrollments", "enrollment", seed.enrollment("e-b", "u1", "k-b")).status_code
        == 201
    )
    # ...but not in A's class
    response = put(other, "enrollments", "enrollment", seed.enrollment("e-b2", "u1", "c1-class"))
    assert response.status_code == 403
    # the seeded org is everyone's to see and nobody's to replace
    assert other.get(f"{R}/orgs/partner-sandbox").status_code == 200
    assert [o["sourcedId"] for o in http.get(f"{R}/orgs").json()["orgs"]] == ["partner-sandbox"]
    assert (
        put(http, "orgs", "org", {"sourcedId": "partner-sandbox", "name": "x"}).status_code == 403
    )


def _courses(http: httpx.Client, n: int) -> None:
    for i in range(n):
        record = seed.course(
            f"c{i:02d}", title=f"Course {i}", subjects=("Math",) if i % 2 else ("Reading",)
        )
        assert put(http, "courses", "course", record | {"credits": i}).status_code == 201


def test_list_paging(http: httpx.Client) -> None:
    _courses(http, 12)
    body = http.get(f"{R}/courses").json()
    assert (body["offset"], body["limit"], body["total"]) == (0, 100, 12)
    assert [c["sourcedId"] for c in body["courses"]] == [f"c{i:02d}" for i in range(12)]
    page = http.get(f"{R}/courses", params={"offset": 10, "limit": 5}).json()
    assert [c["sourcedId"] for c in page["courses"]] == ["c10", "c11"]
    assert page["total"] == 12 and page["limit"] == 5
    assert http.get(f"{R}/courses", params={"limit": 1000}).status_code == 200


@pytest.mark.parametrize(
    "params",
    [
        {"limit": 0},
        {"limit": 1001},
        {"limit": "ten"},
        {"offset": -1},
        {"userId": "u1"},
        {"search": "x"},
        {"orderBy": "up"},
        {"sort": "nosuchfield"},
        {"fields": "title,nosuchfield"},
        {"fields": ""},
        {"filter": "title='x' AND"},
        {"filter": "(title='x')"},
        {"filter": "userId='u1'"},
    ],
)
def test_bad_list_parameters_get_400(http: httpx.Client, params: dict[str, Any]) -> None:
    _courses(http, 1)
    response = http.get(f"{R}/courses", params=params)
    assert response.status_code == 400, response.text
    assert response.json()["error"] in ("invalid_request", "invalid_filter")
    assert response.json()["message"]


def test_repeated_parameters_and_params_on_get_by_id(http: httpx.Client) -> None:
    _courses(http, 1)
    assert http.get(f"{R}/courses?limit=1&limit=2").status_code == 400
    assert http.get(f"{R}/courses/c00", params={"limit": 1}).status_code == 400
    assert http.get(f"{R}/courses/c00", params={"fields": "title"}).json() == {
        "course": {"title": "Course 0"}
    }


def test_sort_order_by_and_fields(http: httpx.Client) -> None:
    _courses(http, 12)
    by_credits = http.get(f"{R}/courses", params={"sort": "credits", "orderBy": "desc"}).json()
    assert [c["credits"] for c in by_credits["courses"]] == list(range(11, -1, -1))
    # numbers sort numerically (2 before 10), not as text
    asc = http.get(f"{R}/courses", params={"sort": "credits", "limit": 3}).json()
    assert [c["credits"] for c in asc["courses"]] == [0, 1, 2]
    by_title = http.get(f"{R}/courses", params={"sort": "title", "fields": "sourcedId,title"})
    titles = [c["title"] for c in by_title.json()["courses"]]
    assert titles == sorted(titles)
    assert set(by_title.json()["courses"][0]) == {"sourcedId", "title"}
    nested = http.get(f"{R}/courses", params={"sort": "subjects", "orderBy": "asc"}).json()
    assert [c["subjects"][0] for c in nested["courses"]][:6] == ["Math"] * 6
    reversed_default = http.get(f"{R}/courses", params={"orderBy": "desc", "limit": 2}).json()
    assert [c["sourcedId"] for c in reversed_default["courses"]] == ["c11", "c10"]


def test_filter_sort_and_paging_combine(http: httpx.Client) -> None:
    _courses(http, 12)
    body = http.get(
        f"{R}/courses",
        params={
            "filter": "subjects='Math' AND credits>=3",
            "sort": "credits",
            "orderBy": "desc",
            "offset": 1,
            "limit": 2,
            "fields": "sourcedId",
        },
    ).json()
    assert body["total"] == 5  # 3, 5, 7, 9, 11
    assert body["courses"] == [{"sourcedId": "c09"}, {"sourcedId": "c07"}]
