""""Show me the code": under every live demo, the engine functions that produced what the learner sees, read from
the source files at run time (inspect), never pasted into a lesson. What a lesson describes is literally the code
that runs, and a learner can check it.

Each widget module names, beside its `render`, the one to three engine functions at its heart as
"module:qualified.name" strings (`ENGINE_CODE`), resolved only when drawn (a test checks every name resolves to code
in engine/). Strings, not imports, so this costs nothing until a learner opens the expander, and a renamed function
shows a plain message instead of taking the lesson down.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import textwrap
from dataclasses import dataclass
from pathlib import Path

import streamlit as st

import paths

REPO = paths.ROOT

@dataclass(frozen=True)
class CodeSnippet:
    name: str  # the qualified name, e.g. "GPT.forward"
    path: str  # the file, relative to the project, e.g. "engine/transform/model.py"
    line: int  # where the definition starts (1-based)
    source: str


@functools.lru_cache(maxsize=128)
def resolve(target: str) -> CodeSnippet:
    """'engine.transform.descent:descend' -> its source, file and first line, read from the source file once per server
    process (the source a running server executes does not change under it; every rerun draws the expander).

    >>> snippet = resolve("engine.transform.descent:descend")
    >>> snippet.path, snippet.source.startswith("def descend(")
    ('engine/transform/descent.py', True)
    """
    module_name, _, qualname = target.partition(":")
    obj = importlib.import_module(module_name)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    obj = inspect.unwrap(obj)
    lines, first = inspect.getsourcelines(obj)
    path = Path(inspect.getsourcefile(obj) or "").resolve()
    return CodeSnippet(name=qualname, path=path.relative_to(REPO).as_posix(), line=first,
                       source=textwrap.dedent("".join(lines)).rstrip())  # a method loses its class's indent


def render_code(targets: tuple[str, ...], key: str) -> None:
    """A collapsed expander under the demo with the engine code behind it, drawn only once it is opened.

    Why lazy: the browser syntax-highlights every st.code it receives, opened or not, at every rerun of the page,
    for code most learners never open; with a class's browsers on one machine that is a large part of a click's
    time (docs/benchmarks.md, the load benchmark). `on_change="rerun"` makes Streamlit report whether the expander
    is open.
    """
    if not targets:
        return
    box = st.expander("The engine code behind this demo", icon=":material/code:", key=f"{key}-code",
                      on_change="rerun")
    if not box.open:
        return
    with box:
        st.caption("Read from the course's own source files as this page was drawn: this is the code that "
                   "produced what you see above, not a simplified copy.")
        for target in targets:
            try:
                snippet = resolve(target)
            except (ImportError, AttributeError, OSError, TypeError) as err:
                st.caption(f"`{target}` could not be read ({err}).")
                continue
            st.markdown(f"**`{snippet.name}`** in `{snippet.path}`, line {snippet.line}")
            st.code(snippet.source, language="python")
