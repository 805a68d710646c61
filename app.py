"""Entry point: `streamlit run app.py`. Only wires navigation; every page lives in ui/."""

import streamlit as st

from ui import navigation, sidebar

st.set_page_config(page_title="Train an LLM: an interactive course", page_icon="🧠", layout="wide")
sidebar.render()
st.navigation(navigation.build()).run()
