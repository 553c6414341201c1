"""``--profile``: where the time goes, as pyinstrument text reports in bench/results/.

- ``s1_profile.txt``: the in-process chain (decode .. serialize) over the S1 records.
- ``relay_profile.txt``: ``relay run`` itself (under pyinstrument) draining a backlog against a
  sandbox without latency: the whole process, Kafka consumption and HTTP included.
- ``relay_profile_gosink.txt``: the same against the compiled Go sink (S6's), where the sink
  costs next to nothing and the relay's own CPU is all there is to see.

Each report has the call tree (library frames folded) and then the flat list of self time.
"""

from __future__ import annotations

from pathlib import Path

from pyinstrument.renderers import ConsoleRenderer
from pyinstrument.session import Session

from bench.common import Sizes, say
from bench.lab import Lab
from bench.report import RESULTS
from bench.s1_pipeline import profile_session

FLAT_LINES = 45


def render(session: Session) -> str:
    tree = ConsoleRenderer(unicode=False, color=False).render(session)
    flat = ConsoleRenderer(unicode=False, color=False, flat=True, show_all=True).render(session)
    head = "\n".join(flat.splitlines()[: FLAT_LINES + 8])
    return f"{tree}\n\n=== self time, flat (top {FLAT_LINES}) ===\n{head}\n"


def s1_profile(sizes: Sizes) -> Path:
    path = RESULTS / "s1_profile.txt"
    path.write_text(render(profile_session(sizes)))
    say(f"profile of the S1 chain: {path}")
    return path


def relay_profile(lab: Lab, variant: str | None = None, go_sink: bool = False) -> Path:
    suffix = f"_{variant}" if variant else "_gosink" if go_sink else ""
    path = RESULTS / f"relay_profile{suffix}.txt"
    session_path = path.with_suffix(".pyisession")
    records = max(1_000, lab.sizes.s2_records // 3)
    say(f"profiling relay run{' (' + variant + ')' if variant else ''} over {records:,} records")
    backlog = lab.backlog(f"profile{suffix}", records, seed=61)
    if go_sink:
        url = lab.go_sink(f"profile{suffix}").url
    else:
        url = lab.sandbox(f"profile{suffix}", backlog.plan).url
    lab.drain(f"profile{suffix}", backlog, url, profile_to=session_path, variant=variant)
    path.write_text(render(Session.load(str(session_path))))
    session_path.unlink(missing_ok=True)
    say(f"profile of relay run: {path}")
    return path
