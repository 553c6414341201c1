"""While the relay runs: a Kafka login the brokers now refuse makes it not ready, then exit 1.

``login.await_login`` covers the start only. A password rotated (or a client certificate revoked)
while the relay runs is another matter: the clients keep their connections until the brokers end
them (``connections.max.reauth.ms``, a broker restart, a network blip), then every reconnect is
refused. aiokafka (the consumer) and librdkafka (dead-letter and strike producers) retry such a
refusal forever, as if the brokers were merely away, and nothing else notices: the consumer lag
comes from faust's cached high watermark, so a relay that was caught up never looks stalled and
is never restarted, and a restarted relay is the only one that reads the rotated secret.

So ``AuthWatch`` logs in afresh, with the relay's own settings, every ``every`` seconds (a
quarter of RELAY_KAFKA_LOGIN_GRACE, between 1 and 15 s). A refused login (``login.try_login``:
SASL credentials, TLS certificates; brokers that do not answer are not a refusal) turns the
``kafka_login`` readiness condition false with the diagnosis and logs it, never a secret. Once
refusals have lasted RELAY_KAFKA_LOGIN_GRACE seconds (0: never), ``on_lost`` is called: the
worker drains as on SIGTERM and exits 1, and the restart reads the current secret (a stale one
keeps it not ready at start, as ``await_login`` says). The bound, from the first refused
reconnect to the exit: grace + 2 x every + the login timeout (5 s) + RELAY_SHUTDOWN_GRACE + the
worker's STOP_WITHIN (30 s; faust's stop can wait on brokers that refuse it); with the defaults
60 + 30 + 5 + 25 + 30 = 150 s. Nothing is lost: unfinished records are not acknowledged, and a
commit the brokers refuse leaves them to be read again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Final

from relay.config import Settings
from relay.health import Condition, Health
from relay.kafka.diagnosis import Diagnosis
from relay.kafka.login import try_login
from relay.metrics import KAFKA_AUTH_FAILURES

log = logging.getLogger(__name__)

EVERY_MIN: Final = 1.0
EVERY_MAX: Final = 15.0
SOURCE: Final = "kafka_login"


def check_every(grace: float) -> float:
    """Seconds between logins: a quarter of the grace, within [EVERY_MIN, EVERY_MAX]."""
    return EVERY_MAX if not grace else min(EVERY_MAX, max(EVERY_MIN, grace / 4))


class AuthWatch:
    def __init__(
        self,
        settings: Settings,
        health: Health,
        *,
        login: Callable[[Settings], Diagnosis | None] = try_login,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.health = health
        self.grace = settings.kafka_login_grace
        self.every = check_every(self.grace)
        self.on_lost: Callable[[str], None] = lambda why: None  # the worker's exit
        self._login = login
        self._clock = clock
        self._since: float | None = None  # first refusal of the current run of them
        self.lost: str | None = None

    @property
    def needed(self) -> bool:
        """PLAINTEXT has no login to refuse."""
        return self.settings.kafka_security_protocol != "PLAINTEXT"

    async def run(self) -> None:
        """Log in every ``every`` seconds until the login has been refused for the grace."""
        while self.needed and self.lost is None:
            await asyncio.sleep(self.every)
            refused = await asyncio.to_thread(self._login, self.settings)
            self.observe(refused)

    def observe(self, refused: Diagnosis | None) -> None:
        """One login's outcome: None accepted (or the brokers did not answer)."""
        if refused is None:
            if self._since is not None:
                log.info("Kafka accepts the relay's login again")
                self.health.report(Condition.KAFKA_LOGIN, True, source=SOURCE)
            self._since = None
            return
        KAFKA_AUTH_FAILURES.inc()
        now = self._clock()
        self._since = now if self._since is None else self._since
        refused_for = now - self._since
        self.health.report(
            Condition.KAFKA_LOGIN,
            False,
            f"{refused.problem} (for {refused_for:.0f} s)",
            source=SOURCE,
        )
        log.error("Kafka refuses the relay's login; not ready: %s", refused)
        if self.grace and refused_for >= self.grace:
            self.lost = (
                f"Kafka refused the relay's login for {refused_for:.0f} s "
                "(RELAY_KAFKA_LOGIN_GRACE): exiting so that a restart reads the current secret"
            )
            log.critical("%s", self.lost)
            self.health.broke(self.lost, source=SOURCE)
            self.on_lost(self.lost)
