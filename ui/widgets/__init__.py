"""The UI side of the widget registry: widget name -> render function.

`course/widgets.py` lists the same names with their parameter models (the validator's side). A test checks that
both sides name exactly the same widgets. Every render function takes the validated params and a key prefix.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import streamlit as st

from course.widgets import WIDGET_PARAMS
from ui.widgets import next_char_counts

RENDERERS: dict[str, Callable[[Any, str], None]] = {
    "next_char_counts": next_char_counts.render,
}


def render_widget(name: str, params: dict[str, Any], key: str) -> None:
    """Draw a live widget inside a card; a failure is contained to the card (the lesson keeps working)."""
    model = WIDGET_PARAMS[name].model_validate(params)
    with st.container(border=True, key=f"widget-{key}"):
        try:
            RENDERERS[name](model, key)
        except Exception as err:  # a widget bug must not take the lesson down
            st.error(f"This live demo hit a problem and stopped: {err}", icon=":material/error:")
