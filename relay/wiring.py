"""Settings → the relay's parts: the one place that reads the RELAY_* settings for the domain.

The modules it builds from (``relay.timeback``, ``relay.courses``, ``relay.mapping``) take their
configuration explicitly and know nothing of ``Settings``. ``Decoder.from_settings`` (and the
``Checks`` it builds) still live in ``relay.contract`` while the registry client's options are
being extended there; they belong here next.
"""

from __future__ import annotations

from pydantic import SecretStr

from relay.caliper.ids import app_iri
from relay.caliper.validate import TimeBackRules
from relay.config import Settings
from relay.courses import CourseMap, CourseResolver
from relay.courses.resolver import CourseLookup, Observer
from relay.mapping import Mapper, MappingContext
from relay.resilience.concurrency import Mode
from relay.resilience.gate import GateConfig, RequestGate
from relay.timeback.client_config import ClientConfig
from relay.timeback.envelopes import EnvelopeBatcher, EnvelopeSender
from relay.timeback.sink import EventSink, Sink


def client_config(settings: Settings) -> ClientConfig:
    """The Partner API client's configuration; RELAY_CLIENT_ID and _SECRET are required."""
    settings.require("client_id", "client_secret")
    assert settings.client_id is not None  # checked by require
    return ClientConfig(
        base_url=settings.api_base_url,
        client_id=settings.client_id,
        client_secret=SecretStr(settings.secret("client_secret")),
        token_url=settings.token_url,  # None: ClientConfig's default
        auth_method=settings.auth_method,
        scope=settings.scope,
        timeout=settings.http_timeout,
        deadline=settings.http_deadline,
        max_in_flight=settings.max_in_flight,
        retry_after_cap=settings.retry_after_cap,
        events_wire=settings.events_wire,
    )


def request_gate(settings: Settings) -> RequestGate:
    """The gate of every events request: RELAY_MAX_IN_FLIGHT, RELAY_CONCURRENCY,
    RELAY_MAX_REQUESTS_PER_SECOND and RELAY_MAX_REQUESTS_BURST."""
    return RequestGate(
        GateConfig(
            max_in_flight=settings.max_in_flight,
            mode=Mode(settings.concurrency),
            rate=settings.max_requests_per_second,
            burst=settings.max_requests_burst,
        )
    )


def course_resolver(
    settings: Settings,
    lookup: CourseLookup | None = None,
    *,
    course_map: CourseMap | None = None,
    observe: Observer | None = None,
) -> CourseResolver:
    """A resolver as configured: RELAY_SUBJECTS, RELAY_COURSE_MAP (unless ``course_map`` is
    given), RELAY_PREFLIGHT and RELAY_COURSE_CACHE_TTL."""
    if course_map is None and settings.course_map is not None:
        course_map = CourseMap.load(settings.course_map)
    return CourseResolver(
        settings.subjects,
        course_map,
        lookup,
        settings.preflight,
        settings.course_cache_ttl,
        observe=observe,
    )


def mapping_context(settings: Settings) -> MappingContext:
    """The IRI bases, the app and the id namespace; RELAY_APP_ID is required."""
    settings.require("app_id")
    assert settings.app_id is not None  # require() raised otherwise
    return MappingContext(
        iri_base=settings.iri_base,
        app_iri=app_iri(settings.iri_base, settings.app_id),
        activity_base_url=settings.activity_base_url,
        id_namespace=settings.id_namespace,
    )


def mapper(settings: Settings, resolver: CourseResolver) -> Mapper:
    """The enrich + map stage with the TimeBack rules of RELAY_IRI_BASE and RELAY_SUBJECTS."""
    rules = TimeBackRules(settings.iri_base, tuple(settings.subjects))
    return Mapper(mapping_context(settings), resolver, rules)


def sink(settings: Settings, deliverer: EnvelopeSender, gate: RequestGate | None = None) -> Sink:
    """Where events go: with RELAY_EVENTS_PER_REQUEST above 1, the batcher of envelopes
    (closed when ``gate``, the client's, lets their request leave); else one event per
    request. A new sink is one more line here."""
    if settings.events_per_request > 1:
        return envelope_batcher(settings, deliverer, gate)
    return EventSink(deliverer)


def envelope_batcher(
    settings: Settings, deliverer: EnvelopeSender, gate: RequestGate | None = None
) -> EnvelopeBatcher:
    """The batcher of envelopes (sensor: the app's IRI, as in every event's edApp;
    RELAY_MAX_IN_FLIGHT requests at once)."""
    return EnvelopeBatcher(
        deliverer,
        sensor=mapping_context(settings).app_iri,
        max_events=settings.events_per_request,
        linger=settings.batch_linger,
        max_requests=settings.max_in_flight,
        gate=gate,
    )
