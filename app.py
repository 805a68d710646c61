"""Entry point: `streamlit run app.py`. Only wires navigation; every page lives in ui/."""

import streamlit as st

from ui import navigation, sidebar

st.set_page_config(page_title="Train an LLM: an interactive course", page_icon="🧠", layout="wide")
page = st.navigation(navigation.build())
sidebar.render()
page.run()
sidebar.render_runs()  # after the page, which has said which runs it already shows live
