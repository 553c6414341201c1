"""relay.caliper.validate.formats: each fast path accepts exactly what its regex in ``terms`` does.

The fast paths only accept (anything else goes to the regex), so each test puts every character
of interest at every kind of position in a valid value and compares the verdict with the regex.
Characters: all of Latin-1 and the next few blocks, every Unicode white space and decimal digit
(``\\s`` and ``\\d`` are Unicode in the regexes), and the ends of the code space.
"""

from __future__ import annotations

import sys
from datetime import datetime

import pytest

from relay.caliper.validate import terms as T
from relay.caliper.validate.formats import (
    datetime_fields,
    is_entity_iri,
    is_event_id,
    is_plain_datetime,
)

CHARS = sorted(
    {
        *map(chr, range(0x3000)),
        *(chr(c) for c in range(sys.maxunicode + 1) if chr(c).isspace() or chr(c).isdecimal()),
        "\ud800", "\ufeff", "\uffff", chr(0x10000), chr(sys.maxunicode),
    }
)  # fmt: skip


def _iri_regex(value: str) -> bool:
    return T.ENTITY_IRI.match(value) is not None


@pytest.mark.parametrize(
    "template",
    [
        "https://x.org/a{}b",  # inside the path
        "https://x.org/{}",  # last
        "https:{}",  # the whole rest
        "{}ttps://x.org/",  # the scheme's first character
        "h{}tps://x.org/",  # inside the scheme
        "{}:x",  # a one-character scheme
        "_{}:x",
        "urn{}",  # no colon unless it is one
    ],
)
def test_entity_iris_agree_with_the_regex(template: str) -> None:
    for c in CHARS:
        value = template.format(c)
        assert is_entity_iri(value) == _iri_regex(value), repr(value)


def test_entity_iri_edge_cases_agree_with_the_regex() -> None:
    for value in ["", ":", "_:", "_:b0", "urn:", "a:", "a:b", "1a:b", "a1+.-:b", "a_b:c",
                  "https://x.org/a b", "HTTPS://X", "x:y:z", "::", "_::"]:  # fmt: skip
        assert is_entity_iri(value) == _iri_regex(value), repr(value)


EVENT_ID = "urn:uuid:6f1d2c3a-8b4e-4f60-9a7b-c8d9e0f1a2b3"
DATETIME = "2026-01-15T14:30:00.123Z"


def test_event_ids_agree_with_the_regex_at_every_position() -> None:
    for i in range(len(EVENT_ID) + 1):
        for c in CHARS:
            for value in (EVENT_ID[:i] + c + EVENT_ID[i + 1 :], EVENT_ID[:i] + c + EVENT_ID[i:]):
                assert is_event_id(value) == (T.EVENT_ID.match(value) is not None), repr(value)


def test_datetimes_agree_with_the_regex_at_every_position() -> None:
    for i in range(len(DATETIME) + 1):
        for c in CHARS:
            for value in (DATETIME[:i] + c + DATETIME[i + 1 :], DATETIME[:i] + c + DATETIME[i:]):
                m = T.DATETIME.match(value)
                assert datetime_fields(value) == (None if m is None else m.groups()), repr(value)
                if is_plain_datetime(value):  # says yes only to a real date-time of the regex
                    assert m is not None, repr(value)
                    datetime(*(int(g) for g in m.groups()))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "value",
    ["2026-02-28T23:59:59.999Z", "2026-12-01T00:00:00.000Z", "0001-01-01T00:00:00.000Z"],
)
def test_plain_datetimes_in_range_take_the_fast_path(value: str) -> None:
    assert is_plain_datetime(value)


@pytest.mark.parametrize(
    "value",
    ["2026-02-29T00:00:00.000Z", "2026-13-01T00:00:00.000Z", "2026-01-01T24:00:00.000Z",
     "2026-01-01T00:60:00.000Z", "2026-01-01T00:00:60.000Z", "2026-01-00T00:00:00.000Z"],
)  # fmt: skip
def test_what_needs_the_calendar_or_is_out_of_range_leaves_the_fast_path(value: str) -> None:
    assert not is_plain_datetime(value)
