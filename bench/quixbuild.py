"""The S9 peer's virtualenv (bench/quix/.venv): Quix Streams and httpx from PyPI, on first use.

    python -m bench.quixbuild      # what ``make bench-quix`` runs; prints the interpreter's path

quixstreams 3.28 pins confluent-kafka < 2.13 while the relay runs a newer one, so the peer gets an
environment of its own (bench/quix/requirements.txt). It is rebuilt when the requirements file is
newer than the environment's stamp.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

PROJECT = Path(__file__).resolve().parent / "quix"
REQUIREMENTS = PROJECT / "requirements.txt"
VENV = PROJECT / ".venv"
PYTHON = VENV / "bin" / "python"
APP = PROJECT / "peer.py"
STAMP = VENV / ".installed"


def built() -> bool:
    """The environment exists and is not older than its requirements."""
    return STAMP.exists() and STAMP.stat().st_mtime >= REQUIREMENTS.stat().st_mtime


def python() -> Path:
    """The peer's interpreter, the environment built first if missing or stale."""
    if not built():
        _build()
    return PYTHON


def _build() -> None:
    steps = [
        [sys.executable, "-m", "venv", "--clear", str(VENV)],
        [str(PYTHON), "-m", "pip", "install", "-q", "--upgrade", "pip"],
        [str(PYTHON), "-m", "pip", "install", "-q", "-r", str(REQUIREMENTS)],
    ]
    for command in steps:
        done = subprocess.run(command, capture_output=True, text=True, timeout=900)
        if done.returncode != 0:
            raise RuntimeError(
                f"building the S9 Quix peer's environment ({' '.join(command[-3:])}) failed:\n"
                f"{(done.stdout + done.stderr)[-2000:]}"
            )
    STAMP.touch()


if __name__ == "__main__":
    print(python())
    sys.exit(0)
