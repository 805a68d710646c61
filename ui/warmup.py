"""The heavy imports, done once per server process in one background thread, so Home draws without them.

Home, the sidebar and the page list need only Streamlit, the course and the progress store. A lesson page needs
torch, the engine and every live widget; My progress draws a table (pandas, pyarrow). Imported before the first
page, those seconds of imports were a newcomer's wait on a blank page. So Home starts this warm-up once it is
drawn (`start`), and every other page waits for it (`wait`) before importing those modules: by then they are
only looked up. The thread first leaves the CPU to the browser painting Home for `GRACE_S` (on a learner's own
machine both share the cores), unless a page asks for the modules sooner.

One thread makes every first import: a first import of torch from two threads at once has raced inside numpy's
import, and a click landing in a script thread's first import of pandas left it half-initialised for the process.
tests/ui/test_warmup.py checks that drawing Home imports none of `HEAVY`. Once every page can draw, a GPU server
starts measuring its GPUs' peak (engine.cost.peak.ensure_peak, in a worker), so lesson 9 has it before anyone asks.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
import threading

# What the warm-up loads, in order; the widgets' own modules (ui/widgets/*.py) follow, whatever the registry imports.
MODULES = ("pandas", "pyarrow", "torch", "ui.sidebar_runs", "ui.lesson_page", "ui.progress_page")
WIDGETS = "ui.widgets"
# What Home's path must never import itself (tests/ui/test_warmup.py).
HEAVY = ("torch", "numpy", "pandas", "pyarrow", "engine", "ui.widgets", "ui.lesson_page", "ui.run_view")

GRACE_S = 2.0  # how long the thread lets the browser paint Home first, unless a page needs the modules sooner

_lock = threading.Lock()
_needed = threading.Event()  # a page is waiting: no more grace
_done = threading.Event()
_thread: threading.Thread | None = None
failed: dict[str, str] = {}  # module -> error; the page that needs it imports it again and shows the error itself


def _import(name: str) -> None:
    try:
        importlib.import_module(name)
    except Exception as err:  # one broken module must not keep the others from loading
        failed[name] = f"{type(err).__name__}: {err}"


def _import_all() -> None:
    _needed.wait(timeout=GRACE_S)
    try:
        for name in MODULES:
            _import(name)
        package = importlib.import_module(WIDGETS)
        for module in pkgutil.iter_modules(package.__path__, f"{WIDGETS}."):
            _import(module.name)
    except Exception as err:  # the registry itself failed: its pages import it again and say why
        failed[WIDGETS] = f"{type(err).__name__}: {err}"
    finally:
        _done.set()
    measure_gpu_peaks()


PEAK = "engine.cost.peak"


def measure_gpu_peaks() -> None:
    """On a GPU server, start measuring each kind of GPU's peak in the background, unless it is kept already
    (engine.cost.peak.ensure_peak: never blocks, once per device name). A CPU is measured when a learner asks:
    its probe takes every core, and not while a run trains."""
    torch = sys.modules.get("torch")
    try:
        if torch is None or not torch.cuda.is_available():
            return
        peak = importlib.import_module(PEAK)
        for index in range(torch.cuda.device_count()):
            peak.ensure_peak(f"cuda:{index}")
    except Exception as err:  # lesson 9's page measures it then, and shows why it cannot
        failed[PEAK] = f"{type(err).__name__}: {err}"


def start() -> None:
    """Start the warm-up thread, once per process; returns at once."""
    global _thread
    with _lock:
        if _thread is None:
            _thread = threading.Thread(target=_import_all, name="course-warm-up", daemon=True)
            _thread.start()


def done() -> bool:
    """Whether every heavy module has been imported (or has failed to)."""
    return _done.is_set()


def wait() -> None:
    """Start the warm-up if nothing has (or end its grace), and block until it has finished."""
    start()
    _needed.set()
    _done.wait()
