"""One sandbox's state: clients, tokens, roster, received events, XP ledger, processing, faults.

Handlers reach it through ``request.app[SANDBOX]``. Everything lives in memory and in one event
loop, so no locks: a handler's changes are atomic between awaits.
"""

from __future__ import annotations

import random
from typing import Final

from aiohttp import web

from relay.caliper.validate import TimeBackRules
from relay.sandbox.config import Client, SandboxConfig
from relay.sandbox.faults import Faults
from relay.sandbox.journal import Journal, Receipt
from relay.sandbox.ledger import Ledger
from relay.sandbox.processing import Processor
from relay.sandbox.store import Roster
from relay.sandbox.tokens import TokenSigner


class Sandbox:
    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self.clients: dict[str, Client] = {c.client_id: c for c in config.clients}
        self.signer = TokenSigner()
        self.roster = Roster()
        self.journal = Journal()
        self.ledger = Ledger()
        self.rules = TimeBackRules(config.iri, config.subjects, config.strict_extensions)
        self.faults = Faults(config.faults)
        self.processor = Processor(
            self.roster,
            self.ledger,
            self.receipt,
            config.iri,
            config.processing_delay,
            random.Random(config.seed),
        )

    def receipt(self, seq: int) -> Receipt:
        return self.journal.receipts[seq - 1]

    def token_ttl(self) -> float:
        override = self.faults.token_ttl_s
        return self.config.token_ttl_s if override is None else override

    def app_iri(self, app_id: str) -> str:
        return f"{self.config.iri}/applications/1.0/{app_id}"

    def reset(self) -> None:
        """Forget the roster (the seeded org comes back), events, facts and XP; keep faults."""
        self.processor.reset()
        self.roster.reset()
        self.journal.reset()
        self.ledger.reset()

    def stats(self) -> dict[str, object]:
        return {**self.journal.stats(), "faulted": self.faults.faulted}


SANDBOX: Final = web.AppKey("sandbox", Sandbox)
