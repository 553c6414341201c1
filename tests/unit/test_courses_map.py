"""The course map file and subject normalisation (relay.courses.coursemap)."""

from __future__ import annotations

from pathlib import Path

import pytest

from relay.config import DEFAULT_SUBJECTS
from relay.courses import CourseMap, CourseResolver, SubjectNormalizer
from relay.errors import ConfigError

EXAMPLE = """
courses:
  - id: math-g5
    subject: Math
    activities: ["math5/*", "https://app.example.com/math5/*"]
  - id: https://api.alpha-1edtech.ai/rostering/1.0/courses/read-g5
    activities: ["read5/*"]
  - id: math-g5-quiz          # never wins: the first matching course does
    activities: ["math5/quiz-*"]
default:
  id: general
  subject: None
subject_aliases:
  Maths 5: Math
  Literacy: Reading
"""


def course_of(course_map: CourseMap, activity_ids: list[str]) -> str | None:
    entry = course_map.course_for(activity_ids)
    return entry.id if entry else None


@pytest.fixture
def example(tmp_path: Path) -> CourseMap:
    path = tmp_path / "courses.yaml"
    path.write_text(EXAMPLE)
    return CourseMap.load(path)


def test_patterns_pick_the_first_matching_course(example: CourseMap) -> None:
    assert course_of(example, ["math5/lesson-1"]) == "math-g5"
    assert course_of(example, ["math5/quiz-3"]) == "math-g5"
    assert course_of(example, ["https://app.example.com/math5/x"]) == "math-g5"
    # a CRS IRI in the file is read as its sourcedId
    assert course_of(example, ["read5/a"]) == "read-g5"


def test_ids_are_tried_in_order_then_the_default(example: CourseMap) -> None:
    assert course_of(example, ["other/1", "read5/b"]) == "read-g5"
    assert course_of(example, ["other/1"]) == "general"


def test_globs_are_case_sensitive_and_anchored(example: CourseMap) -> None:
    assert course_of(example, ["MATH5/lesson"]) == "general"
    assert course_of(example, ["x/math5/lesson"]) == "general"


def test_subject_of_a_course(example: CourseMap) -> None:
    assert example.subject_of("math-g5") == "Math"
    assert example.subject_of("general") == "None"
    assert example.subject_of("read-g5") is None


def test_no_default_means_no_course() -> None:
    course_map = CourseMap.parse({"courses": [{"id": "c", "activities": ["a*"]}]})
    assert course_of(course_map, ["b"]) is None
    assert course_of(CourseMap.parse(None), ["b"]) is None


def test_default_may_be_just_an_id() -> None:
    course_map = CourseMap.parse({"default": "general"})
    assert course_of(course_map, ["anything"]) == "general"


@pytest.mark.parametrize(
    ("data", "where"),
    [
        ([1, 2], "top level"),
        ({"course": []}, "unknown keys"),
        ({"courses": {"id": "c"}}, "courses"),
        ({"courses": [{"subject": "Math"}]}, "courses[0]"),
        ({"courses": [{"id": "c", "pattern": "x"}]}, "courses[0]"),
        ({"courses": [{"id": "c", "activities": "x*"}]}, "courses[0].activities"),
        ({"courses": [{"id": "c", "subject": 5}]}, "courses[0].subject"),
        ({"courses": [{"id": "https://app.example.com/courses/7"}]}, "courses[0].id"),
        ({"default": {"subject": "Math"}}, "default"),
        ({"subject_aliases": ["Math"]}, "subject_aliases"),
    ],
)
def test_bad_files_name_the_setting_and_the_key(data: object, where: str) -> None:
    with pytest.raises(ConfigError) as caught:
        CourseMap.parse(data, source="courses.yaml")
    assert "RELAY_COURSE_MAP" in str(caught.value)
    assert where in str(caught.value)


def test_unreadable_or_invalid_yaml_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="RELAY_COURSE_MAP"):
        CourseMap.load(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("courses: [\n")
    with pytest.raises(ConfigError, match="RELAY_COURSE_MAP"):
        CourseMap.load(bad)


def test_a_subject_outside_the_enum_fails_at_start(tmp_path: Path) -> None:
    course_map = CourseMap.parse({"courses": [{"id": "c", "subject": "Art"}]})
    with pytest.raises(ConfigError, match="RELAY_SUBJECTS"):
        CourseResolver(DEFAULT_SUBJECTS, course_map)
    CourseResolver((*DEFAULT_SUBJECTS, "Art"), course_map)  # fine once configured


# --- subjects ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Math", "Math"),
        ("math", "Math"),
        ("  MATH ", "Math"),
        ("Mathematics", "Math"),
        ("maths", "Math"),
        ("Math Facts", "FastMath"),
        ("fastmath", "FastMath"),
        ("ELA", "Language"),
        ("English Language Arts", "Language"),
        ("social_studies", "Social Studies"),
        ("Social-Studies", "Social Studies"),
        ("History", "Social Studies"),
        ("vocab", "Vocabulary"),
        ("Biology", "Science"),
        ("none", "None"),
        ("Art", None),
        ("Other", None),  # not in the default enum
        ("", None),
    ],
)
def test_subject_normalisation(text: str, expected: str | None) -> None:
    assert SubjectNormalizer(DEFAULT_SUBJECTS).normalize(text) == expected


def test_file_aliases_extend_and_override_the_builtins() -> None:
    subjects = SubjectNormalizer(DEFAULT_SUBJECTS, {"Maths 5": "Math", "History": "Reading"})
    assert subjects.normalize("maths  5") == "Math"
    assert subjects.normalize("history") == "Reading"


def test_aliases_only_lead_to_configured_subjects() -> None:
    subjects = SubjectNormalizer(("Math", "Other"), {"Art": "Other"})
    assert subjects.normalize("art") == "Other"
    assert subjects.normalize("ELA") is None  # Language is not configured
