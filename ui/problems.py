"""An error card for content that could not be loaded: which file, where, what was expected."""

from __future__ import annotations

from collections.abc import Sequence

import streamlit as st

from course.loader import Problem


def render_problems(headline: str, problems: Sequence[Problem]) -> None:
    with st.container(border=True):
        st.error(headline, icon=":material/error:")
        # st.code shows the text verbatim: file contents never reach the page as Markdown or HTML.
        st.code("\n".join(str(p) for p in problems) or "unknown problem", language=None, wrap_lines=True)
        st.caption("Fix the file and reload the page; `python -m course.validate` lists every problem.")
