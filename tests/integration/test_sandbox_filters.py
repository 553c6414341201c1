"""The list filter grammar over HTTP: every operator, AND/OR, quotes, numbers, arrays, paths."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from relay.sandbox import seed
from tests.integration.conftest import SandboxHandle

pytestmark = pytest.mark.integration

COURSES = [
    # id, title, subjects, grades, credits, level
    ("math5", "Math 5", ["Math"], ["05"], 10, "9"),
    ("math6", "Math 6", ["Math", "FastMath"], ["06"], 2, "10"),
    ("read5", "Reading 5", ["Reading"], ["05"], 7, "8"),
    ("sci5", "Science: It's Alive", ["Science"], ["05", "06"], 3.5, "11"),
    ("misc", "O'Brien AND Co = misc", [], [], 0, "x"),
]


@pytest.fixture
def http(sandbox: SandboxHandle) -> Iterator[httpx.Client]:
    for sid, title, subjects, grades, credits, level in COURSES:
        record = seed.course(sid, title=title, subjects=tuple(subjects))
        record |= {"grades": grades, "credits": credits, "metadata": {"level": level}}
        sandbox.put("courses", record).raise_for_status()
    for i, (role, org) in enumerate(
        [("student", "partner-sandbox"), ("teacher", "partner-sandbox")]
    ):
        user = seed.student(f"u{i}", given=["Ada", "Bob"][i])
        user["roles"] = [{"role": role, "roleType": "primary", "org": {"sourcedId": org}}]
        sandbox.put("users", user).raise_for_status()
    with sandbox.api() as client:
        yield client


def ids(http: httpx.Client, text: str, collection: str = "courses") -> list[str]:
    response = http.get(f"/rostering/1.0/{collection}", params={"filter": text})
    assert response.status_code == 200, response.text
    return sorted(r["sourcedId"] for r in response.json()[collection])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # = and != (arrays: any element / no element)
        ("subjects='Math'", ["math5", "math6"]),
        ("subjects!='Math'", ["misc", "read5", "sci5"]),
        ("title='Math 5'", ["math5"]),
        ("title='math 5'", []),
        # numeric comparisons when both sides are numbers
        ("credits>3", ["math5", "read5", "sci5"]),
        ("credits>=3.5", ["math5", "read5", "sci5"]),
        ("credits<3", ["math6", "misc"]),
        ("credits<=2", ["math6", "misc"]),
        ("credits='10.0'", ["math5"]),
        ("metadata.level>'9'", ["math6", "misc", "sci5"]),  # 10, 11 as numbers; 'x' > '9' as text
        # string comparisons otherwise
        ("title>'R'", ["read5", "sci5"]),
        ("title<'N'", ["math5", "math6"]),
        ("metadata.level>'w'", ["misc"]),
        # ~ case-insensitive substring, on strings and arrays
        ("title~'MATH'", ["math5", "math6"]),
        ("subjects~'math'", ["math5", "math6"]),
        ("title~'it''s'", ["sci5"]),
        # @ in a list
        ("subjects@'Reading,Science'", ["read5", "sci5"]),
        ("credits@'2,7'", ["math6", "read5"]),
        ("grades@'06'", ["math6", "sci5"]),
        # dotted paths
        ("org.sourcedId='partner-sandbox'", ["math5", "math6", "misc", "read5", "sci5"]),
        ("org.sourcedId!='partner-sandbox'", []),
        # quoted values with keywords, operators and quotes inside
        ("title='O''Brien AND Co = misc'", ["misc"]),
        ('title="Science: It\'s Alive"', ["sci5"]),
        # bare values
        ("credits=7", ["read5"]),
        ("sourcedId=math5", ["math5"]),
    ],
)
def test_operators(http: httpx.Client, text: str, expected: list[str]) -> None:
    assert ids(http, text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("subjects='Math' AND grades='06'", ["math6"]),
        ("subjects='Math' OR subjects='Reading'", ["math5", "math6", "read5"]),
        # AND binds tighter than OR: Reading OR (Math AND credits>5)
        ("subjects='Reading' OR subjects='Math' AND credits>5", ["math5", "read5"]),
        # (Math AND credits>5) OR Reading: same set, other order
        ("subjects='Math' AND credits>5 OR subjects='Reading'", ["math5", "read5"]),
        # left to right would give (Reading OR Math) AND credits>5 = math5, read5 as well; so:
        ("subjects='Science' OR subjects='Math' AND credits<3", ["math6", "sci5"]),
        ("credits>1 AND credits<8 AND grades='05'", ["read5", "sci5"]),
        ("title~'5' AND subjects!='Math' OR credits=0", ["misc", "read5"]),
        ("subjects='Math' and grades='05' or credits=0", ["math5", "misc"]),
    ],
)
def test_and_or(http: httpx.Client, text: str, expected: list[str]) -> None:
    assert ids(http, text) == expected


def test_arrays_of_objects_and_booleans(http: httpx.Client) -> None:
    assert ids(http, "roles.role='teacher'", "users") == ["u1"]
    assert ids(http, "roles.org.sourcedId='partner-sandbox'", "users") == ["u0", "u1"]
    assert ids(http, "metadata.isTestUser=true", "users") == ["u0", "u1"]
    assert ids(http, "givenName~'a' AND roles.role='student'", "users") == ["u0"]


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("subjects='Math", "unterminated quoted value"),
        ("subjects", "an operator must follow"),
        ("subjects=", "a value must follow"),
        ("subjects='Math' AND", "a predicate must follow 'AND'"),
        ("subjects='Math' subjects='Art'", "expected AND or OR"),
        ("(subjects='Math')", "parentheses are not supported"),
        ("subjects='Math' OR (credits>1)", "parentheses are not supported"),
        ("subjects=='Math'", "expected a value"),
        ("subjects <> 'Math'", "expected a value"),
        ("nosuch='x'", "unknown field 'nosuch'"),
        ("userId='u1'", "unknown field 'userId'"),
        ("   ", "empty"),
    ],
)
def test_malformed_filters_get_400(http: httpx.Client, text: str, fragment: str) -> None:
    response = http.get("/rostering/1.0/courses", params={"filter": text})
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "invalid_filter"
    assert fragment in body["message"]
    assert body["filter"] == text
