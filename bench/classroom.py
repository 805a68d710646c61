"""`python -m bench class`: a simulated class (bench.class_sim) on the local pool at several slot counts and on Ray.

The trade a class server makes is between waiting and training: more slots start every learner sooner, but budgets
are wall-clock time, so each run trains on a smaller share of the cores. This runs the same class through each pool
and writes one table, so an instructor reads both sides (docs/deploy.md, "A class of 30"). Ray runs need a network
namespace (root): bench.ray_cluster's head and the manager on Ray both live inside it. Figures so far are kept in a
JSON file as each pool ends, so a long run cut short still leaves them.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from bench.class_sim import PeakRss, children_pids, own_pid, simulate
from bench.report import append_section
from engine.device import physical_cores
from engine.runs.manager import RunManager
from engine.runs.pool_settings import PoolSettings, default_settings
from paths import DEFAULT_CORPUS


def run_local(text: str, slots: int, threads: int, learners: int, seconds: float, spread_s: float,
              seed: int = 0) -> dict[str, Any]:
    """One class on the local pool (a training process per run) at `slots` runs at once, `threads` each."""
    root = Path(tempfile.mkdtemp(prefix="bench-class-"))
    manager = RunManager(runs_root=root, workers="process", n_gpus=0,
                         settings=PoolSettings(slots=slots, threads_per_run=threads))
    with PeakRss(own_pid) as server, PeakRss(children_pids) as training:
        figures = simulate(manager, text, learners, seconds, spread_s, seed=seed)
    subprocess.run(["rm", "-rf", str(root)], check=False)
    return {**figures, "server_mib": server.peak_mib, "training_mib": training.peak_mib}


def run_ray(learners: int, seconds: float, spread_s: float, seed: int = 0) -> dict[str, Any]:
    """One class on a real Ray head (in a network namespace): one logical GPU, runs at 0.25 GPU on the CPU."""
    from bench.ray_cluster import RayCluster, namespace_problem

    problem = namespace_problem()
    if problem:
        return {"skipped": problem}
    root = Path(tempfile.mkdtemp(prefix="bench-class-ray-"))
    with RayCluster(num_cpus=4, num_gpus=1) as cluster, PeakRss(cluster.pids) as ray_total:
        server = cluster.course_server(root / "runs", root / "queue.db", gpus_per_run=0.25, cpus_per_run=1.0,
                                       threads_per_run=1)
        try:
            timeout = 120.0 + learners * 2 * (seconds + 60)
            figures = server.call("class_sim", {"learners": learners, "seconds": seconds, "spread_s": spread_s,
                                                "seed": seed}, timeout=timeout)
        finally:
            server.close()
    subprocess.run(["rm", "-rf", str(root)], check=False)
    return {**figures, "ray_mib": ray_total.peak_mib}


def _s(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} s"


def rows_for(name: str, f: dict[str, Any]) -> list[tuple[str, str]]:
    """The table rows of one configuration's figures."""
    if "skipped" in f:
        return [(name, f"skipped: {f['skipped']}")]
    ended = f"{f['finished']} of {f['runs']} finished" + (f" (others: {', '.join(f['not_finished'])})"
                                                           if f["not_finished"] else "")
    rows = [(f"{name}: runs ({f['first_runs']} first, {f['second_runs']} second), how they ended", ended),
            (f"{name}: time until every run had finished", _s(f["total_s"])),
            (f"{name}: wait for a first run (submit to started), p50 / p95 / max",
             f"{_s(f['wait_p50_s'])} / {_s(f['wait_p95_s'])} / {_s(f['wait_max_s'])}"),
            (f"{name}: every first run started before any other learner's second run",
             "yes" if f["unfair"] is None else f"no: {f['unfair']}"),
            (f"{name}: second requests refused while the first waited (the learner pressed again)", str(f["refused"]))]
    if f.get("median_steps") is not None:
        loss = f["median_val_loss"]
        rows.append((f"{name}: median steps per run / median final validation loss",
                     f"{f['median_steps']:,.0f} / {'-' if loss is None else f'{loss:.3f}'}"))
    mem = f"{f['server_mib']:.0f} MiB"
    if "training_mib" in f:
        mem += f"; training processes together {f['training_mib']:.0f} MiB"
    if "ray_mib" in f:
        mem += f"; every Ray process in the namespace (head, raylet, workers, runs) together {f['ray_mib']:.0f} MiB"
    rows.append((f"{name}: peak memory of the manager's process", mem))
    return rows


def _uptime() -> str:
    out = subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()
    return out.split("load average:")[-1].strip() if "load average:" in out else out


def run(learners: int = 30, seconds: float = 20.0, slots: Iterable[int] = (1, 2, 4), ray: bool = True,
        spread_s: float = 3.0, seed: int = 0, write: bool = True, partial: Path | None = None) -> dict[str, Any]:
    """Simulate the class on the local pool at the machine's default slots and at each of `slots`, and on Ray;
    print each configuration's rows as it ends and (if `write`) append the section. `partial`: a JSON file that
    holds the figures so far (a long run cut short still leaves them)."""
    text = DEFAULT_CORPUS.read_text(encoding="utf-8")
    cores = physical_cores()
    default = default_settings(cores, 0)
    load_start = _uptime()
    configs = [(f"local, {k} slot{'s' * (k > 1)} x {max(1, cores // k)} threads"
                + (" (this machine's default)" if k == default.slots else ""), k, max(1, cores // k)) for k in slots]
    if default.slots not in set(slots):
        configs.insert(0, (f"local, default {default.slots} slot(s) x {default.threads_per_run} threads",
                           default.slots, default.threads_per_run))
    results: dict[str, Any] = {}
    partial = partial or Path(tempfile.gettempdir()) / "bench-class.json"
    print(f"figures so far go to {partial}", flush=True)
    if ray:
        name = "Ray, 1 logical GPU, 0.25 GPU per run (4 at once), CPU device"
        results[name] = run_ray(learners, seconds, spread_s, seed)
        _report(name, results, partial)
    for name, k, threads in configs:
        results[name] = run_local(text, k, threads, learners, seconds, spread_s, seed)
        _report(name, results, partial)
    load_end = _uptime()
    rows = [("class", f"{learners} learners, a {seconds:g} s lesson run each (lesson preset, bundled corpus), "
                      f"arriving within {spread_s:g} s (seed {seed}); every third asks for a second run at once"),
            ("machine", f"{cores} cores, no GPU; load average (1, 5, 15 min) at start {load_start}, at end {load_end} "
                        "(other engineers' tests shared the cores)")]
    for name, figures in results.items():
        rows += rows_for(name, figures)
    if write:
        append_section(f"A class: {learners} learners x {seconds:g} s runs, local pool and Ray (python -m bench class)", rows)
    return {"results": results, "load_start": load_start, "load_end": load_end}


def _report(name: str, results: dict[str, Any], partial: Path) -> None:
    for k, v in rows_for(name, results[name]):
        print(f"{k}: {v}", flush=True)
    partial.write_text(json.dumps(results, indent=1), encoding="utf-8")
