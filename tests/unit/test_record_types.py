"""One registration per record type: the ``Activity`` union is the list, and every per-type table
(builders, mappers, traffic) is checked against it when its module is imported, so a forgotten
entry stops the relay at start rather than dead-lettering every record of the type."""

from __future__ import annotations

from typing import get_args

import pytest

from relay.contract.activity import (
    ACTIVITY_TYPES,
    RECORD_TYPES,
    CoursePolicy,
    XpEarned,
    require_every_type,
)
from relay.contract.build import _BUILDERS
from relay.contract.catalogue import Catalogue
from relay.mapping import _MAPPERS
from relay.tools import traffic

SHORT = {cls.__name__ for cls in ACTIVITY_TYPES}


def test_every_table_covers_the_same_record_types() -> None:
    assert set(RECORD_TYPES.values()) == set(ACTIVITY_TYPES)
    assert set(_BUILDERS) == set(RECORD_TYPES)
    assert set(_MAPPERS) == set(ACTIVITY_TYPES)
    assert set(traffic.RECORD_TYPES) == SHORT
    assert set(traffic.WEIGHTS) | {"SessionChanged"} == SHORT
    assert set(Catalogue.load().names()) == set(RECORD_TYPES)  # one schema file per type


def test_every_type_says_what_enrichment_needs() -> None:
    for cls in ACTIVITY_TYPES:
        assert cls.COURSE in get_args(CoursePolicy), cls.__name__
        assert callable(cls.course_refs), cls.__name__


def test_a_table_missing_a_type_fails_naming_the_table_and_the_type() -> None:
    partial = [cls for cls in ACTIVITY_TYPES if cls is not XpEarned]
    with pytest.raises(TypeError, match=r"mytable: .*missing \['XpEarned'\]"):
        require_every_type("mytable", partial)


def test_a_table_naming_no_record_type_fails() -> None:
    with pytest.raises(TypeError, match=r"not a record type \['XpSpent'\]"):
        require_every_type("mytable", [*SHORT, "XpSpent"])


def test_a_complete_table_passes() -> None:
    require_every_type("classes", ACTIVITY_TYPES)
    require_every_type("short names", SHORT)
