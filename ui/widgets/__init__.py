"""The widget registry: a card's `widget: {name: ...}` is drawn by ui/widgets/<name>.py.

The names are listed once, in `course/widgets.py` with their parameter models (the validator's side); each name's
module here holds its `render(params, key)` and, beside it, `ENGINE_CODE`, the engine functions the code expander
under the demo shows. A test checks every listed name has such a module and every module here is listed.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

import streamlit as st

from course.widgets import WIDGET_PARAMS
from ui.code_view import render_code
from ui.text import escape_md


def widget_module(name: str) -> ModuleType:
    """The module that draws widget `name`: ui/widgets/<name>.py, with its `render(params, key)` and `ENGINE_CODE`.
    Imported when first drawn (the warm-up thread, ui/warmup.py, has usually imported it already)."""
    if name not in WIDGET_PARAMS:
        raise KeyError(f"unknown widget {name!r}")
    return importlib.import_module(f"{__name__}.{name}")


def render_widget(name: str, params: dict[str, Any], key: str) -> bool:
    """Draw a live widget inside a card; a failure is contained to the card (the lesson keeps working).

    Returns whether the card's `after` text should show: a widget returns False while the learner has not yet
    done the thing the text discusses (e.g. no training run yet), so results are not revealed before the guess.
    """
    model = WIDGET_PARAMS[name].model_validate(params)
    with st.container(border=True, key=f"widget-{key}"):
        code: tuple[str, ...] = ()
        try:
            module = widget_module(name)
            code = module.ENGINE_CODE
            reveal = module.render(model, key) is not False
        except Exception as err:  # a widget bug (even one that breaks its import) must not take the lesson down
            st.error(f"This live demo hit a problem and stopped: {escape_md(str(err))}", icon=":material/error:")
            reveal = True
        render_code(code, key)
        return reveal
