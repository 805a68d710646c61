"""Entry point: `streamlit run app.py`. Only wires navigation; every page lives in ui/.

pandas and pyarrow are imported here, first thing, because Streamlit imports them lazily the first time a page
draws a table. A click that lands while that first import runs stops the script mid-import and leaves the module
half-initialised for the rest of the process ("partially initialized module 'pandas' has no attribute 'Series'",
seen on lesson 8's step table). Imported before the first widget is drawn, no click can interrupt them.
"""

import pandas  # noqa: F401  (before any widget exists: see the docstring)
import pyarrow  # noqa: F401
import streamlit as st

from ui import connection_notice, navigation, sidebar

st.set_page_config(page_title="Train an LLM: an interactive course", page_icon="🧠", layout="wide")
page = st.navigation(navigation.build())
connection_notice.install()
sidebar.render()
page.run()
sidebar.render_runs()  # after the page, which has said which runs it already shows live
