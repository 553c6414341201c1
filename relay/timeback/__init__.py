"""The TimeBack Partner API client: tokens, one-attempt calls, the retry loop and its policy.

Knows nothing of Kafka or faust. Typical use::

    async with TimeBackClient(ClientConfig.from_settings(settings)) as client:
        breaker = CircuitBreaker(settings.circuit_failures, settings.circuit_open_for)
        deliverer = Deliverer(client, breaker, Backoff(settings.retry_base, settings.retry_cap),
                              settings.retry_budget, settings.retry_after_cap)
        result = await deliverer.deliver(payload, event_type="GradeEvent")
"""

from relay.timeback.auth import TokenManager
from relay.timeback.client import (
    ClientConfig,
    RequestRejected,
    SendResult,
    TimeBackClient,
)
from relay.timeback.delivery import Deliverer
from relay.timeback.policy import (
    ApiSystemicError,
    ApiTransientError,
    Backoff,
    CircuitBreaker,
    CircuitState,
    Outcome,
    classify,
    parse_retry_after,
)

__all__ = [
    "ApiSystemicError",
    "ApiTransientError",
    "Backoff",
    "CircuitBreaker",
    "CircuitState",
    "ClientConfig",
    "Deliverer",
    "Outcome",
    "RequestRejected",
    "SendResult",
    "TimeBackClient",
    "TokenManager",
    "classify",
    "parse_retry_after",
]
