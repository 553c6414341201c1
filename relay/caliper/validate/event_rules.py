"""Per event type rules (docs/caliper-rules.md#per-type-rules): actions, entity types per property.

``constraints(type, action, profile)`` gives, for one combination, the allowed types of every
entity-valued event property: the §2 defaults narrowed by the event type, the action (SessionEvent,
AssessmentItemEvent ``generated``) and the profile (ViewEvent and NavigationEvent ``object``).
Combinations are few, so each is computed once and cached.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from typing import Final

from relay.caliper.validate.terms import EVENT_ENTITY_PROPS

Types = frozenset[str]


def _t(*names: str) -> Types:
    return frozenset(names)


@dataclass(frozen=True)
class EventRule:
    actions: Types | None  # None: any Appendix D action (generic Event)
    props: dict[str, Types] = field(default_factory=dict)  # narrowing for every action
    by_action: dict[str, dict[str, Types]] = field(default_factory=dict)
    by_profile: dict[str, dict[str, Types]] = field(default_factory=dict)


_DR = _t("DigitalResource")
_RESOURCE_BY_PROFILE: Final[dict[str, dict[str, Types]]] = {
    "ReadingProfile": {"object": _DR},
    "AssessmentProfile": {"object": _t("Assessment", "AssessmentItem")},
    "AssignableProfile": {"object": _t("AssignableDigitalResource")},
    "ForumProfile": {"object": _t("Forum", "Thread", "Message")},
    "MediaProfile": {"object": _t("MediaObject")},
    "SurveyProfile": {"object": _t("Questionnaire", "QuestionnaireItem")},
}
_MEDIA_ACTIONS: Final = _t(
    "Started", "Ended", "Paused", "Resumed", "Restarted", "ForwardedTo", "JumpedTo",
    "ChangedResolution", "ChangedSize", "ChangedSpeed", "ChangedVolume",
    "EnabledClosedCaptioning", "DisabledClosedCaptioning", "EnteredFullScreen",
    "ExitedFullScreen", "Muted", "Unmuted", "OpenedPopout", "ClosedPopout",
)  # fmt: skip

RULES: Final[dict[str, EventRule]] = {
    "GradeEvent": EventRule(
        _t("Graded"), {"actor": _t("Agent"), "object": _t("Attempt"), "generated": _t("Score")}
    ),
    "AssessmentEvent": EventRule(
        _t("Started", "Paused", "Resumed", "Restarted", "Reset", "Submitted"),
        {"actor": _t("Person"), "object": _t("Assessment"), "generated": _t("Attempt")},
    ),
    "AssessmentItemEvent": EventRule(
        _t("Started", "Skipped", "Completed"),
        {"actor": _t("Person"), "object": _t("AssessmentItem"), "referrer": _t("AssessmentItem")},
        by_action={
            "Started": {"generated": _t("Attempt")},
            "Skipped": {"generated": _t("Attempt")},
            "Completed": {"generated": _t("Response")},
        },
    ),
    "SessionEvent": EventRule(
        _t("LoggedIn", "LoggedOut", "TimedOut"),
        {"referrer": _t("DigitalResource", "SoftwareApplication")},
        by_action={
            "LoggedIn": {"actor": _t("Person"), "object": _t("SoftwareApplication"), "target": _DR},
            "LoggedOut": {"actor": _t("Person"), "object": _t("SoftwareApplication")},
            "TimedOut": {"actor": _t("SoftwareApplication"), "object": _t("Session")},
        },
    ),
    "ViewEvent": EventRule(
        _t("Viewed"),
        {"actor": _t("Person"), "object": _DR},
        by_profile={**_RESOURCE_BY_PROFILE, "GradingProfile": {"object": _t("Result")}},
    ),
    "NavigationEvent": EventRule(
        _t("NavigatedTo"),
        {
            "actor": _t("Person"),
            "object": _t("DigitalResource", "SoftwareApplication"),
            "target": _DR,
            "referrer": _t("DigitalResource", "SoftwareApplication"),
        },
        by_profile=_RESOURCE_BY_PROFILE,
    ),
    "AssignableEvent": EventRule(
        _t("Activated", "Deactivated", "Started", "Completed", "Submitted", "Reviewed"),
        {
            "actor": _t("Person"),
            "object": _t("AssignableDigitalResource"),
            "generated": _t("Attempt"),
        },
    ),
    "ToolUseEvent": EventRule(
        _t("Used"),
        {
            "actor": _t("Person"),
            "object": _t("SoftwareApplication"),
            "target": _t("SoftwareApplication"),
            "generated": _t("AggregateMeasureCollection"),
        },
    ),
    "MediaEvent": EventRule(
        _MEDIA_ACTIONS,
        {"actor": _t("Person"), "object": _t("MediaObject"), "target": _t("MediaLocation")},
    ),
    "Event": EventRule(None),
}


@cache
def constraints(type_: str, action: str | None, profile: str | None) -> dict[str, Types]:
    """Allowed types of each entity-valued property of one (type, action, profile) event."""
    allowed = dict(EVENT_ENTITY_PROPS)
    rule = RULES.get(type_)
    if rule is not None:
        allowed.update(rule.props)
        allowed.update(rule.by_action.get(action or "", {}))
        allowed.update(rule.by_profile.get(profile or "", {}))
    return allowed


def allowed_actions(type_: str) -> Types | None:
    """The actions allowed for an event type; None when any Appendix D action is allowed."""
    rule = RULES.get(type_)
    return rule.actions if rule is not None else None
