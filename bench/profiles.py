"""``--profile``: where the time goes, as pyinstrument text reports in bench/results/.

- ``s1_profile.txt``: the in-process chain (decode .. serialize) over the S1 records.
- ``relay_profile.txt``: ``relay run`` itself (under pyinstrument) draining a backlog against a
  sandbox without latency: the whole process, Kafka consumption and HTTP included.
"""

from __future__ import annotations

from bench.common import Sizes, say
from bench.lab import Lab
from bench.report import RESULTS
from bench.s1_pipeline import profile


def s1_profile(sizes: Sizes) -> None:
    path = RESULTS / "s1_profile.txt"
    path.write_text(profile(sizes))
    say(f"profile of the S1 chain: {path}")


def relay_profile(lab: Lab) -> None:
    path = RESULTS / "relay_profile.txt"
    records = max(1_000, lab.sizes.s2_records // 3)
    say(f"profiling relay run over {records:,} records")
    backlog = lab.backlog("profile", records, seed=61)
    sandbox = lab.sandbox("profile", backlog.plan)
    lab.drain("profile", backlog, sandbox.url, profile_to=path)
    say(f"profile of relay run: {path}")
