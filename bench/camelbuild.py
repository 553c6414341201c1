"""The S7 peer's Apache Camel route (bench/camel), built with Maven from Maven Central on first
use, like the Kafka broker's jars (deploy/local/kafka).

    python -m bench.camelbuild     # what ``make bench-camel`` runs; prints the class path

``mvn package`` compiles the route into target/camel-peer.jar and copies its runtime jars
(camel-main, camel-kafka, camel-http 4.14.0, slf4j-simple and their dependencies) into
target/lib; it reruns when a source or the POM is newer than the jar.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

PROJECT = Path(__file__).resolve().parent / "camel"
JAR = PROJECT / "target" / "camel-peer.jar"
LIB = PROJECT / "target" / "lib"
MAIN_CLASS = "timeback.bench.CamelPeer"


def _stale() -> bool:
    if not JAR.exists() or not LIB.is_dir():
        return True
    built = JAR.stat().st_mtime
    sources = [PROJECT / "pom.xml", *(PROJECT / "src").rglob("*")]
    return any(p.is_file() and p.stat().st_mtime > built for p in sources)


def classpath() -> str:
    """The route's class path (its jar, then target/lib/*), built first if missing or stale."""
    if _stale():
        _build()
    return os.pathsep.join([str(JAR), str(LIB / "*")])


def _build() -> None:
    for tool in ("mvn", "java"):
        if shutil.which(tool) is None:
            needs = "a JDK 17+ and Apache Maven (apt-get install openjdk-17-jdk-headless maven)"
            raise RuntimeError(f"{tool} not found: the S7 Camel peer (bench/camel) needs {needs}")
    command = ["mvn", "-B", "-q", "-f", str(PROJECT / "pom.xml"), "package"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=900)
    if done.returncode != 0 or not JAR.exists():
        raise RuntimeError(
            f"mvn package in {PROJECT} failed:\n{(done.stdout + done.stderr)[-2000:]}"
        )
    JAR.touch()  # newer than every source even when Maven found nothing to recompile


if __name__ == "__main__":
    print(classpath())
    sys.exit(0)
