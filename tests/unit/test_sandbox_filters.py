"""The filter grammar as a parser: tokens, precedence, semantics and error messages."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from relay.sandbox.filters import FilterError, parse, tokenize

COURSE: dict[str, Any] = {
    "sourcedId": "c1",
    "title": "Math 5",
    "subjects": ["Math", "Science"],
    "grades": ["05", "06"],
    "credits": 10,
    "org": {"sourcedId": "partner-sandbox"},
    "roles": [{"role": "student", "org": {"sourcedId": "A"}}, {"role": "teacher"}],
    "metadata": {"isTestUser": True, "level": "9"},
}


def matches(text: str, record: dict[str, Any] = COURSE) -> bool:
    return parse(text)(record)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("title='Math 5'", True),
        ("title='math 5'", False),  # = is case-sensitive
        ("title!='Math 5'", False),
        ("title!='Other'", True),
        ("missing!='x'", True),  # != is "not equal": a missing field is not equal
        ("missing='x'", False),
        ("credits>9", True),
        ("credits>=10", True),
        ("credits<10", False),
        ("credits<=10", True),
        ("credits>'9'", True),  # numeric: both sides are numbers, quoted or not
        ("metadata.level<'10'", True),  # "9" < "10" numerically, not as strings
        ("title>'M'", True),  # strings compare as strings
        ("title<'N'", True),
        ("title~'ATH'", True),  # ~ is a case-insensitive substring
        ("title~'xyz'", False),
        ("title@'Art,Math 5'", True),
        ("title@'Art, Math 5 '", True),  # options are trimmed
        ("title@'Art,Music'", False),
        ("credits@'9,10.0'", True),  # @ compares numerically too
        ("subjects='Science'", True),  # arrays match any element
        ("subjects!='Science'", False),  # ...and != means no element equals
        ("subjects~'sci'", True),
        ("grades>'05'", True),
        ("org.sourcedId='partner-sandbox'", True),  # dotted paths
        ("roles.org.sourcedId='A'", True),  # dotted paths through arrays
        ("roles.role@'teacher,aide'", True),
        ("metadata.isTestUser=true", True),  # booleans compare as true/false
        ("metadata.isTestUser='false'", False),
    ],
)
def test_operators(text: str, expected: bool) -> None:
    assert matches(text) is expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("credits=1 OR credits=10 AND title='no'", False),  # AND binds tighter: 1 OR (10 AND no)
        ("credits=10 OR credits=1 AND title='no'", True),  # 10 OR (1 AND no)
        ("credits=10 AND title='no' OR title='Math 5'", True),  # (10 AND no) OR yes
        ("credits=10 AND title='Math 5' AND subjects='Art'", False),
        ("credits=1 OR title='x' OR subjects='Math'", True),
        ("credits=10 and title='Math 5'", True),  # keywords in any case
        ("credits=10 or title='x'", True),
    ],
)
def test_and_binds_tighter_than_or(text: str, expected: bool) -> None:
    assert matches(text) is expected


def test_quoted_values_keep_spaces_keywords_and_quotes() -> None:
    record = {"title": "Tom's AND Jerry's = fun", "code": 'say "hi"'}
    assert matches("title='Tom''s AND Jerry''s = fun'", record)
    assert matches('code="say ""hi"""', record)
    assert matches("title~' AND '", record)
    assert matches("title='(not a group)'", {"title": "(not a group)"})


def test_tokens_carry_positions() -> None:
    tokens = tokenize("a.b>='x y' AND c=1")
    assert [(t.kind, t.text, t.pos) for t in tokens] == [
        ("name", "a.b", 0),
        ("op", ">=", 3),
        ("value", "x y", 5),
        ("and", "AND", 11),
        ("name", "c", 15),
        ("op", "=", 16),
        ("value", "1", 17),
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("(title='x')", "parentheses are not supported"),
        ("title='x' AND (credits=1)", "parentheses are not supported"),
        ("title", "an operator must follow 'title'"),
        ("title=", "a value must follow '='"),
        ("title='x", "unterminated quoted value starting at position 6"),
        ("title='x' AND", "a predicate must follow 'AND'"),
        ("title='x' OR", "a predicate must follow 'OR'"),
        ("title='x' credits=1", "expected AND or OR at position 10"),
        ("title='x' XOR credits=1", "expected AND or OR at position 10"),
        ("=1", "expected a field name at position 0"),
        ("title ! 'x'", "expected an operator"),
        ("title=='x'", "expected a value at position 6"),
        ("title=<3", "expected a value at position 6"),
        ("1abc='x'", "expected a field name"),
    ],
)
def test_malformed_filters_say_where(text: str, message: str) -> None:
    with pytest.raises(FilterError, match=message.replace("(", r"\(")):
        parse(text)


def test_unknown_fields_are_refused_when_fields_are_given() -> None:
    with pytest.raises(FilterError, match="unknown field 'userId' at position 0"):
        parse("userId='x'", fields={"title", "subjects"})
    assert parse("subjects.x='y'", fields={"subjects"})({"subjects": [{"x": "y"}]})


@given(st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=30))
def test_any_value_round_trips_through_quotes(value: str) -> None:
    quoted = "'" + value.replace("'", "''") + "'"
    assert parse(f"v={quoted}")({"v": value}) is True
    assert parse(f"v!={quoted}")({"v": value}) is False


@given(st.text(max_size=40))
def test_the_parser_only_ever_raises_filter_errors(text: str) -> None:
    with contextlib.suppress(FilterError):
        parse(text)({"a": 1})
