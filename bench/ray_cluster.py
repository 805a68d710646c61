"""A real Ray head for tests, inside a network namespace of its own, and drivers that talk to it from inside too.

Ray picks the machine's outward address for its own traffic even when told 127.0.0.1, and these machines allow
traffic to loopback only. So `RayCluster` makes a network namespace (`unshare --net`, then `ip link set lo up`),
where only lo exists and Ray has no other address to pick, and starts the head there in the foreground
(`ray start --head --block`) in its own process group. Every process that talks to the head joins the namespace
with `nsenter --net=/proc/<pid>/ns/net` (`RayCluster.popen`). Stopping ends the head's process group, then any
process the test started that is still in the namespace, each by its id: never Ray's own stop command, never by
name.

`Driver` is a course server in miniature: `python -m bench.ray_cluster ADDRESS ...` makes an
engine.runs.ray_backend.RayBackend (or, `course_server`, a RunManager on Ray) and answers JSON calls on stdin
({"method", "args"}) with one JSON line each ({"ok": result} or {"error": class name, "message"}), so a test can
drive it, or SIGKILL the process that launched a run. Creating a namespace needs root: `namespace_problem()` says why not, for a skip.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
# RAY_AUTH_MODE=disabled: a cluster in its own network namespace needs no token, and Ray otherwise decides per
# process: a process that starts a local cluster writes ~/.ray/auth_token, and every later process that finds the file
# turns token auth on. One such file, left by some Ray process during a full test run, split a head without auth from a course
# server with it (the server could not follow its runs), and broke every Ray test after it on that machine.
RAY_ENV = {"RAY_USAGE_STATS_ENABLED": "0", "PYTHONPATH": str(REPO), "RAY_AUTH_MODE": "disabled"}


def namespace_problem() -> str | None:
    """Why a network namespace cannot be made here (a reason to skip), or None when it can."""
    for tool in ("unshare", "nsenter", "ip"):
        if shutil.which(tool) is None:
            return f"`{tool}` is not installed, so the Ray tests cannot make a network namespace"
    probe = subprocess.run(["unshare", "--net", "--", "ip", "link", "set", "lo", "up"], capture_output=True, text=True)
    if probe.returncode != 0:
        return f"cannot create a network namespace (needs root): {probe.stderr.strip()}"
    return None


def _ns_inode(pid: int) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/ns/net")
    except OSError:
        return None


class RayCluster:
    """A Ray head with `num_cpus` CPUs and `num_gpus` logical GPUs, alone in a network namespace. Use as a
    context manager, or call `stop()`."""

    def __init__(self, num_cpus: int = 4, num_gpus: int = 1, port: int = 6379, timeout: float = 60.0) -> None:
        self.temp_dir = tempfile.mkdtemp(prefix="ray-t-", dir="/tmp")  # short: Ray's socket paths have a limit
        self.address = f"127.0.0.1:{port}"
        # the namespace's holder: a sleeping shell in it, which the others join through /proc/<pid>/ns/net
        self._holder = subprocess.Popen(
            ["unshare", "--net", "--", "sh", "-c", "ip link set lo up && echo ready && exec sleep 100000"],
            stdout=subprocess.PIPE, text=True, start_new_session=True)
        if self._holder.stdout.readline().strip() != "ready":
            self._holder.kill()
            raise RuntimeError("could not make a network namespace with lo up")
        self.netns = f"/proc/{self._holder.pid}/ns/net"
        self._inode = _ns_inode(self._holder.pid)
        log = open(Path(self.temp_dir) / "head.log", "w", encoding="utf-8")  # noqa: SIM115 - closed in stop()
        self._log = log
        self._head = self.popen(
            [str(Path(sys.executable).parent / "ray"), "start", "--head", "--block", f"--port={port}",
             "--node-ip-address=127.0.0.1", f"--num-cpus={num_cpus}", f"--num-gpus={num_gpus}",
             "--include-dashboard=false", "--disable-usage-stats", f"--temp-dir={self.temp_dir}"],
            stdout=log, stderr=subprocess.STDOUT)
        try:
            self._wait_ready(timeout)
        except BaseException:
            self.stop()
            raise

    def popen(self, args: list[str], **kwargs: Any) -> subprocess.Popen:
        """Start `args` inside the namespace, in a process group of its own, with usage stats off and the
        repository importable."""
        env = {**os.environ, **RAY_ENV, **kwargs.pop("env", {})}
        return subprocess.Popen(["nsenter", f"--net={self.netns}", "--", *args], env=env, cwd=REPO,
                                start_new_session=True, **kwargs)

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._head.poll() is not None:
                raise RuntimeError(f"the Ray head exited: {self.head_log()[-3000:]}")
            if "Ray runtime started" in self.head_log():
                return
            time.sleep(0.2)
        raise RuntimeError(f"the Ray head did not start in {timeout:g} s: {self.head_log()[-3000:]}")

    def head_log(self) -> str:
        return (Path(self.temp_dir) / "head.log").read_text(encoding="utf-8", errors="replace")

    def driver(self, **backend: Any) -> Driver:
        """A new driver process in the namespace with a RayBackend(address, **backend)."""
        return Driver(self, backend)

    def course_server(self, runs_root: Path | str, db: Path | str, slots: int | None = None,
                      **backend: Any) -> Driver:
        """A new driver process in the namespace holding a course server's RunManager on Ray (its queue in `db`,
        `slots` runs at once: by default as many as the cluster holds): submit, snapshot, stop, running."""
        return Driver(self, backend, {"runs_root": str(runs_root), "db": str(db), "slots": slots})

    def pids(self) -> list[int]:
        """Every process in this cluster's namespace (the head, its workers, drivers), the holder aside."""
        return [int(p) for p in os.listdir("/proc") if p.isdigit() and int(p) != self._holder.pid
                and _ns_inode(int(p)) == self._inode]

    def stop(self) -> None:
        """End the head's process group, then every process still in the namespace (the head's workers, which make
        groups of their own), each by its id, then the holder; remove the temp dir. SIGKILL at once: the cluster
        holds nothing a test keeps, and `ray start --block` takes many seconds to end politely."""
        head = getattr(self, "_head", None)
        if head is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(head.pid, signal.SIGKILL)
            head.wait(timeout=10)
        self._kill_namespace()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self._holder.pid, signal.SIGKILL)
        self._holder.wait(timeout=10)
        with contextlib.suppress(AttributeError):
            self._log.close()
        shutil.rmtree(self.temp_dir, ignore_errors=True)

    def _kill_namespace(self) -> None:
        """SIGKILL each process left in this test's namespace (only processes this cluster started live there)."""
        for _ in range(50):
            left = [int(p) for p in os.listdir("/proc") if p.isdigit() and int(p) != self._holder.pid
                    and _ns_inode(int(p)) == self._inode]
            if not left:
                return
            for pid in left:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.1)

    def __enter__(self) -> RayCluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class DriverError(Exception):
    """A call the driver answered with an error: `kind` is the exception's class name (e.g. "RunGone")."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(f"{kind}: {message}")
        self.kind = kind


class Driver:
    """A process in the cluster's namespace holding a RayBackend; `call("launch", run_id, job)` and so on."""

    def __init__(self, cluster: RayCluster, backend: dict[str, Any], manager: dict[str, Any] | None = None) -> None:
        args = [sys.executable, "-m", "bench.ray_cluster", cluster.address, json.dumps(backend)]
        if manager is not None:
            args.append(json.dumps(manager))
        self.proc = cluster.popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
        self._lock = threading.Lock()

    def call(self, method: str, *args: Any, timeout: float = 60.0) -> Any:
        with self._lock:
            self.proc.stdin.write(json.dumps({"method": method, "args": list(args)}) + "\n")
            self.proc.stdin.flush()
            line = _readline(self.proc, timeout)
        answer = json.loads(line)
        if "error" in answer:
            raise DriverError(answer["error"], answer["message"])
        return answer["ok"]

    def kill(self) -> None:
        """SIGKILL the driver, as when a course server is killed."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()


def _readline(proc: subprocess.Popen, timeout: float) -> str:
    result: list[str] = []
    reader = threading.Thread(target=lambda: result.append(proc.stdout.readline()), daemon=True)
    reader.start()
    reader.join(timeout)
    if not result or not result[0]:
        raise AssertionError(f"the driver gave no answer within {timeout:g} s (exit code {proc.poll()})")
    return result[0]


class _ManagerCalls:
    """A course server's run manager on Ray, answering in plain JSON: what a page asks of it."""

    def __init__(self, address: str, backend: dict[str, Any], options: dict[str, Any]) -> None:
        from engine.runs.manager import RunManager
        from engine.runs.pool_settings import PoolSettings
        from engine.runs.queue_store import QueueStore
        from engine.runs.ray_backend import RayBackend

        ray = RayBackend(address, **backend)
        self.manager = RunManager(workers="ray", ray=ray, runs_root=options["runs_root"],
                                  settings=PoolSettings(slots=options.get("slots") or ray.capacity(),
                                                        threads_per_run=1),
                                  queue_store=QueueStore(options["db"]), terminate_after=5.0, kill_after=5.0)

    def submit(self, config: dict[str, Any], text: str, owner: str = "", label: str = "", gpus: int = 1) -> str:
        from engine.train.config import TrainConfig

        return self.manager.submit(TrainConfig.from_dict(config), text, owner=owner, label=label, gpus=gpus)

    def snapshot(self, run_id: str, run_dir: str | None = None) -> dict[str, Any]:
        snap = self.manager.snapshot(run_id, run_dir=run_dir)
        return {"status": str(snap.status), "step": snap.step, "losses": [r.get("train_loss") for r in snap.metrics],
                "evals": snap.evals, "queue_position": snap.queue_position, "message": snap.message,
                "run_dir": snap.run_dir, "resumable": snap.resumable, "device_sentence": snap.device_sentence}

    def stop(self, run_id: str) -> None:
        self.manager.stop(run_id)

    def running(self) -> int:
        return len(self.manager.slots())

    def class_sim(self, options: dict[str, Any]) -> dict[str, Any]:
        """A whole simulated class through this manager (bench.class_sim.simulate's keyword `options`), with this
        process's peak memory: the manager on Ray lives here, inside the namespace."""
        from bench.class_sim import PeakRss, own_pid, simulate
        from paths import DEFAULT_CORPUS

        with PeakRss(own_pid) as server:
            figures = simulate(self.manager, DEFAULT_CORPUS.read_text(encoding="utf-8"), **options)
        return {**figures, "server_mib": server.peak_mib}


def _serve(address: str, backend_options: str, manager_options: str | None = None) -> None:
    """The driver process: answer one JSON call per stdin line until stdin closes."""
    out = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1, encoding="utf-8")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # stdout carries answers only
    from engine.runs.ray_backend import RayBackend

    if manager_options is not None:
        backend = _ManagerCalls(address, json.loads(backend_options), json.loads(manager_options))
    else:
        backend = RayBackend(address, **json.loads(backend_options))
    for line in sys.stdin:
        request = json.loads(line)
        try:
            answer = {"ok": getattr(backend, request["method"])(*request["args"])}
        except Exception as err:  # noqa: BLE001 - every error goes back to the test by name
            answer = {"error": type(err).__name__, "message": str(err)}
        out.write(json.dumps(answer) + "\n")


if __name__ == "__main__":
    _serve(*sys.argv[1:4])
