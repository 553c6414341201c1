"""deploy/docker/Dockerfile, checked structurally (there is no Docker engine to build it here).

The instructions are parsed (continuations, heredocs, stages): a builder stage makes wheels, the
final stage is python:3.11-slim without compilers, runs ``relay run`` as a non-root user, exposes
RELAY_WEB_PORT, and its HEALTHCHECK command really fails on a /livez that is not 200. The
.dockerignore keeps exactly what the COPY instructions need.
"""

from __future__ import annotations

import fnmatch
import json
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path, PurePosixPath

import pytest

from relay.config import Settings
from relay.contract.catalogue import default_schema_dir

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "deploy" / "docker" / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"


@dataclass
class Instruction:
    name: str  # upper case: FROM, RUN, COPY, ...
    args: str
    heredoc: str | None = None


@dataclass
class Stage:
    image: str
    alias: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, name: str) -> list[Instruction]:
        return [i for i in self.instructions if i.name == name]

    def last(self, name: str) -> Instruction:
        found = self.all(name)
        assert found, f"no {name} in the stage FROM {self.image}"
        return found[-1]


_HEREDOC = re.compile(r"<<-?([\"']?)(\w+)\1")


def parse_dockerfile(text: str) -> tuple[dict[str, str], list[Stage]]:
    """Global ARG defaults (before the first FROM) and the stages, ARGs substituted in FROM."""
    lines = iter(text.splitlines())
    instructions: list[Instruction] = []
    for line in lines:
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        while line.rstrip().endswith("\\"):
            following = next(lines)
            if following.lstrip().startswith("#"):
                continue
            line = line.rstrip()[:-1].rstrip() + " " + following.strip()
        name, _, args = line.strip().partition(" ")
        heredoc = None
        match = _HEREDOC.search(args)
        if match:
            body = []
            for following in lines:
                if following.strip() == match.group(2):
                    break
                body.append(following)
            heredoc = "\n".join(body)
        instructions.append(Instruction(name.upper(), args.strip(), heredoc))
    global_args: dict[str, str] = {}
    stages: list[Stage] = []
    for instruction in instructions:
        if instruction.name == "FROM":
            image, _, alias = instruction.args.partition(" AS ")
            for key, value in global_args.items():
                image = image.replace("${" + key + "}", value).replace("$" + key, value)
            stages.append(Stage(image.strip(), alias.strip() or None))
        elif not stages:
            assert instruction.name == "ARG", f"{instruction.name} before the first FROM"
            key, _, value = instruction.args.partition("=")
            global_args[key] = value
        else:
            stages[-1].instructions.append(instruction)
    return global_args, stages


def exec_form(args: str) -> list[str]:
    """The JSON array of an exec-form ENTRYPOINT/CMD (after any --options)."""
    value = json.loads(args[args.index("[") :])
    assert isinstance(value, list) and all(isinstance(v, str) for v in value), args
    return value


def stages() -> list[Stage]:
    return parse_dockerfile(DOCKERFILE.read_text())[1]


def final() -> Stage:
    return stages()[-1]


def runtime_uid() -> int:
    """The numeric user the final image runs as."""
    user = final().last("USER").args.split(":")[0]
    assert user.isdigit(), f"USER {user}: use a numeric uid (runAsNonRoot can only check those)"
    return int(user)


def runtime_workdir() -> str:
    return final().last("WORKDIR").args


# -- the parser itself ---------------------------------------------------------------------------


def test_parser_handles_continuations_heredocs_and_stages() -> None:
    text = (
        "ARG BASE=python:3.11-slim\nFROM ${BASE} AS builder\nRUN a \\\n  # note\n  && b\n"
        "FROM ${BASE}\nCOPY <<EOF /x\nline 1\nEOF\nUSER 1:1\n"
    )
    global_args, parsed = parse_dockerfile(text)
    assert global_args == {"BASE": "python:3.11-slim"}
    assert [(s.image, s.alias) for s in parsed] == [
        ("python:3.11-slim", "builder"),
        ("python:3.11-slim", None),
    ]
    assert parsed[0].last("RUN").args == "a && b"
    assert parsed[1].last("COPY").heredoc == "line 1"
    assert parsed[1].last("USER").args == "1:1"


# -- the image -----------------------------------------------------------------------------------


def test_multi_stage_builder_makes_wheels_for_a_slim_python_311_runtime() -> None:
    builder, *_, runtime = stages()
    assert builder.alias == "builder"
    assert any("pip wheel" in run.args for run in builder.all("RUN"))
    assert re.fullmatch(r"python:3\.11-slim(-\w+)?", runtime.image), runtime.image
    assert builder.image == runtime.image  # same Python ABI for the wheels


def test_final_stage_has_no_compilers_and_installs_only_built_wheels() -> None:
    runs = " ".join(run.args for run in final().all("RUN"))
    assert not re.search(r"\b(apt-get|apk|build-essential|gcc|g\+\+|clang)\b", runs)
    (install,) = [run.args for run in final().all("RUN") if "pip install" in run.args]
    assert "--no-index" in install  # nothing downloaded or compiled in the final stage
    assert "from=builder" in install


def test_runs_as_a_non_root_user_created_with_that_uid() -> None:
    uid = runtime_uid()
    assert uid != 0
    runs = " ".join(run.args for run in final().all("RUN"))
    assert re.search(rf"useradd\b[^&]*--uid {uid}\b", runs)


def test_entrypoint_is_relay_run() -> None:
    runtime = final()
    assert exec_form(runtime.last("ENTRYPOINT").args) == ["relay"]
    assert exec_form(runtime.last("CMD").args) == ["run"]
    (script,) = [c for c in runtime.all("COPY") if c.args.endswith("/usr/local/bin/relay")]
    assert "--chmod=0755" in script.args
    assert script.heredoc is not None and "from relay.cli import main" in script.heredoc
    from relay.cli import main

    assert callable(main)


def test_exposes_the_web_port_and_sets_it() -> None:
    port = Settings.model_fields["web_port"].default
    assert final().last("EXPOSE").args == str(port)
    env = " ".join(e.args for e in final().all("ENV"))
    assert f"RELAY_WEB_PORT={port}" in env


def test_package_runs_beside_its_schemas() -> None:
    """The catalogue finds schemas at <package parent>/schemas/activity: the image copies relay/
    and schemas/ side by side into one directory on PYTHONPATH."""
    assert default_schema_dir() == ROOT / "schemas" / "activity"
    copies = {}
    for copy in final().all("COPY"):
        parts = copy.args.split()
        if not parts[0].startswith("--") and copy.heredoc is None:
            copies[parts[0].rstrip("/")] = PurePosixPath(parts[1])
    assert copies["relay"].parent == copies["schemas"].parent
    env = " ".join(e.args for e in final().all("ENV"))
    assert f"PYTHONPATH={copies['relay'].parent}" in env


# -- the healthcheck, for real --------------------------------------------------------------------


def healthcheck_command() -> list[str]:
    health = final().last("HEALTHCHECK").args
    command = exec_form(health[health.index("CMD") + 3 :])
    assert command[:2] == ["python", "-c"], "no curl in the slim image: python's urllib"
    return command


@pytest.fixture
def livez_server() -> Iterator[tuple[int, dict[str, int]]]:
    """A local HTTP server whose /livez answers ``state["status"]``."""
    state = {"status": 200}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(state["status"] if self.path == "/livez" else 404)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], state
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(("status", "healthy"), [(200, True), (503, False)])
def test_healthcheck_fails_unless_livez_answers_200(
    livez_server: tuple[int, dict[str, int]], status: int, healthy: bool
) -> None:
    port, state = livez_server
    state["status"] = status
    command = healthcheck_command()
    env = {"RELAY_WEB_PORT": str(port), "PATH": "/usr/bin:/bin"}
    result = subprocess.run(
        [sys.executable, *command[1:]], env=env, capture_output=True, timeout=30, check=False
    )
    assert (result.returncode == 0) is healthy, result.stderr


# -- the build context -----------------------------------------------------------------------------


def dockerignored(path: str, patterns: list[str]) -> bool:
    """Docker's rule for the context: the last matching pattern wins, ``!`` re-includes; a
    pattern matching a directory matches everything under it."""
    parts = path.split("/")
    prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    ignored = False
    for raw in patterns:
        negate = raw.startswith("!")
        pattern = raw[1:] if negate else raw
        pattern = pattern.rstrip("/")
        candidates = [pattern]
        if pattern.startswith("**/"):
            candidates.append(pattern[3:])
        suffixes = ["/".join(parts[n:]) for n in range(len(parts))] if "**" in pattern else []
        if any(fnmatch.fnmatchcase(p, c) for c in candidates for p in [*prefixes, *suffixes]):
            ignored = not negate
    return ignored


def dockerignore_patterns() -> list[str]:
    lines = DOCKERIGNORE.read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def test_context_keeps_what_the_copies_need_and_nothing_else() -> None:
    patterns = dockerignore_patterns()
    sources: list[str] = []
    for stage in stages():
        for copy in stage.all("COPY"):
            parts = [p for p in copy.args.split() if not p.startswith("--")]
            if copy.heredoc is None:
                sources.extend(p.rstrip("/") for p in parts[:-1])
    assert set(sources) >= {"pyproject.toml", "README.md", "relay", "schemas"}
    for source in sources:
        assert (ROOT / source).exists(), source
        files = [ROOT / source] if (ROOT / source).is_file() else (ROOT / source).rglob("*.*")
        for file in files:
            relative = file.relative_to(ROOT).as_posix()
            if "__pycache__" not in relative:
                assert not dockerignored(relative, patterns), relative
    for excluded in ("tests/unit/test_config.py", ".venv/bin/python", "relay/__pycache__/x.pyc"):
        assert dockerignored(excluded, patterns), excluded
