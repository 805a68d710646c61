"""Serve the course from a script: `streamlit run serve.py` (app.py behind the course's file check) in a child
process on a free port, for the browser tests and the benchmarks (`bench/pages.py`, `bench/live.py`, `bench/load.py`).

It lives in bench/, not in the tests, because the benchmarks need it too and no production module may import
test code; the browser tests import it from here. No Streamlit import: the server is a subprocess, started and
stopped by its own PID.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import paths

ROOT = paths.ROOT
# Headless Chromium as the browser tests and benchmarks launch it: no sandbox (containers), no GPU, and none of the
# background traffic (updates, sync, QUIC) that would reach for the network this course never needs.
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def free_port() -> int:
    """A TCP port nothing listens on right now (the OS picks it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def find_chromium() -> str | None:
    """The Chromium executable (Debian's `chromium`, or `chromium-browser`), None where it is not installed."""
    return shutil.which("chromium") or shutil.which("chromium-browser")


class Server:
    """`streamlit run serve.py` in a subprocess with its own progress database; restartable with the same one."""

    def __init__(self, db: Path, log: Path, env: dict[str, str] | None = None, secrets: Path | None = None,
                 port: int | None = None):
        """`env`: more environment for the server (e.g. LLM_COURSE_RUNS, LLM_COURSE_UPLOADS: where its runs and
        uploads go; LLM_COURSE_DATABASE_URL: a PostgreSQL database instead of the SQLite file `db`), on top of this
        process's and the database's. `secrets`: the secrets.toml it reads (class mode: sign-in), and no other; None
        gives it none, so a developer's own .streamlit/secrets.toml never turns a test's server into class mode."""
        self.db, self.log, self.env, self.proc = db, log, env or {}, None
        self.port = port or free_port()
        self.secrets = secrets if secrets is not None else log.parent / "no-secrets.toml"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 90) -> None:
        """Start the server and wait until its health check answers; RuntimeError (with the log's tail) if not."""
        env = {**os.environ, paths.DB_VAR: str(self.db), **self.env}
        cmd = [sys.executable, "-m", "streamlit", "run", str(ROOT / "serve.py"), "--server.port", str(self.port),
               "--server.headless", "true", "--server.address", "127.0.0.1", "--secrets.files", str(self.secrets)]
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=self.log.open("a"), stderr=subprocess.STDOUT)
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                if urllib.request.urlopen(f"{self.url}/_stcore/health", timeout=2).read() == b"ok":
                    return
            except OSError:
                time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"Streamlit did not become healthy; log:\n{self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        """Terminate our own child by its PID (kill it if it has not exited within 15 s)."""
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
