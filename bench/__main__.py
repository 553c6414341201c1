"""``make bench``: the benchmark of issue 9. Writes bench/results/latest.json, prints a table.

    python -m bench                       # every scenario, default sizes (<15 min, 2 cores)
    python -m bench --only S1,S3 --size small
    python -m bench --set s5_records=50000 --set in_flight=32
    python -m bench --only S6,S7 --set rounds=5   # S6b, S7c: medians of 5 interleaved rounds
    python -m bench --profile             # also pyinstrument profiles in bench/results/

S1 needs nothing; S2-S9 use the Kafka broker at RELAY_KAFKA_BOOTSTRAP (default 127.0.0.1:9092),
or start one of their own when none answers, and run the sandbox (S2-S5) or the compiled Go sink
(S6-S9, bench/go, built with ``go build`` on first use) and ``relay run`` as processes; S7's and
S9's peers are built on first use too (bench/camel with Maven, bench/quix's virtualenv with pip).
Every bar a figure is held to is in bench/targets.py.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import report
from bench.common import Sizes, say
from bench.report import Result

SCENARIOS = ("S1", "S2", "S3", "S4", "S5", "S6", "S7", "S8", "S9")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=",".join(SCENARIOS), help="e.g. S1,S3 (default: all)")
    parser.add_argument("--size", default="default", choices=["tiny", "small", "default", "full"])
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="override one size (see bench/common.py Sizes)")  # fmt: skip
    parser.add_argument("--profile", action="store_true", help="write pyinstrument profiles")
    parser.add_argument("--variants", nargs="?", const="all", default=None, metavar="V1,V2",
                        help="also drain with the alternatives of bench/variants.py: all, "
                             "or a list: httpcore,held-window (as-is always runs)")  # fmt: skip
    parser.add_argument("--output", default=None, help="JSON path (default results/latest.json)")
    args = parser.parse_args(argv)
    only = {s.strip().upper() for s in args.only.split(",") if s.strip()}
    unknown = only - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenarios {sorted(unknown)}; choose from {', '.join(SCENARIOS)}")
    try:
        sizes = Sizes.named(args.size).override(args.set)
    except ValueError as exc:
        parser.error(str(exc))
    started = time.monotonic()
    extra: dict[str, Any] = {}
    if args.variants is not None:
        extra["variants_wanted"] = args.variants
    results = run(only, sizes, args.profile, extra if args.variants is not None else None)
    extra.pop("variants_wanted", None)
    path = report.write(results, Path(args.output) if args.output else None, extra)
    report.show(results)
    say(f"wrote {path} in {time.monotonic() - started:.0f}s")
    return 0


def run(
    only: set[str],
    sizes: Sizes,
    profile: bool = False,
    experiments: dict[str, Any] | None = None,
) -> list[Result]:
    """The scenarios in ``only``; with ``experiments`` (a dict), the variants are run too and
    their figures put there."""
    results: list[Result] = []
    if "S1" in only:
        from bench import s1_pipeline

        results.extend(s1_pipeline.run(sizes))
        if profile:
            from bench.profiles import s1_profile

            s1_profile(sizes)
    rest = [s for s in SCENARIOS[1:] if s in only]
    if not rest and experiments is None:
        return results
    from bench import (
        s2_throughput,
        s3_latency,
        s4_naive,
        s5_memory,
        s6_cpu,
        s7_peer,
        s8_scaling,
        s9_quix,
    )
    from bench.lab import Lab, lab

    steps: dict[str, Callable[[Lab], Result | list[Result]]] = {
        "S2": s2_throughput.run,
        "S3": s3_latency.run,
        "S4": s4_naive.run,
        "S5": s5_memory.run,
        "S6": s6_cpu.run,
        "S7": s7_peer.run,
        "S8": s8_scaling.run,
        "S9": s9_quix.run,
    }
    with lab(sizes, only, profile) as env:
        for name in rest:
            try:
                produced = steps[name](env)
                results.extend(produced if isinstance(produced, list) else [produced])
            except Exception as exc:  # one broken scenario must not cost the others' figures
                say(f"{name} failed: {type(exc).__name__}: {exc}")
                results.append(Result(name, f"FAILED: {exc}"[:80], 0.0, "-",
                                      {"error": repr(exc)}, failed=True))  # fmt: skip
        from bench.profiles import relay_profile

        if profile:
            relay_profile(env)
            if any(s in only for s in ("S6", "S7", "S8")):
                relay_profile(env, go_sink=True)
        if experiments is not None:
            from bench import experiments as variants

            wanted = experiments.get("variants_wanted", "all")
            try:
                experiments["experiments"] = variants.run(env, None if wanted == "all" else wanted)
            except Exception as exc:  # the scenarios' figures are still written
                say(f"variants failed: {type(exc).__name__}: {exc}")
                experiments["experiments"] = {"error": repr(exc)}
            if profile:  # where the time went with the previous HTTP pool
                relay_profile(env, "httpcore")
    return results


if __name__ == "__main__":
    sys.exit(main())
