"""The catalogue (versions, fingerprints, load errors), the wire framings and the benchmark's
bookkeeping (not its speed)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from fastavro.schema import to_parsing_canonical_form

from bench.contract_bench import run
from relay.contract.catalogue import Catalogue, default_schema_dir, fingerprint_of
from relay.contract.json_input import _failing_field
from relay.contract.wire import Framing, frame_confluent, frame_single_object, unframe
from relay.errors import ConfigError, Rejection
from tests.shared import (
    FIXTURE_SCHEMAS,
    NS,
    SHORT_NAMES,
    entry,
    full,
    plain_datum,
)


def test_versions_readers_and_writers() -> None:
    catalogue = Catalogue.load(default_schema_dir(), FIXTURE_SCHEMAS)
    xp = f"{NS}.XpEarned"
    v0, v1 = catalogue.version(xp, 0), catalogue.version(xp, 1)
    assert catalogue.entry(xp) is v1 and catalogue.reader(xp) is v1.parsed
    assert catalogue.writer_by_fingerprint(v0.fingerprint) is v0.parsed
    assert catalogue.writer_by_fingerprint(b"\x00" * 8) is None
    assert catalogue.resolve("XpEarned") == catalogue.resolve(xp) == xp
    assert len(catalogue) == len(SHORT_NAMES) + 2  # + XpEarned v0 + Unrelated
    with pytest.raises(KeyError, match="unknown record type 'Nope'"):
        catalogue.resolve("Nope")
    with pytest.raises(KeyError, match="no schema for record"):
        catalogue.reader(f"{NS}.Nope")


def test_plain_and_parsed_forms_share_the_fingerprint() -> None:
    for short in SHORT_NAMES:
        schema = entry(short)
        assert fingerprint_of(schema.plain) == fingerprint_of(schema.parsed) == schema.fingerprint
        assert "logicalType" not in json.dumps(schema.plain, default=str)
        assert "logicalType" in schema.text
        assert f'"name":"{NS}.{short}"' in to_parsing_canonical_form(schema.parsed)


def copy_schemas(tmp_path: Path) -> Path:
    target = tmp_path / "schemas"
    shutil.copytree(default_schema_dir(), target)
    return target


@pytest.mark.parametrize(
    ("name", "text", "error"),
    [
        ("xp.avsc", "{}", "named <Record>.v<N>.avsc"),
        ("XpEarned.v2.avsc", "{not json", "not a valid Avro schema"),
        ("XpEarned.v2.avsc", '{"type": "record", "name": "Other", "fields": []}', "must define"),
        ("XpEarned.v1.avsc", None, "defined twice"),
    ],
)
def test_load_errors_name_the_file(tmp_path: Path, name: str, text: str | None, error: str) -> None:
    schemas = copy_schemas(tmp_path)
    extra = tmp_path / "extra"
    extra.mkdir()
    (extra / name).write_text(text if text is not None else entry("XpEarned").text)
    with pytest.raises(ConfigError, match=error) as caught:
        Catalogue.load(schemas, extra)
    assert name in str(caught.value)


def test_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        Catalogue.load(tmp_path / "nowhere")


def test_framings_round_trip() -> None:
    fingerprint = entry("XpEarned").fingerprint
    assert unframe(frame_single_object(fingerprint, b"body")) == (
        Framing.SINGLE_OBJECT, fingerprint, 10
    )  # fmt: skip
    assert unframe(frame_confluent(2**32 - 1, b"body")) == (Framing.CONFLUENT, 2**32 - 1, 5)
    assert frame_confluent(258, b"") == b"\x00\x00\x00\x01\x02"
    with pytest.raises(ValueError, match="schema_id"):
        frame_confluent(2**32, b"")
    with pytest.raises(ValueError, match="fingerprint"):
        frame_single_object(b"short", b"")
    with pytest.raises(Rejection, match="single-object header needs 10 bytes"):
        unframe(b"\xc3\x01\x00")


def test_schema_backstop_names_the_field() -> None:
    plain = entry("XpEarned").plain
    datum = plain_datum("XpEarned", full("XpEarned"))
    assert _failing_field({**datum, "xp": "many"}, plain) == "xp"
    assert _failing_field({**datum, "activity": {"id": 1, "name": "n"}}, plain) == "Activity.id"
    assert _failing_field({"xp": 1.0}, plain) == "record"  # fastavro names no field here


def test_benchmark_reports_every_record_type() -> None:
    results = run(n=300)
    assert set(results) == {*SHORT_NAMES, "mixed"}
    for row in results.values():
        assert row["records"] == 300 and row["records_per_s"] > 0 and row["bytes"] > 0
