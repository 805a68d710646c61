"""A one-widget page for tests: renders the widget named in session state, as a lesson card would."""

import streamlit as st

from ui.widgets import render_widget

render_widget(st.session_state.get("harness_widget", "corpus_picker"), st.session_state.get("harness_params", {}),
              key="harness")
