"""Real-browser fixtures: a Streamlit server on a free port (`ui/serve.py`, stopped by its own PID) and Debian's
Chromium.

Skips with a clear reason where Chromium or Playwright is missing; `.ci/run` installs Chromium so CI runs these.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ui.serve import CHROMIUM_FLAGS, Server, find_chromium


@pytest.fixture
def server(tmp_path) -> Iterator[Server]:
    srv = Server(tmp_path / "progress.sqlite3", tmp_path / "streamlit.log")
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture
def browser():
    chromium = find_chromium()
    if not chromium:
        pytest.skip("Chromium is not installed (apt-get install chromium); .ci/run installs it so CI runs this test")
    sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright's Python package is not installed")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS)
        yield b
        b.close()
