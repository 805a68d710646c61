"""Entry point: `streamlit run app.py`. Only wires navigation; every page lives in ui/.

Nothing heavy is imported here: Home draws from the course and the progress store alone, and the modules the
other pages need (torch, the engine, pandas and pyarrow for Streamlit's tables) are imported by one background
thread that Home starts (ui/warmup.py); those pages wait for it before they draw.
"""

import streamlit as st

from ui import connection_notice, navigation, sidebar

st.set_page_config(page_title="Train an LLM: an interactive course", page_icon="🧠", layout="wide")
page = st.navigation(navigation.build())
connection_notice.install()
sidebar.render()
page.run()
sidebar.render_runs()  # after the page, which has said which runs it already shows live
