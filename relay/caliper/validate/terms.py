"""Caliper v1p2 vocabulary the checker needs: terms, the type hierarchy, property kinds, profiles.

Everything is a frozenset or a dict built once at import; the checker only does lookups.
Sources: the spec's Appendices A, B, D and E (docs/caliper-rules.md#term-lists).
"""

from __future__ import annotations

import re
from typing import Final

CONTEXT: Final = "http://purl.imsglobal.org/ctx/caliper/v1p2"

# --- formats (docs/caliper-rules.md#formats) ------------------------------------------------------
EVENT_ID: Final = re.compile(
    r"urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-[1-5][0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}\Z"
)
DATETIME: Final = re.compile(r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})\.\d{3}Z\Z")
DURATION: Final = re.compile(
    r"P(?!\Z)(\d+Y)?(\d+M)?(\d+W)?(\d+D)?(T(?=\d)(\d+H)?(\d+M)?(\d+(\.\d+)?S)?)?\Z"
)
# An absolute IRI (scheme, no whitespace) or a blank node; urn: is a scheme like any other.
ENTITY_IRI: Final = re.compile(r"(?:[A-Za-z][A-Za-z0-9+.\-]*:|_:)[^\s<>\"{}|\\^`]+\Z")

# --- events -----------------------------------------------------------------------------------
EVENT_TYPES: Final = frozenset(
    {
        "Event", "AnnotationEvent", "AssessmentEvent", "AssessmentItemEvent", "AssignableEvent",
        "FeedbackEvent", "ForumEvent", "GradeEvent", "MediaEvent", "MessageEvent",
        "NavigationEvent", "QuestionnaireEvent", "QuestionnaireItemEvent",
        "ResourceManagementEvent", "SearchEvent", "SessionEvent", "SurveyEvent",
        "SurveyInvitationEvent", "ThreadEvent", "ToolLaunchEvent", "ToolUseEvent", "ViewEvent",
    }
)  # fmt: skip

REQUIRED_EVENT_PROPS: Final = ("id", "type", "actor", "action", "object", "eventTime")
# Entity-valued event properties and the type each must be (or descend from) in any event.
EVENT_ENTITY_PROPS: Final[dict[str, frozenset[str]]] = {
    "actor": frozenset({"Agent"}),
    "object": frozenset({"Entity"}),
    "generated": frozenset({"Entity"}),
    "target": frozenset({"Entity"}),
    "referrer": frozenset({"Entity"}),
    "edApp": frozenset({"SoftwareApplication"}),
    "group": frozenset({"Organization"}),
    "membership": frozenset({"Membership"}),
    "session": frozenset({"Session"}),
    "federatedSession": frozenset({"LtiSession"}),
}
EVENT_PROPS: Final = frozenset(
    {"@context", "id", "type", "action", "eventTime", "profile", "extensions", *EVENT_ENTITY_PROPS}
)

# Appendix D: all 80 action terms (docs/caliper-rules.md#term-lists).
ACTIONS: Final = frozenset(
    """
    Abandoned Accepted Activated Added Archived Attached Bookmarked ChangedResolution ChangedSize
    ChangedSpeed ChangedVolume Classified ClosedPopout Commented Completed Copied Created
    Deactivated Declined Deleted Described DisabledClosedCaptioning Disliked Downloaded
    EnabledClosedCaptioning Ended EnteredFullScreen ExitedFullScreen ForwardedTo Graded Hid
    Highlighted Identified JumpedTo Launched Liked Linked LoggedIn LoggedOut MarkedAsRead
    MarkedAsUnread Modified Muted NavigatedTo OpenedPopout OptedIn OptedOut Paused Posted Printed
    Published Questioned Ranked Recommended Removed Reset Restarted Restored Resumed Retrieved
    Returned Reviewed Rewound Saved Searched Sent Shared Showed Skipped Started Submitted
    Subscribed Tagged TimedOut Unmuted Unpublished Unsubscribed Uploaded Used Viewed
    """.split()
)

# §4: profile -> the event types it governs.
PROFILES: Final[dict[str, frozenset[str]]] = {
    "AnnotationProfile": frozenset({"AnnotationEvent"}),
    "AssessmentProfile": frozenset(
        {"AssessmentEvent", "AssessmentItemEvent", "NavigationEvent", "ViewEvent"}
    ),
    "AssignableProfile": frozenset({"AssignableEvent", "NavigationEvent", "ViewEvent"}),
    "FeedbackProfile": frozenset({"FeedbackEvent"}),
    "ForumProfile": frozenset(
        {"ForumEvent", "MessageEvent", "ThreadEvent", "NavigationEvent", "ViewEvent"}
    ),
    "GradingProfile": frozenset({"GradeEvent", "ViewEvent"}),
    "MediaProfile": frozenset({"MediaEvent", "NavigationEvent", "ViewEvent"}),
    "ReadingProfile": frozenset({"NavigationEvent", "ViewEvent"}),
    "ResourceManagementProfile": frozenset({"ResourceManagementEvent"}),
    "SearchProfile": frozenset({"SearchEvent"}),
    "SessionProfile": frozenset({"SessionEvent"}),
    "SurveyProfile": frozenset(
        {
            "SurveyEvent",
            "SurveyInvitationEvent",
            "QuestionnaireEvent",
            "QuestionnaireItemEvent",
            "NavigationEvent",
            "ViewEvent",
        }
    ),
    "ToolLaunchProfile": frozenset({"ToolLaunchEvent"}),
    "ToolUseProfile": frozenset({"ToolUseEvent"}),
    "GeneralProfile": frozenset({"Event"}),
}

# --- entities: the type hierarchy (Appendix B) ------------------------------------------------
_PARENTS: Final[dict[str, tuple[str, ...]]] = {
    "Entity": (),
    "Agent": ("Entity",),
    "Person": ("Agent",),
    "SoftwareApplication": ("Agent",),
    "Organization": ("Agent",),
    "CourseOffering": ("Organization",),
    "CourseSection": ("CourseOffering",),
    "Group": ("Organization",),
    "DigitalResource": ("Entity",),
    "AssignableDigitalResource": ("DigitalResource",),
    "DigitalResourceCollection": ("DigitalResource",),
    "Assessment": ("AssignableDigitalResource", "DigitalResourceCollection"),
    "AssessmentItem": ("AssignableDigitalResource",),
    "Chapter": ("DigitalResource",),
    "Document": ("DigitalResource",),
    "Frame": ("DigitalResource",),
    "Page": ("DigitalResource",),
    "WebPage": ("DigitalResource",),
    "LtiLink": ("DigitalResource",),
    "MediaLocation": ("DigitalResource",),
    "MediaObject": ("DigitalResource",),
    "AudioObject": ("MediaObject",),
    "ImageObject": ("MediaObject",),
    "VideoObject": ("MediaObject",),
    "Forum": ("DigitalResourceCollection",),
    "Thread": ("DigitalResourceCollection",),
    "Message": ("DigitalResource",),
    "Questionnaire": ("DigitalResourceCollection",),
    "QuestionnaireItem": ("DigitalResource",),
    "Survey": ("Collection",),
    "Collection": ("Entity",),
    "Attempt": ("Entity",),
    "Score": ("Entity",),
    "Result": ("Entity",),
    "Response": ("Entity",),
    "FillinBlankResponse": ("Response",),
    "MultipleChoiceResponse": ("Response",),
    "MultipleResponseResponse": ("Response",),
    "SelectTextResponse": ("Response",),
    "TrueFalseResponse": ("Response",),
    "DateTimeResponse": ("Response",),
    "MultiselectResponse": ("Response",),
    "OpenEndedResponse": ("Response",),
    "RatingScaleResponse": ("Response",),
    "Session": ("Entity",),
    "LtiSession": ("Session",),
    "Membership": ("Entity",),
    "Annotation": ("Entity",),
    "BookmarkAnnotation": ("Annotation",),
    "HighlightAnnotation": ("Annotation",),
    "SharedAnnotation": ("Annotation",),
    "TagAnnotation": ("Annotation",),
    "AggregateMeasure": ("Entity",),
    "AggregateMeasureCollection": ("Collection",),
    "Comment": ("Entity",),
    "Rating": ("Entity",),
    "LearningObjective": ("Entity",),
    "Link": ("Entity",),
    "Query": ("Entity",),
    "SearchResponse": ("Entity",),
    "SurveyInvitation": ("Entity",),
    "Question": ("Entity",),
    "DateTimeQuestion": ("Question",),
    "MultiselectQuestion": ("Question",),
    "OpenEndedQuestion": ("Question",),
    "RatingScaleQuestion": ("Question",),
    "Scale": ("Entity",),
    "LikertScale": ("Scale",),
    "MultiselectScale": ("Scale",),
    "NumericScale": ("Scale",),
    "SystemIdentifier": (),
}


def _ancestors(name: str) -> frozenset[str]:
    seen = {name}
    for parent in _PARENTS[name]:
        seen |= _ancestors(parent)
    return frozenset(seen)


# type -> itself and every supertype; "is X a Y" is ``Y in IS_A[X]``.
IS_A: Final[dict[str, frozenset[str]]] = {name: _ancestors(name) for name in _PARENTS}

# --- entity properties ------------------------------------------------------------------------
DATETIME_PROPS: Final = frozenset(
    {
        "dateCreated", "dateModified", "datePublished", "startedAtTime", "endedAtTime",
        "dateToActivate", "dateToShow", "dateToStartOn", "dateToSubmit",
    }
)  # fmt: skip
DURATION_PROPS: Final = frozenset({"duration", "currentTime"})
DECIMAL_PROPS: Final = frozenset(
    {"scoreGiven", "maxScore", "resultScore", "maxResultScore", "metricValue", "maxMetricValue"}
)
INTEGER_PROPS: Final = frozenset({"count", "maxAttempts", "maxSubmits"})
STRING_PROPS: Final = frozenset(
    {
        "name", "description", "comment", "version", "courseNumber", "academicSession",
        "category", "mediaType", "storageName", "host", "ipAddress", "userAgent",
    }
)  # fmt: skip
BOOLEAN_PROPS: Final = frozenset({"isTimeDependent"})
OBJECT_PROPS: Final = frozenset({"extensions", "messageParameters"})
# Entity-valued properties and the type their value must have.
ENTITY_REFS: Final[dict[str, frozenset[str]]] = {
    "assignee": frozenset({"Person"}),
    "assignable": frozenset({"DigitalResource"}),
    "attempt": frozenset({"Attempt"}),
    "scoredBy": frozenset({"Agent"}),
    "user": frozenset({"Person"}),
    "client": frozenset({"SoftwareApplication"}),
    "member": frozenset({"Person"}),
    "organization": frozenset({"Organization"}),
    "subOrganizationOf": frozenset({"Organization"}),
    "isPartOf": frozenset({"Entity"}),
}
# (owner type, property) pairs narrower than ENTITY_REFS.
ENTITY_REFS_BY_OWNER: Final[dict[tuple[str, str], frozenset[str]]] = {
    ("Attempt", "isPartOf"): frozenset({"Attempt"}),
}
ENTITY_LIST_REFS: Final[dict[str, frozenset[str]]] = {
    "items": frozenset({"Entity"}),
    "creators": frozenset({"Agent"}),
    "members": frozenset({"Agent"}),
    "learningObjectives": frozenset({"LearningObjective"}),
}

SYSTEM_IDENTIFIER_TYPES: Final = frozenset(
    {
        "AccountUserName", "CaseItemUri", "EmailAddress", "LisSourcedId", "LtiContextId",
        "LtiDeploymentId", "LtiPlatformId", "LtiToolId", "LtiUserId", "OneRosterSourcedId",
        "Other", "SisSourcedId", "SystemId",
    }
)  # fmt: skip

# The complete property lists of the types the relay emits: any other key on one of these is a
# custom property that belongs in ``extensions`` (S §2.2). Types not listed are not checked.
_ENTITY_BASE: Final = frozenset(
    {"id", "type", "name", "description", "dateCreated", "dateModified", "extensions",
     "otherIdentifiers"}
)  # fmt: skip
_DIGITAL_RESOURCE: Final = _ENTITY_BASE | {
    "creators", "mediaType", "keywords", "learningObjectives", "isPartOf", "datePublished",
    "version", "storageName",
}  # fmt: skip
_ASSIGNABLE: Final = _DIGITAL_RESOURCE | {
    "dateToActivate", "dateToShow", "dateToStartOn", "dateToSubmit", "maxAttempts", "maxSubmits",
    "maxScore",
}  # fmt: skip
KNOWN_PROPS: Final[dict[str, frozenset[str]]] = {
    "Person": _ENTITY_BASE,
    "SoftwareApplication": _ENTITY_BASE | {"version", "host", "ipAddress", "userAgent"},
    "DigitalResource": _DIGITAL_RESOURCE,
    "AssignableDigitalResource": _ASSIGNABLE,
    "Assessment": _ASSIGNABLE | {"items"},
    "AssessmentItem": _ASSIGNABLE | {"isTimeDependent"},
    "Attempt": _ENTITY_BASE
    | {"assignee", "assignable", "count", "startedAtTime", "endedAtTime", "duration", "isPartOf"},
    "Score": _ENTITY_BASE | {"attempt", "maxScore", "scoreGiven", "scoredBy", "comment"},
    "Result": _ENTITY_BASE | {"attempt", "maxResultScore", "resultScore", "scoredBy", "comment"},
    "Response": _ENTITY_BASE | {"attempt", "startedAtTime", "endedAtTime", "duration"},
    "Session": _ENTITY_BASE | {"user", "client", "startedAtTime", "endedAtTime", "duration"},
}
