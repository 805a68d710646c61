"""Run inside the Ray cluster's network namespace by tests/engine/runs/test_ray.py (not a test itself): two course
servers train on Ray; one learner, in Chromium, starts a lesson-7 run on the first server, then opens the second,
watches the same run train there and stops it there; the first server's page shows it stopped. Prints one JSON
line: {"ok": true, ...} or {"ok": false, "error": ..., "page": what the page said}.

Usage: python ray_two_servers_in_browser.py URL_ONE URL_TWO CARD_TITLE
"""

from __future__ import annotations

import json
import re
import shutil
import sys
import time
import urllib.request

from playwright.sync_api import sync_playwright

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def healthy(url: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).read() == b"ok":
                return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"{url} did not become healthy")


STEPS = r"Steps?\s+([\d,]+)"  # "Step 1,234 · ..." while it trains, the "Steps" figure once it has ended


def step_on(page) -> int:
    found = re.search(STEPS, page.inner_text("body"))
    return int(found.group(1).replace(",", "")) if found else -1


def main(one: str, two: str, card_title: str) -> dict:
    for url in (one, two):
        healthy(url)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=shutil.which("chromium"), args=FLAGS)
        first = browser.new_context(viewport={"width": 1280, "height": 1000}).new_page()
        second = browser.new_context(viewport={"width": 1280, "height": 1000}).new_page()
        page, stage = first, "start"
        try:
            for page in (first, second):
                page.set_default_timeout(120_000)
            page, stage = second, "open the other server first"  # its first page waits for its engine to load
            second.goto(f"{two}/lesson-7")
            second.get_by_role("heading", name=card_title).first.wait_for()
            page, stage = first, "start"
            first.goto(f"{one}/lesson-7")
            first.get_by_role("heading", name=card_title).first.wait_for()
            first.get_by_role("button", name="Start training").click()
            first.get_by_text("🟢 Running").first.wait_for()
            first.wait_for_function("() => /Steps?\\s+[1-9]/.test(document.body.innerText)")

            page, stage = second, "watch on the other server"  # the same run, followed on Ray, training
            second.reload()
            second.get_by_role("heading", name=card_title).first.wait_for()
            second.get_by_text("🟢 Running").first.wait_for()
            second.wait_for_function("() => /Steps?\\s+[1-9]/.test(document.body.innerText)")
            seen = step_on(second)
            second.wait_for_function(f"() => {{ const m = document.body.innerText.match(/Steps?\\s+([\\d,]+)/); "
                                     f"return m && Number(m[1].replace(/,/g, '')) > {seen}; }}")
            stage = "stop on the other server"
            second.get_by_role("button", name="Stop").click()
            second.get_by_text("⏹️ Stopped").first.wait_for()
            stopped_at = step_on(second)

            page, stage = first, "stopped, seen where it started"  # the server that started it sees it stopped
            first.reload()
            first.get_by_text("⏹️ Stopped").first.wait_for()
            return {"ok": True, "steps_seen_on_two": seen, "stopped_at": stopped_at}
        except Exception as err:  # reported to the test, with what the page said
            text = page.inner_text("body")
            status = re.search(r"(🟢|⏳|✅|⏹️|⚠️|❌)[^\n]*", text)
            return {"ok": False, "stage": stage, "error": f"{type(err).__name__}: {str(err)[:300]}",
                    "status": status.group(0) if status else None, "page": text[-800:]}
        finally:
            browser.close()


if __name__ == "__main__":
    result = main(*sys.argv[1:4])
    print(json.dumps(result), flush=True)
    sys.exit(0 if result["ok"] else 1)
