"""The processes a scenario needs: a Kafka broker, a sandbox, the relay; each stopped by its pid.

The sandbox runs in its own process (``relay sandbox``) so it never shares a GIL with the load
generator or the relay: on two cores, the sink's capacity and the relay's throughput are then
limited by the same things (one core for the sink, one for the client side).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
from confluent_kafka.admin import AdminClient, NewTopic

from bench import revisions
from bench.common import ACTIVITY_BASE, APP_ID, CLIENT_ID, CLIENT_SECRET, say
from bench.ports import free_port, free_ports

ROOT = Path(__file__).resolve().parents[1]
KAFKA_SCRIPT = ROOT / "deploy" / "local" / "kafka" / "kafka-local.sh"
WORK = ROOT / "bench" / "results" / "run"  # logs of the processes of the last run


def _answers(bootstrap: str) -> bool:
    host, _, port = bootstrap.split(",")[0].rpartition(":")
    with contextlib.suppress(OSError), socket.create_connection((host, int(port)), timeout=2):
        return True
    return False


@contextlib.contextmanager
def kafka_broker() -> Iterator[str]:
    """The broker at RELAY_KAFKA_BOOTSTRAP (default 127.0.0.1:9092) if one answers; else one of
    our own on free ports in a temporary directory, stopped at the end."""
    bootstrap = os.environ.get("RELAY_KAFKA_BOOTSTRAP", "127.0.0.1:9092")
    if _answers(bootstrap):
        say(f"kafka: using the broker at {bootstrap}")
        yield bootstrap
        return
    with tempfile.TemporaryDirectory(prefix="bench-kafka-") as run_dir:
        broker_port, controller_port = free_ports(2)
        env = dict(
            os.environ,
            KAFKA_RUN_DIR=run_dir,
            KAFKA_PORT=str(broker_port),
            KAFKA_CONTROLLER_PORT=str(controller_port),
        )
        say(f"kafka: no broker at {bootstrap}; starting one on port {env['KAFKA_PORT']}")
        subprocess.run([str(KAFKA_SCRIPT), "start"], env=env, check=True, timeout=900)
        try:
            yield f"127.0.0.1:{env['KAFKA_PORT']}"
        finally:
            subprocess.run([str(KAFKA_SCRIPT), "stop"], env=env, check=False, timeout=120)


class Topics:
    """Uniquely named topics for one run, deleted at the end (best effort)."""

    def __init__(self, bootstrap: str) -> None:
        self.admin = AdminClient({"bootstrap.servers": bootstrap})
        self.run = uuid.uuid4().hex[:8]
        self.created: list[str] = []

    def create(self, name: str, partitions: int) -> str:
        # Kafka topic names: ASCII letters, digits, '.', '_' and '-' only
        safe = "".join(c if c.isascii() and (c.isalnum() or c in "._-") else "_" for c in name)
        topic = f"bench-{self.run}-{safe}"
        futures = self.admin.create_topics([NewTopic(topic, partitions, 1)], operation_timeout=30)
        futures[topic].result(timeout=60)
        self.created.append(topic)
        return topic

    def delete_all(self) -> None:
        if not self.created:
            return
        for future in self.admin.delete_topics(self.created, operation_timeout=30).values():
            with contextlib.suppress(Exception):  # a leftover topic only costs disk
                future.result(timeout=30)


def _cpu_ticks(stat: Path) -> int:
    """utime + stime (clock ticks) of a /proc ``stat`` file, a process's or one thread's."""
    fields = stat.read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


class Child:
    """A subprocess of ours, in its own session, logging to a file; stopped by its pid only."""

    def __init__(
        self,
        name: str,
        argv: list[str],
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
        stdin: int | None = None,
    ) -> None:
        WORK.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.log_path = WORK / f"{name}.log"
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            argv,
            env=env,
            cwd=cwd,
            stdin=stdin,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def check_alive(self) -> None:
        if not self.alive():
            tail = self.log_path.read_text(errors="replace").splitlines()[-20:]
            code = self.proc.returncode
            raise RuntimeError(f"{self.name} exited with {code}:\n" + "\n".join(tail))

    def stop(self, grace: float = 30.0) -> None:
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self._log.close()

    def cpu_seconds(self) -> float:
        """User + system CPU time the process has used so far (/proc/<pid>/stat)."""
        return _cpu_ticks(Path(f"/proc/{self.pid}/stat")) / os.sysconf("SC_CLK_TCK")

    def jit_cpu_seconds(self) -> float:
        """CPU of the process's JIT compiler threads so far: 0 for a process without a JIT."""
        return 0.0

    def status(self, field: str) -> int:
        """A ``/proc/<pid>/status`` figure in kB (VmHWM: peak resident set, VmRSS: now)."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
        raise KeyError(field)


class Sandbox(Child):
    """``relay sandbox`` in its own process, with processing on (a delay after the 202);
    ``max_events_per_request`` above 1 lets it take envelopes of that many events."""

    def __init__(
        self, name: str, processing_delay: float = 0.5, max_events_per_request: int = 1
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        argv = [sys.executable, "-m", "relay.cli", "sandbox", "--port", str(self.port),
                "--processing-delay", str(processing_delay), "--seed", "1",
                "--max-events-per-request", str(max_events_per_request)]  # fmt: skip
        super().__init__(name, argv)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            self.check_alive()
            with contextlib.suppress(httpx.HTTPError):
                httpx.get(f"{self.url}/sandbox/1.0/stats", timeout=1).raise_for_status()
                return
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"the sandbox did not answer on {self.url} within 30 s")


def relay_env(
    bootstrap: str, topic: str, dlq: str, api: str, web_port: int, **extra: Any
) -> dict[str, str]:
    """The relay's configuration, RELAY_* only (a fresh group reads the backlog from the start)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RELAY_")}
    env |= {
        "RELAY_KAFKA_BOOTSTRAP": bootstrap,
        "RELAY_TOPICS": topic,
        "RELAY_DLQ_TOPIC": dlq,
        "RELAY_GROUP_ID": f"bench-{uuid.uuid4().hex[:8]}",
        "RELAY_API_BASE_URL": api,
        "RELAY_ALLOW_INSECURE_HTTP": "true",
        "RELAY_CLIENT_ID": CLIENT_ID,
        "RELAY_CLIENT_SECRET": CLIENT_SECRET,
        "RELAY_APP_ID": APP_ID,
        "RELAY_ACTIVITY_BASE_URL": ACTIVITY_BASE,
        "RELAY_WEB_PORT": str(web_port),
        "RELAY_WEB_HOST": "127.0.0.1",
        "RELAY_LOG_LEVEL": "WARNING",  # the relay's own default is INFO; records log nothing
    }
    env |= {f"RELAY_{k.upper()}": str(v) for k, v in extra.items()}
    return env


class Relay(Child):
    """``relay run`` as a subprocess (optionally under pyinstrument, for a profile)."""

    def __init__(
        self,
        name: str,
        env: dict[str, str],
        profile_to: Path | None = None,
        variant: str | None = None,
    ) -> None:
        self.metrics_url = f"http://127.0.0.1:{env['RELAY_WEB_PORT']}/metrics"
        # faust makes an (empty: the relay keeps no tables) data dir per consumer group, in the
        # working directory unless told: one per drain would pile up in the checkout
        self.datadir = WORK / "faust-data" / name
        self.datadir.parent.mkdir(parents=True, exist_ok=True)  # faust makes the last part only
        env = env | {"FAUST_DATADIR": str(self.datadir)}
        # a variant: the relay with a candidate fix patched in memory (bench/variants.py), or
        # another commit of it (rev:<ref>, bench/revisions.py)
        cwd = None
        if variant is None:
            command = ["relay.cli", "run"]
        elif revisions.is_revision(variant):
            revision, patch = revisions.split(variant)
            cwd = revisions.checkout(revision)
            command = ["relay.cli", "run"] if patch is None else ["bench.variants", patch, "run"]
            # the revision's relay first; this checkout after it for bench.variants
            env = env | {"PYTHONPATH": os.pathsep.join([str(cwd), str(revisions.ROOT)])}
        else:
            command = ["bench.variants", variant, "run"]
        if profile_to is None:
            argv = [sys.executable, "-m", *command]
        else:
            argv = [sys.executable, "-m", "pyinstrument", "--interval", "0.001",
                    "-r", "pyisession", "-o", str(profile_to), "-m", *command]  # fmt: skip
        super().__init__(name, argv, env, cwd)

    def stop(self, grace: float = 30.0) -> None:
        super().stop(grace)
        shutil.rmtree(self.datadir, ignore_errors=True)


class GoSink(Child):
    """``benchgo sink``: accepts every token request and event (202), optionally after a fixed
    latency; counts what it accepted at GET /stats. Compiled, so it is never the bottleneck."""

    def __init__(self, name: str, latency_ms: float = 0.0) -> None:
        from bench.gobuild import binary

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.latency_ms = latency_ms
        argv = [str(binary()), "sink", "-addr", f"127.0.0.1:{self.port}",
                "-latency-ms", str(latency_ms)]  # fmt: skip
        super().__init__(name, argv)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            self.check_alive()
            with contextlib.suppress(httpx.HTTPError):
                self.events()
                return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"the Go sink did not answer on {self.url} within 15 s")

    def events(self) -> int:
        """Events accepted so far."""
        reply = httpx.get(f"{self.url}/stats", timeout=2)
        reply.raise_for_status()
        return int(reply.json()["events"])


class GoPeer(Child):
    """``benchgo peer``: the compiled limit line (franz-go consumer, net/http, N in flight,
    commit after 2xx, no mapping) reading pre-mapped Caliper JSON from ``topic``."""

    def __init__(self, name: str, bootstrap: str, topic: str, api: str, in_flight: int) -> None:
        from bench.gobuild import binary

        self.group = f"bench-peer-{uuid.uuid4().hex[:8]}"
        argv = [str(binary()), "peer", "-brokers", bootstrap, "-topic", topic,
                "-group", self.group, "-url", api,
                "-in-flight", str(in_flight)]  # fmt: skip
        env = dict(os.environ, BENCH_CLIENT_ID=CLIENT_ID, BENCH_CLIENT_SECRET=CLIENT_SECRET)
        super().__init__(name, argv, env)


# the JVM's defaults (G1, tiered JIT) as a service would run, with a bounded heap
CAMEL_JAVA_OPTS = "-Xms128m -Xmx512m -XX:+UseG1GC -XX:+ExitOnOutOfMemoryError"


class CamelPeer(Child):
    """The S7 peer a user would run instead: an Apache Camel 4.14 route ``kafka -> http``
    (bench/camel, CamelPeer.java: batching consumer, ``in_flight`` POSTs at a time, manual
    commit after the 2xx) reading pre-mapped Caliper JSON from ``topic``. One JVM; its CPU
    (JIT and GC threads included) is measured like the relay's.

    ``topic`` None: the JVM starts idle and drains what ``drain`` asks for, one backlog after
    another (commands on its stdin), so that a warm-up drain leaves the measured ones a JVM
    whose route HotSpot has already compiled."""

    def __init__(
        self, name: str, bootstrap: str, topic: str | None, api: str | None, in_flight: int
    ) -> None:
        from bench.camelbuild import MAIN_CLASS, classpath

        self.group = f"bench-camel-{uuid.uuid4().hex[:8]}"
        java = os.environ.get("JAVA", "java")
        options = os.environ.get("BENCH_CAMEL_JAVA_OPTS", CAMEL_JAVA_OPTS).split()
        argv = [java, *options, "-cp", classpath(), MAIN_CLASS, "--brokers", bootstrap,
                "--in-flight", str(in_flight)]  # fmt: skip
        if topic is None:
            argv += ["--control", "stdin"]
        else:
            if api is None:
                raise ValueError("CamelPeer: a topic to drain needs the API's URL (api)")
            argv += ["--topic", topic, "--group", self.group, "--url", api]
        env = dict(os.environ, BENCH_CLIENT_ID=CLIENT_ID, BENCH_CLIENT_SECRET=CLIENT_SECRET)
        self._commands = 0
        super().__init__(name, argv, env, stdin=subprocess.PIPE if topic is None else None)

    def drain(self, topic: str, api: str) -> None:
        """Stop the running drain's route; start one that reads ``topic`` from its start with a
        fresh consumer group (``self.group``) and POSTs to ``api``; return once it runs."""
        self.group = f"bench-camel-{uuid.uuid4().hex[:8]}"
        self._command(f"drain {topic} {self.group} {api}")

    def stop_drain(self) -> None:
        """Stop the running drain's route (its consumer leaves the group); the JVM stays."""
        self._command("stop")

    def _command(self, line: str, timeout: float = 90.0) -> None:
        """One command on the JVM's stdin; waits for its answer in the log ("control: done")."""
        if self.proc.stdin is None:
            raise RuntimeError(f"{self.name} drains the topic it was started with, no other")
        self.proc.stdin.write(f"{line}\n".encode())
        self.proc.stdin.flush()
        self._commands += 1
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_alive()
            answers = [a for a in self.log_path.read_text(errors="replace").splitlines()
                       if a.startswith("control: ")]  # fmt: skip
            if len(answers) >= self._commands:
                if not answers[self._commands - 1].startswith("control: done: "):
                    raise RuntimeError(f"{self.name}: {answers[self._commands - 1]}")
                return
            time.sleep(0.05)
        raise RuntimeError(f"{self.name} did not answer {line!r} within {timeout:.0f} s")

    def jit_cpu_seconds(self) -> float:
        """User + system CPU of HotSpot's compiler threads ("C1/C2 CompilerThreadN"): a cold
        JVM spends much of a short drain compiling, which a long-running route would not."""
        ticks = 0
        for task in Path(f"/proc/{self.pid}/task").iterdir():
            with contextlib.suppress(OSError):  # a thread may end between listing and reading
                if "CompilerThre" in (task / "comm").read_text():
                    ticks += _cpu_ticks(task / "stat")
        return ticks / os.sysconf("SC_CLK_TCK")


class QuixPeer(Child):
    """S9's peer: the Quix Streams 3.28 application a Python user would write instead
    (bench/quix/peer.py, in its own virtualenv: a ``BatchingSink`` POSTing each checkpoint's
    events ``in_flight`` at a time, commit after the batch is accepted) reading pre-mapped
    Caliper JSON from ``topic``. One process; its CPU (all threads) is measured as the relay's.
    ``client``: the sink POSTs as aiohttp coroutines (``asyncio``) or on httpx threads."""

    def __init__(
        self,
        name: str,
        bootstrap: str,
        topic: str,
        api: str,
        in_flight: int,
        client: str = "asyncio",
    ) -> None:
        from bench.quixbuild import APP, python

        self.group = f"bench-quix-{uuid.uuid4().hex[:8]}"
        argv = [str(python()), str(APP), "--brokers", bootstrap, "--topic", topic,
                "--group", self.group, "--url", api, "--in-flight", str(in_flight),
                "--client", client]  # fmt: skip
        env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
        env |= {"BENCH_CLIENT_ID": CLIENT_ID, "BENCH_CLIENT_SECRET": CLIENT_SECRET}
        super().__init__(name, argv, env)
