"""The layers stay as docs/architecture.md draws them, checked from the source (imports inside functions included).

- `engine/` and `course/` never import Streamlit or `ui`, and not each other;
- `paths.py` (every layer's folders and environment variables) imports nothing of the project, and `manifests.py`
  (the one reader of the data manifests engine and course share) only `paths`, PyYAML and the standard library;
- `databases.py` (the one database engine and course both keep tables in) imports only SQLAlchemy and the standard
  library;
- no production module imports `tests` or `bench` (benchmarks import the course, never the other way round);
- an engine stage imports no stage listed after it in STAGES, except the crossings docs/architecture.md names;
- a live widget (ui/widgets/X.py) never imports another widget's module: what two widgets share lives in ui/;
- no import cycles between the project's modules, late imports included.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("engine", "course", "ui", "bench")
# The engine's stages in pipeline order (engine/__init__.py): a stage may import the ones before it.
STAGES = ("extract", "transform", "train", "runs", "load", "retrieve", "look_inside", "cost", "post_training")
# The crossings against that order, each named with its reason in docs/architecture.md ("Engine stages").
BACKWARD_ALLOWED = {
    ("train", "load"): "a run writes its checkpoint while it trains and resumes from it",
    ("runs", "load"): "a run's snapshot is read back from its checkpoint folder",
    ("extract", "transform"): "an upload is refused when no character tokenizer could read it",
    ("load", "look_inside"): "the safetensors round trip proves itself by writing text with the sampler",
    ("train", "post_training"): "an SFT run's special tokens, exchange batches and LoRA adapters are built in prepare",
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _sources() -> dict[str, Path]:
    found = {_module_name(p): p for package in PACKAGES for p in (ROOT / package).rglob("*.py")}
    found["app"] = ROOT / "app.py"
    found["serve"] = ROOT / "serve.py"
    found["paths"] = ROOT / "paths.py"
    found["manifests"] = ROOT / "manifests.py"
    found["databases"] = ROOT / "databases.py"
    return found


def _imports(path: Path, modules: set[str]) -> set[str]:
    """Every module name this file imports, anywhere in it (resolved to a known module where possible)."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
            # `from engine import corpus` imports the module engine.extract.corpus
            out.update(f"{node.module}.{alias.name}" for alias in node.names
                       if f"{node.module}.{alias.name}" in modules)
    return out


def _graph() -> dict[str, set[str]]:
    sources = _sources()
    names = set(sources)
    return {name: _imports(path, names) for name, path in sources.items()}


def test_engine_and_course_stay_plain_python() -> None:
    for name, imported in _graph().items():
        top = name.split(".")[0]
        tops = {i.split(".")[0] for i in imported}
        if top in ("engine", "course"):
            assert "streamlit" not in tops, f"{name} imports Streamlit: only ui/ may"
            assert "ui" not in tops, f"{name} imports ui/: dependencies point from ui to engine and course"
            other = "course" if top == "engine" else "engine"
            assert other not in tops, f"{name} imports {other}/: engine and course stay independent"


def test_no_production_module_imports_tests() -> None:
    for name, imported in _graph().items():
        assert not any(i == "tests" or i.startswith("tests.") for i in imported), f"{name} imports tests/"


def test_paths_is_a_leaf_every_layer_may_import() -> None:
    """paths.py holds the folders and environment variables of every layer, so it may import nothing of theirs."""
    graph = _graph()
    assert graph["paths"] <= {"__future__", "os", "pathlib"}, f"paths.py imports {sorted(graph['paths'])}"


def test_databases_is_a_leaf_every_layer_may_import() -> None:
    """databases.py sets up the database both the run queue and the progress store use, so it imports no layer."""
    imported = _graph()["databases"]
    allowed = set(sys.stdlib_module_names) | {"__future__", "sqlalchemy"}
    assert {i.split(".")[0] for i in imported} <= allowed, f"databases.py imports {sorted(imported)}"


def test_manifests_is_a_leaf_every_layer_may_import() -> None:
    """manifests.py is the one reader of data files both the engine and the course read (they never import each
    other), so it may import only `paths`, PyYAML and the standard library: no layer, no pydantic, no torch."""
    imported = _graph()["manifests"]
    allowed = set(sys.stdlib_module_names) | {"__future__", "yaml", "paths"}
    assert {i.split(".")[0] for i in imported} <= allowed, f"manifests.py imports {sorted(imported)}"


def test_nothing_in_the_course_imports_the_benchmarks() -> None:
    for name, imported in _graph().items():
        if not name.startswith("bench"):
            assert not any(i == "bench" or i.startswith("bench.") for i in imported), f"{name} imports bench/"


def _stage(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 2 and parts[0] == "engine" and parts[1] in STAGES else None


def test_engine_stages_import_only_earlier_stages() -> None:
    crossings = set()
    for name, imported in _graph().items():
        here = _stage(name)
        for dep in imported:
            there = _stage(dep)
            if here and there and STAGES.index(there) > STAGES.index(here):
                crossings.add((here, there))
                assert (here, there) in BACKWARD_ALLOWED, (
                    f"{name} imports {dep}: the {there} stage comes after {here}; move the code, or name the "
                    "crossing and its reason in docs/architecture.md and BACKWARD_ALLOWED")
    assert crossings == set(BACKWARD_ALLOWED), f"crossings no longer made: {set(BACKWARD_ALLOWED) - crossings}"
    architecture = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    for here, there in BACKWARD_ALLOWED:
        assert f"{here} -> {there}" in architecture, f"docs/architecture.md does not name the {here} -> {there} crossing"


def test_engine_top_level_holds_no_benchmark() -> None:
    assert not [p.name for p in (ROOT / "engine").glob("*.py") if "bench" in p.name]


def test_widgets_do_not_import_each_other() -> None:
    for name, imported in _graph().items():
        if name.startswith("ui.widgets."):
            others = {i for i in imported if i.startswith("ui.widgets.") and i != name}
            assert not others, f"{name} imports another widget's module {sorted(others)}: share it from ui/ instead"


def test_no_import_cycles() -> None:
    graph = _graph()
    project = {n: {i for i in deps if i in graph and i != n} for n, deps in graph.items()}
    # a package's __init__ that imports its own submodules (ui/widgets' registry) is not a cycle back to them
    for n, deps in project.items():
        project[n] = {d for d in deps if not d.startswith(n + ".")}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for dep in sorted(project[node]):
            if state.get(dep) == 1:
                cycle = stack[stack.index(dep):] + [dep]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if dep not in state:
                visit(dep)
        stack.pop()
        state[node] = 2

    for node in sorted(project):
        if node not in state:
            visit(node)
