"""The benchmark's compiled helpers (bench/go: the accept-everything sink, the bare load client,
the compiled peer relay), built with ``go build`` from the Go module proxy on first use.

    python -m bench.gobuild        # what ``make bench-go`` runs; prints the binary's path

The binary is rebuilt when a source file is newer than it; go.sum pins the modules.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

SOURCE = Path(__file__).resolve().parent / "go"
BINARY = SOURCE / "bin" / "benchgo"


def _stale() -> bool:
    if not BINARY.exists():
        return True
    built = BINARY.stat().st_mtime
    sources = [*SOURCE.glob("*.go"), SOURCE / "go.mod", SOURCE / "go.sum"]
    return any(p.stat().st_mtime > built for p in sources)


def binary() -> Path:
    """The benchgo binary, built first if missing or older than its sources."""
    if not _stale():
        return BINARY
    go = shutil.which("go")
    if go is None:
        raise RuntimeError("go not found: the benchmark's sink and peer need Go 1.26 (bench/go)")
    env = dict(os.environ, GOFLAGS="-mod=readonly", CGO_ENABLED="0")
    done = subprocess.run([go, "build", "-o", str(BINARY), "."], cwd=SOURCE, env=env,
                          capture_output=True, text=True, timeout=600)  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"go build in {SOURCE} failed:\n{done.stderr[-2000:]}")
    return BINARY


if __name__ == "__main__":
    print(binary())
    sys.exit(0)
