"""Course and subject of an activity: from the record, the course map file, or the rostering API.

Resolution order (issue 4, docs/architecture.md#decisions-and-why):

1. the record's own ``course_id`` (a sourcedId or a CRS IRI) and ``subject``;
2. the course map file (``RELAY_COURSE_MAP``): the first course whose activity-id patterns match,
   else the map's default course; the subject listed for that course;
3. the rostering API, ``GET /rostering/1.0/courses/{id}``: its free-text ``subjects`` normalised
   onto the enum (the first that maps wins). Cached with a TTL (404s too); concurrent misses for
   one key share a single request.

Which records need what (each record type's ``COURSE`` in ``relay.contract.activity`` says):
XpEarned, AssessmentProgress and QuestionAnswered (Grade, Assessment and AssessmentItem events)
need both, or are rejected (stage ``enrich``); ResourceViewed gets whatever resolves (failures
leave the extensions out); SessionChanged never gets either.

Rejections: ``course-unresolved`` (no course anywhere), ``course-invalid`` (the record's course is
an IRI that is not a course IRI), ``subject-invalid`` (a subject that is not in the enum and no
alias of it), ``subject-unresolved`` (no subject anywhere, or none of the course's subjects maps),
``course-not-owned`` (the rostering API answers 404 for the course: unknown or not ours), and with
``RELAY_PREFLIGHT=course+student``: ``student-unknown`` (404 for the student). With
``RELAY_PREFLIGHT=course`` or ``course+student`` the course is looked up even when the record or
the map gives the subject, because the API would otherwise accept the event (202) and drop it.

Course map file (YAML)::

    courses:                       # checked in order; the first matching pattern wins
      - id: math-g5                # a course sourcedId (or its CRS IRI)
        subject: Math              # optional: else the rostering API is asked
        activities:                # glob patterns (fnmatch, case-sensitive) on the activity id
          - "math5/*"              #   exactly as the record gives it (local id or IRI)
          - "https://app.example.com/math5/*"
    default:                       # optional: the course when no pattern matches
      id: general                  #   (or just `default: general`)
      subject: None
    subject_aliases:               # optional: free text (any case) -> a subject of the enum
      Maths 5: Math

Patterns are matched against the assessment before the item for QuestionAnswered.

Subject normalisation (rostering ``subjects``, record subjects, aliases): case, ``-``, ``_`` and
repeated spaces are ignored; an exact enum value wins; then the file's aliases; then built-in
aliases: Mathematics/Maths -> Math, Math Facts/Fast Math -> FastMath, ELA/English/English Language
Arts/Language Arts -> Language, Vocab -> Vocabulary, History/Civics/Geography/Social Science ->
Social Studies, Composition -> Writing, Biology/Chemistry/Physics -> Science. A result counts only
if it is in the configured enum (``RELAY_SUBJECTS``).
"""

from relay.courses.cache import TtlCache
from relay.courses.coursemap import CourseEntry, CourseMap, SubjectNormalizer
from relay.courses.resolver import (
    CourseContext,
    CourseLookup,
    CourseResolver,
    Observer,
    Preflight,
)

__all__ = [
    "CourseContext",
    "CourseEntry",
    "CourseLookup",
    "CourseMap",
    "CourseResolver",
    "Observer",
    "Preflight",
    "SubjectNormalizer",
    "TtlCache",
]
