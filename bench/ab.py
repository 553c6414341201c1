"""Interleaved A/B rounds of the relay's CPU per record against the Go sink.

    python -m bench.ab as-is,client-send,no-faust-sensor [records] [rounds]
    python -m bench.ab rev:main~3,as-is 10000 5    # another commit beside this checkout
    python -m bench.ab rev:main~3+null-agent,null-agent 6000 4    # both with a variant
    python -m bench.ab rev:main~3,as-is 6000 4 --events-per-request 20   # envelopes of 20

One backlog, drained by each variant in turn (``bench/variants.py``, or ``rev:<ref>``: that commit
of the relay, ``bench/revisions.py``, optionally ``rev:<ref>+<variant>``; ``as-is`` is the relay
unpatched), ``rounds`` times over, each drain a fresh consumer group into a fresh Go sink.
One ``--variants`` drain each is within this machine's noise for a difference of a few percent
(a drain that is not CPU-bound spreads the process's fixed background work over fewer records);
interleaved rounds and their medians are not. Prints a table and the figures as JSON.
"""

from __future__ import annotations

import json
import statistics
import sys

from bench.common import Sizes, say
from bench.lab import lab


def main(argv: list[str]) -> dict[str, list[dict[str, float]]]:
    argv, events_per_request = _option(argv, "--events-per-request", 1)
    variants = argv[0].split(",") if argv else ["as-is", "client-send"]
    records = int(argv[1]) if len(argv) > 1 else 10_000
    rounds = int(argv[2]) if len(argv) > 2 else 3
    figures: dict[str, list[dict[str, float]]] = {v: [] for v in variants}
    with lab(Sizes.named("small"), {"S6"}, False) as env:
        backlog = env.backlog("ab", records, seed=91)
        for round_ in range(rounds):
            for variant in variants:
                name = f"ab-{variant}-{round_}"
                sink = env.go_sink(name)
                drain = env.drain(
                    name,
                    backlog,
                    sink.url,
                    variant=None if variant == "as-is" else variant,
                    events_per_request=events_per_request,
                )
                sink.stop()
                cpu = drain.steady_cpu()
                figures[variant].append(
                    {
                        "us_per_record": float(cpu["relay_cpu_us_per_record"]),
                        "share_of_a_core": float(cpu["relay_cpu_share_of_a_core"]),
                        "events_per_s": round(drain.events_per_s, 1),
                    }
                )
                say(f"  {variant} round {round_ + 1}: {figures[variant][-1]}")
    base = statistics.median(f["us_per_record"] for f in figures[variants[0]])
    print(f"{'variant':<28}{'median us/record':>18}{'vs ' + variants[0]:>14}  rounds")
    for variant, rows in figures.items():
        median = statistics.median(f["us_per_record"] for f in rows)
        each = ", ".join(f"{f['us_per_record']:.0f}" for f in rows)
        print(f"{variant:<28}{median:>18.0f}{median / base:>14.2f}  {each}")
    print(json.dumps(figures))
    return figures


def _option(argv: list[str], name: str, default: int) -> tuple[list[str], int]:
    """``argv`` without ``name N`` (anywhere in it), and N (``default`` when absent)."""
    if name not in argv:
        return argv, default
    at = argv.index(name)
    return argv[:at] + argv[at + 2 :], int(argv[at + 1])


if __name__ == "__main__":
    main(sys.argv[1:])
