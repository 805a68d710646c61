"""Class mode: who is signed in, through Streamlit's own OIDC sign-in (`st.login`, `st.user`), and what they may see.

Class mode is on when `.streamlit/secrets.toml` has an `[auth]` section, the identity provider Streamlit's
`st.login` uses (docs/deploy.md). Then:

- a learner's identity comes from the sign-in alone: the provider's subject names their progress
  (`ProgressStore.signed_in_learner`); there is no profile picker and no "most recent learner" to fall back on;
- nobody who has not signed in sees anything but the sign-in page;
- instructors are named in `[course]` (course/classroom.py); only they get the instructor's pages, which are not
  even registered for anyone else, so their addresses answer "page not found".

Without `[auth]` the course is in single-learner mode, as `make run` serves it: local profiles, on 127.0.0.1.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from course.classroom import ClassSettings, settings_from


def _secrets_section(name: str) -> dict[str, Any] | None:
    try:
        section = st.secrets.get(name)
    except FileNotFoundError:  # no secrets.toml at all: single-learner mode
        return None
    except Exception:  # an unreadable secrets.toml is a deployment error: say so, never fall back to open mode
        raise
    return dict(section) if section is not None else None


def class_mode() -> bool:
    """Whether sign-in is configured (an `[auth]` section in secrets.toml)."""
    return _secrets_section("auth") is not None


def settings() -> ClassSettings:
    return settings_from(_secrets_section("course"))


def claims() -> dict[str, Any]:
    """What the identity provider said about the signed-in person (empty when nobody is signed in)."""
    return st.user.to_dict() if st.user.is_logged_in else {}


def signed_in() -> bool:
    return bool(st.user.is_logged_in) and bool(claims().get("sub"))


def is_instructor() -> bool:
    """Signed in, and named an instructor by email or by claim in `[course]`."""
    return class_mode() and signed_in() and settings().is_instructor(claims())


def render_sign_in() -> None:
    """The one page someone who has not signed in sees in class mode."""
    st.title("How LLMs are trained, by training one")
    st.write("This course is run for a class. Sign in with your institution's account to continue: your answers, "
             "reflections and training runs are kept under that account, and only you and your instructors see them.")
    st.button("Log in", icon=":material/login:", type="primary", on_click=st.login, key="auth-login")
