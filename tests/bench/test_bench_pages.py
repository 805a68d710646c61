"""bench/pages.py's browser rows: their names and targets, the summary of repeated timings, and the answer where
Chromium is absent (the timings themselves need a browser: `python -m bench pages`)."""

from __future__ import annotations

import bench.app_server
from bench import pages


def test_timings_are_summarised_as_median_and_range() -> None:
    assert pages._spread([2.0, 1.0, 4.0]) == "2.00 s (median of 3; 1.00-4.00)"


def test_without_chromium_every_browser_row_says_skipped(monkeypatch) -> None:
    monkeypatch.setattr(bench.app_server, "find_chromium", lambda: None)
    rows = pages.bench_browser()
    assert [name.split(":")[0].split(" (")[0] for name, _ in rows] == [
        "cold first paint of Home", "warm first paint of Home", "first paint of a lesson in Chromium, warm server"]
    assert all(value == "skipped: Chromium not installed" for _, value in rows)
    assert "target < 3 s" in rows[0][0] and "target < 2 s" in rows[1][0]


def test_the_load_average_names_the_cores() -> None:
    assert pages._load_average().startswith("load average ") and "cores" in pages._load_average()
