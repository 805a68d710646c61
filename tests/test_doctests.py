"""Every example in a docstring is executed: a `>>>` line that no test runs can rot unnoticed.

Walks every module of engine/, course/ and ui/ and the top-level modules every layer shares, runs its doctests, and checks that a module whose source holds
`>>>` examples really ran them. Skipping an example (`+SKIP`) is not allowed: an example that cannot run here
belongs in a test with the setup it needs, not in a docstring that claims it works.
"""

from __future__ import annotations

import doctest
import importlib
import pkgutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("engine", "course", "ui")
SHARED = ("databases", "manifests", "paths")  # the top-level modules every layer may import


def _modules() -> list[str]:
    names = list(SHARED)
    for package in PACKAGES:
        names.append(package)
        names += [m.name for m in pkgutil.walk_packages([str(ROOT / package)], prefix=f"{package}.")]
    return sorted(names)


@pytest.mark.parametrize("name", _modules())
def test_docstring_examples_run_and_pass(name: str) -> None:
    module = importlib.import_module(name)
    source = Path(module.__file__).read_text(encoding="utf-8")
    assert "doctest: +SKIP" not in source, f"{name} skips a docstring example: make it run or move it to a test"
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, verbose=False)
    assert result.failed == 0, f"{name}: {result.failed} docstring example(s) failed (run: python -m doctest -v)"
    if ">>> " in source:
        assert result.attempted > 0, f"{name} has >>> examples that doctest did not find (inside a string literal?)"
