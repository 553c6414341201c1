"""The demo's live panel: the relay's own /metrics, scraped and shown as one table."""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass, field

import httpx
from prometheus_client.parser import text_string_to_metric_families
from rich.table import Table

CIRCUIT = {0: "closed", 1: "[red]open[/]", 2: "[yellow]half-open[/]"}
P = "timeback_relay_"


@dataclass
class RelayStats:
    """The figures the panel shows, from one scrape of the relay's /metrics."""

    consumed: float = 0
    acked: float = 0
    delivered: float = 0  # Caliper events accepted by the API (incl. duplicates)
    rejected: dict[str, float] = field(default_factory=dict)  # "stage/reason" -> records
    retries: float = 0
    in_flight: float = 0
    pending: float = 0
    lag: float = 0
    circuit: int = 0
    circuit_opened: float = 0
    at: float = field(default_factory=time.monotonic)

    @classmethod
    def scrape(cls, http: httpx.Client, metrics_url: str) -> RelayStats | None:
        try:
            text = http.get(metrics_url, timeout=2).text
        except httpx.HTTPError:
            return None  # not up yet, or restarting
        return cls.parse(text)

    @classmethod
    def parse(cls, text: str) -> RelayStats:
        stats, rejected = cls(), defaultdict[str, float](float)
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                name, labels, value = s.name, s.labels, s.value
                if name == P + "records_consumed_total":
                    stats.consumed += value
                elif name == P + "records_acked_total":
                    stats.acked += value
                elif name == P + "events_sent_total" and labels.get("outcome") != "rejected":
                    stats.delivered += value
                elif name == P + "records_rejected_total" and value:
                    rejected[f"{labels['stage']}/{labels['reason']}"] += value
                elif name == P + "retries_total":
                    stats.retries += value
                elif name == P + "in_flight":
                    stats.in_flight = value
                elif name == P + "pending":
                    stats.pending = value
                elif name == P + "consumer_lag":
                    stats.lag += value
                elif name == P + "circuit_state":
                    stats.circuit = int(value)
                elif name == P + "circuit_transitions_total" and labels.get("to") == "open":
                    stats.circuit_opened += value
        stats.rejected = dict(rejected)
        return stats


def panel(
    stats: RelayStats | None, previous: RelayStats | None, produced: int, planned: int
) -> Table:
    table = Table(title="timeback-relay demo", show_header=False, min_width=60)
    table.add_column("what", style="bold")
    table.add_column("value", justify="right")
    table.add_row("produced", f"{produced:,} / {planned:,}")
    if stats is None:
        table.add_row("relay", "[yellow]starting...[/]")
        return table
    rate = 0.0
    if previous is not None and stats.at > previous.at:
        rate = (stats.delivered - previous.delivered) / (stats.at - previous.at)
    table.add_row("consumed / acknowledged", f"{stats.consumed:,.0f} / {stats.acked:,.0f}")
    table.add_row("events delivered", f"{stats.delivered:,.0f}")
    table.add_row("events/s", f"{rate:,.0f}")
    table.add_row("rejected (dead-lettered)", f"{sum(stats.rejected.values()):,.0f}")
    for reason, count in sorted(stats.rejected.items()):
        table.add_row(f"  {reason}", f"{count:,.0f}")
    table.add_row("retries", f"{stats.retries:,.0f}")
    table.add_row("in flight / pending", f"{stats.in_flight:,.0f} / {stats.pending:,.0f}")
    table.add_row("consumer lag", f"{stats.lag:,.0f}")
    circuit = CIRCUIT.get(stats.circuit, str(stats.circuit))
    table.add_row("circuit", f"{circuit} (opened {stats.circuit_opened:.0f}x)")
    return table
