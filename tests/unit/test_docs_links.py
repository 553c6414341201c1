"""The repository stands alone: its files cite its own docs, and the docs' links lead somewhere.

- No file outside docs/history/ cites the design notes the project started from (they are not in
  the repository; docs/partner-api.md and docs/caliper-rules.md say the same in our words).
- Every relative link in README.md and docs/*.md names a file that exists, and a ``#fragment``
  on a Markdown page names one of its headings (GitHub's anchors).
- Every ``docs/<page>.md#anchor`` cited in code, tests or deploy files names a page that exists
  and a heading on it.

Files come from ``git ls-files`` (tracked, plus new files not ignored), so build outputs and
virtualenvs are never read.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SELF = Path(__file__).resolve().relative_to(ROOT).as_posix()  # names the patterns it looks for

# Pages other branches are still writing; the lead empties this list once they are merged.
NOT_YET_WRITTEN: frozenset[str] = frozenset()  # pages linked before they are written
HISTORY = "docs/history/"  # kept as written at the time, citations and all

# The notes' file names exactly as they were cited (upper case), or any path into their folder.
SHARED_CITATION = re.compile(
    r"\.\./shared\b|/work/shared\b|(?<![\w-])(?:TIMEBACK|CALIPER|DESIGN|KAFKA-LOCAL|REGISTRY)\.md\b"
)
# [text](target) and [text](target "title"); reference definitions [label]: target
INLINE_LINK = re.compile(r"\[[^\]]*\]\(\s*([^)\s]+)(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE_LINK = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*(\S+)", re.MULTILINE)
EXTERNAL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")  # https:, mailto: ...
FENCE = re.compile(r"^\s{0,3}(```|~~~)")
CODE_SPAN = re.compile(r"(`+).+?\1")
HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.*?)\s*#*\s*$")
HTML_ANCHOR = re.compile(r"<a\s+(?:id|name)=\"([^\"]+)\"")
DOC_CITATION = re.compile(r"(?<![\w.-])(docs/[\w.-]+\.md)(?:#([\w-]+))?")


@cache
def repo_files() -> tuple[str, ...]:
    """Tracked files and new ones not ignored, as repository-relative POSIX paths."""
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("needs a git checkout: the file list comes from git ls-files")
    out = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout
    names = {name for name in out.decode().split("\0") if name}
    return tuple(sorted(name for name in names if (ROOT / name).is_file()))


def text_of(name: str) -> str | None:
    """The file's text, or None for a binary file."""
    data = (ROOT / name).read_bytes()
    return None if b"\0" in data else data.decode("utf-8", errors="replace")


def markdown_pages() -> list[str]:
    return [n for n in repo_files() if n == "README.md" or re.fullmatch(r"docs/[^/]+\.md", n)]


def outside_fences(markdown: str) -> list[str]:
    """The lines of a Markdown text that are not in fenced code blocks."""
    kept: list[str] = []
    fence: str | None = None
    for line in markdown.splitlines():
        opening = FENCE.match(line)
        if fence is not None:
            if opening and opening.group(1) == fence:
                fence = None
            continue
        if opening:
            fence = opening.group(1)
            continue
        kept.append(line)
    return kept


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, each space a hyphen."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link keeps its text
    text = re.sub(r"[^\w\- ]", "", text.lower())
    return text.replace(" ", "-")


@cache
def anchors(name: str) -> frozenset[str]:
    """The anchors of one Markdown page: its headings (repeats get -1, -2 ...) and <a id>s."""
    markdown = (ROOT / name).read_text(encoding="utf-8")
    found: set[str] = set(HTML_ANCHOR.findall(markdown))
    seen: dict[str, int] = {}
    for line in outside_fences(markdown):
        match = HEADING.match(line)
        if match is None:
            continue
        base = slug(match.group(1))
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return frozenset(found)


def broken_target(page: str, fragment: str | None) -> str | None:
    """Why ``page#fragment`` (repository-relative) leads nowhere, or None when it is fine."""
    if page in NOT_YET_WRITTEN and not (ROOT / page).exists():
        return None
    path = ROOT / page
    if not path.exists():
        return "no such file"
    if fragment and path.suffix == ".md" and path.is_file() and fragment not in anchors(page):
        return f"no heading with the anchor #{fragment}"
    return None


def links_of(markdown: str) -> list[str]:
    """The link targets of a Markdown text, outside code blocks and code spans."""
    text = "\n".join(CODE_SPAN.sub("", line) for line in outside_fences(markdown))
    return INLINE_LINK.findall(text) + REFERENCE_LINK.findall(text)


def resolve(page: str, target: str) -> tuple[str, str | None]:
    """A link target on ``page`` as a repository-relative path and its fragment."""
    path, _, fragment = target.partition("#")
    path = path.split("?", 1)[0]
    if not path:
        return page, fragment or None
    resolved = (ROOT / page).parent.joinpath(path).resolve()
    try:
        return resolved.relative_to(ROOT).as_posix(), fragment or None
    except ValueError:
        return str(resolved), fragment or None  # outside the repository: reported as missing


def test_nothing_cites_the_notes_outside_the_repository() -> None:
    hits = []
    for name in repo_files():
        if name.startswith(HISTORY) or name == SELF:
            continue
        text = text_of(name)
        if text is None:
            continue
        for number, line in enumerate(text.splitlines(), 1):
            if SHARED_CITATION.search(line):
                hits.append(f"{name}:{number}: {line.strip()}")
    assert hits == [], "cite docs/partner-api.md, docs/caliper-rules.md or docs/architecture.md"


def test_relative_links_in_the_docs_lead_to_files_and_headings() -> None:
    pages = markdown_pages()
    assert "README.md" in pages and "docs/README.md" in pages
    broken = []
    for page in pages:
        for target in links_of((ROOT / page).read_text(encoding="utf-8")):
            if EXTERNAL.match(target):
                continue
            path, fragment = resolve(page, target)
            reason = broken_target(path, fragment)
            if reason:
                broken.append(f"{page}: ({target}): {reason}")
    assert broken == []


def test_docs_cited_in_code_exist_with_their_headings() -> None:
    broken = []
    for name in repo_files():
        if name.startswith("docs/") or name == SELF:
            continue
        text = text_of(name)
        if text is None:
            continue
        for number, line in enumerate(text.splitlines(), 1):
            for page, fragment in DOC_CITATION.findall(line):
                reason = broken_target(page, fragment or None)
                if reason:
                    broken.append(f"{name}:{number}: {page}#{fragment}: {reason}")
    assert broken == []


@pytest.mark.parametrize(
    ("heading", "anchor"),
    [
        ("Partner API answers", "partner-api-answers"),
        ("The TimeBack sandbox and `relay smoke`", "the-timeback-sandbox-and-relay-smoke"),
        ("Sandbox: events", "sandbox-events"),
        ("Before a rollout: `relay check`", "before-a-rollout-relay-check"),
        ("Same event id, different body", "same-event-id-different-body"),
        ("a - b", "a---b"),
        ("[Linked](x.md) title", "linked-title"),
    ],
)
def test_anchors_follow_github(heading: str, anchor: str) -> None:
    assert slug(heading) == anchor


def test_the_checks_catch_what_they_are_for() -> None:
    # The patterns themselves, on lines they must and must not flag.
    assert SHARED_CITATION.search("see ../shared/TIMEBACK.md")
    assert SHARED_CITATION.search("(CALIPER.md §5)")
    assert not SHARED_CITATION.search("docs/schema-registry.md")
    assert not SHARED_CITATION.search("deploy/local/kafka/kafka-local.sh")
    assert INLINE_LINK.findall('[a](b.md#c), ![d](e.svg) and [g](h.md "t")') == [
        "b.md#c",
        "e.svg",
        "h.md",
    ]
    assert links_of("```\n[x](nowhere.md)\n```\n`[y](nowhere.md)` [z](there.md)") == ["there.md"]
    assert broken_target("docs/no-such-page.md", None) == "no such file"
    assert broken_target("docs/README.md", "no-such-heading")
    assert broken_target("docs/README.md", None) is None
