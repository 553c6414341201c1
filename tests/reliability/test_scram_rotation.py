"""Issue 23 item 7: the relay's SCRAM password is rotated on the brokers while the relay runs and
records still flow.

The relay logs in as its own SCRAM-SHA-256 user, whose sessions the cluster ends after
``SHA256_REAUTH_S`` (``connections.max.reauth.ms``): after the rotation every reconnect of its
consumer (aiokafka) and producers (librdkafka) is refused. Wanted: /readyz 503 naming the refused
login, logs without the secret, and an exit (status 1) instead of running on forever, so that the
restart (Kubernetes, here the test) reads the new secret; then everything arrives, nothing lost,
nothing dead-lettered. The bound comes from relay/pipeline/auth_watch.py: RELAY_KAFKA_LOGIN_GRACE
+ two login intervals + the login timeout + RELAY_SHUTDOWN_GRACE; the wait below is only a guard
against a relay that never exits, and the time it took is reported.

Between the two, the pod restarts once before its secret is updated (the stale secret): it must
not start (/readyz 503, a counted refusal, a log naming the refused login and no secret) and must
exit non-zero after the grace (relay/kafka/login.py's ``await_login``, the start's own path). This
was a trial of its own in test_cluster_trials.py with a second SCRAM user, topics and relay; the
start path is the same code for SCRAM-SHA-256 and -512, and the -512 refusal at start stays
covered there (``test_a_refused_kafka_login_keeps_the_relay_up_not_ready_with_a_metric``).
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from relay.pipeline.auth_watch import check_every
from relay.pipeline.worker import STOP_WITHIN
from relay.tools.traffic import TrafficGenerator
from tests.integration.conftest import SandboxFactory
from tests.kafka_cluster import SHA256_REAUTH_S, Cluster
from tests.reliability.conftest import Report
from tests.reliability.harness import requires_relay, wait_for
from tests.reliability.ledger import expectations
from tests.reliability.test_cluster_trials import secured_scenario

pytestmark = [requires_relay, pytest.mark.reliability, pytest.mark.timeout(900)]

USER = "relay-rotated-live"
GRACE, SHUTDOWN_GRACE = 10.0, 5.0
# From the rotation to the exit: the sessions' end, then auth_watch.py's bound (the grace, two
# login intervals, the login timeout, the drain, the worker's STOP_WITHIN), and 30 s of margin.
BOUND = GRACE + 2 * check_every(GRACE) + 5 + SHUTDOWN_GRACE + STOP_WITHIN
EXIT_GUARD = SHA256_REAUTH_S + BOUND + 30


def readyz(relay: Any) -> dict[str, Any]:
    response = relay.get("/readyz")
    return response.json() if response is not None and response.status_code == 503 else {}


def test_a_password_rotated_while_running_makes_the_relay_exit_and_recover(
    cluster: Cluster, sandbox_factory: SandboxFactory, tmp_path: Path, report: Report
) -> None:
    old, new = f"old-{uuid.uuid4().hex}", f"new-{uuid.uuid4().hex}"
    cluster.set_password(USER, old, "SCRAM-SHA-256")
    box = sandbox_factory()
    names = cluster.names("rotate-live")
    cluster.grant(names)  # the operator's grants (the test produces as the operator)
    cluster.grant(names, principal=f"User:{USER}")
    s = secured_scenario(cluster, names, "scram-rotated-live", box, tmp_path)
    try:
        plan = TrafficGenerator(students=10, seed=83).plan(900)
        expected = expectations(plan)
        s.seed_roster(plan)
        login = {
            "RELAY_KAFKA_SASL_USERNAME": USER,
            "RELAY_KAFKA_SASL_PASSWORD": old,
            "RELAY_KAFKA_SASL_MECHANISM": "SCRAM-SHA-256",
            "RELAY_KAFKA_LOGIN_GRACE": str(GRACE),
            "RELAY_SHUTDOWN_GRACE": str(SHUTDOWN_GRACE),
        }
        relay = s.relay("a", **(cluster.relay_env("scram") | login)).start()
        relay.wait_assigned()
        s.produce(expected[:300], wait=True)
        s.wait_progress(0.3, timeout=180, alive=[relay])  # caught up, sessions renewed meanwhile
        s.produce(expected[300:], rate=15)  # records still flowing: ~40 s of them

        cluster.set_password(USER, new, "SCRAM-SHA-256")  # rotated on the brokers
        rotated = time.monotonic()
        not_ready: dict[str, Any] = {}

        def exited() -> bool:
            not_ready.update(readyz(relay) or {})
            return not relay.alive

        try:
            wait_for(exited, EXIT_GUARD, "the relay to exit after its password was rotated",
                     interval=0.5)  # fmt: skip
        except AssertionError as exc:
            raise AssertionError(f"{exc}; /readyz said {not_ready or '200'}") from None
        exit_after = time.monotonic() - rotated
        status = relay.returncode
        watch_log = relay.logs()

        relay.start()  # restarted before its secret was updated: the stale one
        wait_for(lambda: relay.readyz() == 503, 60, "/readyz 503 with the stale secret",
                 relay.check_alive)  # fmt: skip
        stale_refusals = relay.metric("kafka_auth_failures") or 0
        wait_for(lambda: not relay.alive, EXIT_GUARD, "the relay with a stale secret to exit")
        stale_exit = relay.returncode
        stale_log = relay.log_files[-1].read_text(errors="replace")

        relay.env["RELAY_KAFKA_SASL_PASSWORD"] = new  # the restart reads the rotated secret
        relay.start()
        s.wait_complete(timeout=240, alive=[relay])
        wait_for(lambda: relay.readyz() == 200, 60, "/readyz 200 with the new secret")
        figures = s.finish()
        figures.notes.update(
            exit_status=status,
            exit_after_rotation_s=round(exit_after, 1),
            exit_guard_s=EXIT_GUARD,
            readyz_while_refused=not_ready.get("reasons", {}),
            stale_secret_exit=stale_exit,
            starts=relay.starts,
        )
        report(figures)
    finally:
        s.close()

    # -11 once (SIGSEGV, 2026-12-07): the log's end then holds faulthandler's stacks
    tail = "\n".join(watch_log.splitlines()[-60:])
    assert status == 1, f"a relay whose login is refused must exit 1, not {status}:\n{tail}"
    assert "SASL login" in not_ready.get("reasons", {}).get("kafka_login", ""), not_ready
    assert "RELAY_KAFKA_LOGIN_GRACE" in watch_log
    assert stale_exit not in (None, 0), "a relay that cannot log in must not look healthy"
    assert stale_refusals > 0, "the stale secret's refusals were not counted"
    assert "SaslAuthenticationFailed" in stale_log or "invalid credentials" in stale_log
    assert old not in relay.logs() and new not in relay.logs(), "a secret reached the log"
    assert figures.lost == 0, figures.problems
    assert figures.duplicate_mismatch == 0, "a redelivered event differs from the first"
    assert figures.dlq_total == 0, f"dead-lettered because of the rotation: {figures.dlq_by_reason}"


def test_the_watch_exits_once_refusals_last_the_grace_and_forgives_an_accepted_login() -> None:
    """The watch's decisions on a clock of its own (the trial above runs it against brokers)."""
    from relay.config import Settings
    from relay.health import Health
    from relay.kafka.diagnosis import Diagnosis
    from relay.pipeline.auth_watch import AuthWatch

    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_mechanism="SCRAM-SHA-512",
        kafka_sasl_username="relay",
        kafka_sasl_password="the-secret-9f1c",
        kafka_login_grace=60.0,
    )
    now = [0.0]
    health = Health()
    watch = AuthWatch(settings, health, clock=lambda: now[0])
    exits: list[str] = []
    watch.on_lost = exits.append
    refused = Diagnosis("Kafka refused the SASL login of user 'relay'", "the new secret")

    watch.observe(refused)
    assert not health.kafka_login and "SASL login" in health.reasons()["kafka_login"]
    now[0] = 59.0
    watch.observe(refused)
    watch.observe(None)  # accepted again: the count starts over
    assert health.kafka_login and not exits
    now[0] = 100.0
    watch.observe(refused)
    now[0] = 159.0
    watch.observe(refused)
    assert not exits
    now[0] = 160.0
    watch.observe(refused)
    assert len(exits) == 1 and "RELAY_KAFKA_LOGIN_GRACE" in exits[0]
    assert health.liveness(lagging=False) is not None, "/livez says why while it drains"
    assert "the-secret-9f1c" not in exits[0] + str(health.reasons())
    assert watch.every == 15.0
