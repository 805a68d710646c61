"""What `make run` and every course server start: `streamlit run serve.py`.

The course is app.py. This file only puts it inside Streamlit's ASGI app so that one check Streamlit has no setting
for stands in front of it: in class mode a downloaded file is served only to the signed-in learner whose page made
it (ui/private_files.py). Everything else (pages, sign-in, configuration, command-line flags) is Streamlit's own.
"""

from pathlib import Path

import streamlit as st
from starlette.middleware import Middleware

from ui.private_files import OwnFilesOnly

app = st.App(Path(__file__).with_name("app.py"), middleware=[Middleware(OwnFilesOnly)])
