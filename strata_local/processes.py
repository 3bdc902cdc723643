"""Child processes of the local stack (the model server) and waiting for them to be ready."""

from __future__ import annotations

import ctypes
import logging
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

logger = logging.getLogger(__name__)

PR_SET_PDEATHSIG = 1


def ensure_port_free(host: str, port: int, what: str) -> None:
    with socket.socket() as sock:
        # As the servers themselves bind: connections left in TIME_WAIT do not count as in use.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            raise RuntimeError(
                f"port {port} for the {what} is in use: stop what holds it or pick another port"
            ) from None


def wait_for_http(url: str, *, timeout_s: float, process: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process for {url} exited with code {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{url} not ready after {timeout_s:.0f} s")


def _die_with_parent() -> None:
    """Linux: the child gets SIGTERM if the stack dies without cleaning up (kill -9, a crash)."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:
        pass


def start_model_server(
    *,
    host: str,
    port: int,
    endpoints: tuple[str, str],
    log_path: Path,
    scale_to_zero_after_s: float | None = None,
    wake_s: float | None = None,
) -> subprocess.Popen[bytes]:
    """``endpoints``: the (chat, embedding) endpoint names the functions call, from the settings;
    ``scale_to_zero_after_s`` / ``wake_s``: the model server's ``--scale-to-zero`` / ``--wake-s``."""
    scale_to_zero = [] if scale_to_zero_after_s is None else ["--scale-to-zero", str(scale_to_zero_after_s)]
    wake = [] if wake_s is None else ["--wake-s", str(wake_s)]
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log = log_path.open("ab")
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "model_endpoint",
            "--host",
            host,
            "--port",
            str(port),
            "--chat-endpoint",
            endpoints[0],
            "--embedding-endpoint",
            endpoints[1],
            *scale_to_zero,
            *wake,
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        preexec_fn=_die_with_parent if sys.platform == "linux" else None,
    )


def stop_process(process: subprocess.Popen[bytes], timeout_s: float = 10) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def responds(url: str) -> bool:
    """Whether ``url`` answers 200 now."""
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


class Supervisor:
    """Keeps a child process running: one that dies is logged and started again.

    Restarts back off (1 s, 2 s, 4 s … up to a minute) so a child that cannot start does not spin.
    ``on_exit(code)`` is told when the child died; ``on_ready()`` once a restarted child passes
    ``ready()`` (the model server: its ``/ping``).
    """

    def __init__(
        self,
        name: str,
        start: Callable[[], subprocess.Popen[bytes]],
        *,
        check_interval_s: float = 1.0,
        ready: Callable[[], bool] = lambda: True,
        on_exit: Callable[[int], None] = lambda code: None,
        on_ready: Callable[[], None] = lambda: None,
    ):
        self.name = name
        self._start = start
        self._check_interval_s = check_interval_s
        self._ready, self._on_exit, self._on_ready = ready, on_exit, on_ready
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None
        self.restarts = 0
        self.process = start()

    def watch(self) -> None:
        self._thread = threading.Thread(target=self._watch, name=f"supervise-{self.name}", daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        delay = 1.0
        waiting_for_ready = False
        while not self._stopped.wait(self._check_interval_s):
            code = self.process.poll()
            if code is None:
                if waiting_for_ready and self._ready():
                    waiting_for_ready = False
                    delay = 1.0
                    logger.warning("the %s is back", self.name)
                    self._notify(self._on_ready)
                continue
            logger.error("the %s exited with code %s; restarting it in %.0f s", self.name, code, delay)
            self._notify(self._on_exit, code)
            if self._stopped.wait(delay):
                return
            self.process = self._start()
            self.restarts += 1
            waiting_for_ready = True
            delay = min(delay * 2, 60.0)

    def _notify(self, callback: Callable[..., None], *args: object) -> None:
        try:
            callback(*args)
        except Exception:
            logger.exception("supervising the %s", self.name)

    def stop(self) -> None:
        self._stopped.set()
        if self._thread is not None:
            self._thread.join(5)
        stop_process(self.process)
