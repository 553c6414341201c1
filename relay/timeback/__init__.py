"""The TimeBack Partner API client: tokens, one-attempt calls, delivery and what answers mean.

Knows nothing of Kafka or faust; retrying is ``relay.resilience``'s. Typical use::

    async with TimeBackClient(relay.wiring.client_config(settings)) as client:
        breaker = CircuitBreaker(settings.circuit_failures, settings.circuit_open_for)
        deliverer = Deliverer(client, breaker, Backoff(settings.retry_base, settings.retry_cap),
                              settings.retry_budget, settings.retry_after_cap)
        result = await deliverer.deliver(payload, event_type="GradeEvent")
"""

from relay.timeback.auth import TokenManager
from relay.timeback.client import SendResult, TimeBackClient
from relay.timeback.client_config import ClientConfig
from relay.timeback.delivery import Deliverer
from relay.timeback.errors import ApiSystemicError, ApiTransientError, RequestRejected
from relay.timeback.responses import Outcome, classify, parse_retry_after

__all__ = [
    "ApiSystemicError",
    "ApiTransientError",
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
