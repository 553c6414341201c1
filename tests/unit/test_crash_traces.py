"""A crash in native code leaves the Python stacks in the log (``relay.logs.trace_crashes``).

Each case runs a fresh interpreter: a crash must be real to be seen, and enabling faulthandler
must not leak into the test process. The crash is a genuine SIGSEGV (``ctypes.string_at(0)``
reads address 0), not a simulated one.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGSEGV is a POSIX signal")


def _python(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("RELAY_", "PYTHONFAULT"))}
    environ.update(env)
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True, text=True, timeout=60, env=environ,
    )  # fmt: skip


def test_a_segfault_writes_every_threads_stack() -> None:
    done = _python(
        """
        import ctypes, threading
        from relay.logs import trace_crashes

        def poll_forever(stop):  # a second thread, as librdkafka's poller is
            stop.wait()

        stop = threading.Event()
        threading.Thread(target=poll_forever, args=(stop,), name="poller", daemon=True).start()
        trace_crashes()

        def deliver_callback():
            ctypes.string_at(0)  # read address 0: SIGSEGV

        deliver_callback()
        """
    )
    assert done.returncode == -signal.SIGSEGV, done.stderr
    assert "Fatal Python error: Segmentation fault" in done.stderr
    assert "deliver_callback" in done.stderr  # the crashing thread's stack
    assert "poll_forever" in done.stderr  # and the other threads' too


def test_without_it_a_segfault_says_nothing() -> None:
    """What the relay's log held before (the SCRAM trial's one SIGSEGV): an exit code only."""
    done = _python("import ctypes; ctypes.string_at(0)")
    assert done.returncode == -signal.SIGSEGV
    assert "Fatal Python error" not in done.stderr


def test_relay_run_turns_it_on_before_reading_its_settings() -> None:
    """``relay run`` enables it first, so even a crash while it starts is traced; here the
    settings are refused (no credentials) and the command exits 1, with it already on."""
    done = _python(
        """
        import faulthandler
        from relay.pipeline.worker import run_command
        assert not faulthandler.is_enabled()
        try:
            run_command.main([], standalone_mode=False)
        except Exception as exc:
            print("refused:", type(exc).__name__)
        print("enabled:", faulthandler.is_enabled())
        """,
        RELAY_BOOTSTRAP_SERVERS="127.0.0.1:9",
    )
    assert done.returncode == 0, done.stderr
    assert "refused: ClickException" in done.stdout
    assert "enabled: True" in done.stdout
