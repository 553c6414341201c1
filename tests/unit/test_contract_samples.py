"""The shared samples (tests/shared.py) cover every record type, field for field."""

from __future__ import annotations

from relay.contract.activity import RECORD_TYPES
from relay.contract.catalogue import default_catalogue
from tests.shared import NS, SHORT_NAMES, entry, full


def test_samples_cover_every_record_type() -> None:
    assert {f"{NS}.{short}" for short in SHORT_NAMES} == set(RECORD_TYPES)
    assert set(default_catalogue().names()) == set(RECORD_TYPES)
    for short in SHORT_NAMES:
        fields = {f["name"] for f in entry(short).plain["fields"]}
        assert set(full(short)) == fields, short
