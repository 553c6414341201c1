"""Trying again, one way for the whole relay: backoff with jitter, a circuit breaker, a failure
rate, and ``Retry``, which every retrying caller uses (delivery, the registry and rostering
stages, the dead-letter writer, the first token). Knows nothing of Kafka or of the Partner API."""

from relay.resilience.backoff import Backoff, Delays, FixedDelay
from relay.resilience.breaker import CircuitBreaker, CircuitState
from relay.resilience.rate import FailureRate
from relay.resilience.retry import (
    Attempts,
    Budget,
    Failure,
    RetriesExhausted,
    Retry,
    Verdict,
    transient_or_systemic,
)

__all__ = [
    "Attempts",
    "Backoff",
    "Budget",
    "CircuitBreaker",
    "CircuitState",
    "Delays",
    "Failure",
    "FailureRate",
    "FixedDelay",
    "RetriesExhausted",
    "Retry",
    "Verdict",
    "transient_or_systemic",
]
