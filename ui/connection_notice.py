"""What the browser says when the course server stops: the course's own words instead of Streamlit's.

Streamlit's frontend writes its connection-error dialog itself, with no setting to change it. Opened from any
address but `localhost` it asks "Are you connected to the internet?", and from `localhost` it says to restart
`streamlit run yourscript.py`: both wrong for a course served from the learner's own machine with `make run`.
The app has no dialog of its own (it never uses st.dialog), so a style rule can hide the message inside any
dialog and show ours in its place; the dialog's title ("Connection error") and its Close button stay. The rule
is in the page from the first draw, so it is still there when the server has gone.

`visibility: hidden` (not only a zero font size) keeps screen readers from reading the hidden message; the
replacement text is generated content, which screen readers read.
"""

from __future__ import annotations

import streamlit as st

MESSAGE = ("The course server has stopped, so this page cannot update. Start it again with make run in the "
           "course folder: the page reconnects by itself, and your progress and runs are kept.")

_STYLE = f"""<style>
section[role="dialog"] h2 + div > div {{ visibility: hidden; font-size: 0; }}
section[role="dialog"] h2 + div > div::after {{
  content: "{MESSAGE}"; visibility: visible; font-size: 1rem; line-height: 1.6; display: block;
}}
</style>"""


def install() -> None:
    """Put the style rule in the page (drawn nowhere: a style-only st.html takes no space)."""
    st.html(_STYLE)
