"""Smoke test of the benchmark: S1 at a tiny size, and the JSON shape issue 9 promises.

Shape only: benchmark figures are never asserted (the machine is shared and noisy).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.__main__ import main
from bench.common import Sizes

SCENARIO_KEYS = {"title", "value", "unit", "target", "better", "met", "detail"}
STAGES = {"decode_validate_us", "enrich_us", "map_check_serialize_us", "total_us"}


def test_s1_tiny_writes_the_report_shape(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "latest.json"
    assert main(["--only", "S1", "--size", "tiny", "--output", str(out)]) == 0
    report = json.loads(out.read_text())
    assert set(report) == {"machine", "scenarios"}
    assert {"cores", "python", "versions"} <= set(report["machine"])
    s1 = report["scenarios"]["S1"]
    assert set(s1) >= SCENARIO_KEYS
    assert s1["unit"] == "us/record" and s1["target"] == 50
    assert isinstance(s1["value"], float) and s1["value"] > 0
    assert isinstance(s1["met"], bool)
    rows = s1["detail"]["per_type"]
    assert {"overall", "XpEarned", "SessionChanged"} <= set(rows)
    assert all(set(row) >= STAGES for row in rows.values())
    assert "S1" in capsys.readouterr().out  # the table


def test_sizes_override_and_names() -> None:
    sizes = Sizes.named("small").override(["s5_records=123", "s2_sink_seconds=1.5"])
    assert (sizes.s5_records, sizes.s2_sink_seconds) == (123, 1.5)
    with pytest.raises(ValueError):
        Sizes.named("huge")
    with pytest.raises(ValueError):
        Sizes().override(["nope=1"])


def test_unknown_scenario_is_refused() -> None:
    with pytest.raises(SystemExit):
        main(["--only", "S9"])
