from __future__ import annotations

import subprocess
import sys

from strata_local.harness import wait_until
from strata_local.processes import Supervisor


def test_a_supervised_child_that_dies_is_started_again() -> None:
    started: list[subprocess.Popen[bytes]] = []

    def start() -> subprocess.Popen[bytes]:
        # The first child dies at once; the ones after it live until stopped.
        code = "raise SystemExit(3)" if not started else "import time; time.sleep(60)"
        started.append(subprocess.Popen([sys.executable, "-c", code]))
        return started[-1]

    supervisor = Supervisor("test child", start, check_interval_s=0.05)
    supervisor.watch()
    try:
        wait_until(lambda: supervisor.restarts == 1, timeout_s=10, what="the restart")
        assert started[0].returncode == 3
        assert supervisor.process is started[1] and started[1].poll() is None
    finally:
        supervisor.stop()
    assert started[1].poll() is not None  # stopping the supervisor stops its child


def test_the_supervisor_says_when_its_child_died_and_when_the_new_one_is_ready() -> None:
    events: list[object] = []
    ready = {"now": False}

    def start() -> subprocess.Popen[bytes]:
        code = "raise SystemExit(7)" if not events else "import time; time.sleep(60)"
        return subprocess.Popen([sys.executable, "-c", code])

    supervisor = Supervisor(
        "test child",
        start,
        check_interval_s=0.05,
        ready=lambda: ready["now"],
        on_exit=lambda code: events.append(("exit", code)),
        on_ready=lambda: events.append("ready"),
    )
    supervisor.watch()
    try:
        wait_until(lambda: supervisor.restarts == 1, timeout_s=10, what="the restart")
        assert events == [("exit", 7)]  # restarted, not yet ready
        ready["now"] = True
        wait_until(lambda: "ready" in events, timeout_s=5, what="readiness")
        assert events == [("exit", 7), "ready"]
    finally:
        supervisor.stop()
