"""Another revision of the relay, checked out beside this one, for side-by-side drains.

    python -m bench.ab as-is,rev:ae463b3 10000 3
    python -m bench.ab rev:ae463b3+null-agent,null-agent 6000 4   # with a bench variant


``rev:<ref>`` runs ``relay run`` from a copy of that commit's tree (``git archive``, cached under
~/.cache/timeback-relay/revisions/<sha>), with this checkout's virtualenv: the same libraries, the
relay's own code as it was then. The copy comes first on ``sys.path`` (the working directory of
``python -m``), ahead of the editable install of this checkout. A change measured this way is
measured as committed, without keeping the old code alive as a patch in bench/variants.py.
``rev:<ref>+<variant>`` patches that commit with a variant of bench/variants.py (this checkout's),
so that, say, faust's share alone (``null-agent``) is compared across commits in one run.
"""

from __future__ import annotations

import io
import subprocess
import tarfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CACHE = Path.home() / ".cache" / "timeback-relay" / "revisions"
PREFIX = "rev:"


def is_revision(variant: str | None) -> bool:
    return variant is not None and variant.startswith(PREFIX)


def split(variant: str) -> tuple[str, str | None]:
    """``rev:<ref>+<variant>`` -> (``rev:<ref>``, ``<variant>``); without ``+``, no variant."""
    revision, _, patch = variant.partition("+")
    return revision, patch or None


def checkout(variant: str) -> Path:
    """The tree of ``rev:<ref>`` (any commit-ish git knows), extracted once per commit."""
    ref = variant.removeprefix(PREFIX)
    sha = _git("rev-parse", "--verify", f"{ref}^{{commit}}").decode().strip()
    tree = CACHE / sha
    if not (tree / "relay" / "__init__.py").exists():
        tree.mkdir(parents=True, exist_ok=True)
        with tarfile.open(fileobj=io.BytesIO(_git("archive", sha, "relay", "schemas"))) as archive:
            archive.extractall(tree, filter="data")
    return tree


def _git(*args: str) -> bytes:
    try:
        return subprocess.run(["git", *args], cwd=ROOT, check=True, capture_output=True).stdout
    except subprocess.CalledProcessError as exc:
        raise SystemExit(f"git {' '.join(args)}: {exc.stderr.decode().strip()}") from None
