"""Home draws without the heavy imports; the warm-up thread makes them; the other pages wait for it.

Each check that needs a process where nothing heavy is imported yet runs in a fresh Python of its own.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

_COLD_PROCESS = textwrap.dedent("""
    import json, sys
    from streamlit.testing.v1 import AppTest
    from streamlit.util import calc_hash
    from ui import warmup

    def heavy():
        return sorted({m for m in sys.modules for h in warmup.HEAVY if m == h or m.startswith(h + ".")})

    real_start, started = warmup.start, []
    warmup.start = lambda: started.append(True)  # held back, so what Home itself imports can be seen
    at = AppTest.from_file("app.py", default_timeout=120).run()
    home = {"exception": [str(e) for e in at.exception], "titles": [m.value for m in at.markdown
            if m.value.startswith("#### ")], "heavy": heavy(), "started": bool(started),
            "done": warmup.done()}
    warmup.start = real_start
    at._page_hash = calc_hash("lesson-1")  # how st.Page identifies a callable page (tests/ui/conftest.py)
    at.run()
    lesson = {"exception": [str(e) for e in at.exception], "done": warmup.done(), "failed": warmup.failed,
              "progress": [p.proto.text for p in at.get("progress")]}
    print(json.dumps({"home": home, "lesson": lesson}))
""")


def test_home_draws_without_the_heavy_imports_and_a_lesson_waits_for_the_warm_up(db, tmp_path):
    env = {"PATH": "/usr/bin:/bin", "LLM_COURSE_DB": str(db),
           "LLM_COURSE_RUNS": str(tmp_path / "runs"), "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", _COLD_PROCESS], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    home, lesson = result["home"], result["lesson"]
    assert not home["exception"], home["exception"]
    assert len(home["titles"]) >= 10, "Home lists the lessons"
    assert home["heavy"] == [], f"drawing Home imported {home['heavy']}: they belong to the warm-up thread"
    assert home["started"], "Home starts the warm-up once it is drawn"
    assert not home["done"]
    assert not lesson["exception"], lesson["exception"]
    assert lesson["done"] and lesson["failed"] == {}, lesson["failed"]
    assert lesson["progress"] and lesson["progress"][0].startswith("Card 1 / "), "the lesson drew after waiting"


def test_the_warm_up_imports_every_page_and_widget_module_once():
    from ui import warmup

    warmup.wait()
    warmup.wait()  # a second wait returns at once: one thread, started once
    assert warmup.done() and warmup.failed == {}
    widgets = sorted(p.stem for p in (ROOT / "ui" / "widgets").glob("*.py") if p.stem != "__init__")
    for name in [*warmup.MODULES, *(f"ui.widgets.{w}" for w in widgets)]:
        assert name in sys.modules, f"{name} was not loaded by the warm-up"


@pytest.mark.parametrize(("gpus", "expected"), [(0, []), (2, ["cuda:0", "cuda:1"])])
def test_a_gpu_server_starts_measuring_its_peak_and_a_cpu_server_does_not(monkeypatch, gpus, expected):
    import torch

    from engine.cost import peak
    from ui import warmup

    asked: list[str] = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: gpus > 0)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: gpus)
    monkeypatch.setattr(peak, "ensure_peak", lambda device="cpu", root=None, manager=None: asked.append(device))
    warmup.measure_gpu_peaks()
    assert asked == expected and warmup.PEAK not in warmup.failed
