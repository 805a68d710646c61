"""Class mode's owner check on the files the server serves: a download goes only to the learner whose page made it.

Streamlit serves every download from `/media/<id>.<ext>` to whoever asks for that address. The id is a hash of the
file's bytes, so nobody can guess it, but a link that is copied, logged or left in a shared browser history would
still fetch another learner's progress, report card or model. So in class mode:

- every download the course offers goes through `download_button` here, which records the file's id under the
  signed-in learner's subject (for a file made on click, when it is made);
- `OwnFilesOnly`, which serve.py puts in front of Streamlit, answers 403 to a request for a file under `/media/`
  unless the request's sign-in cookie names a subject the file was recorded for. A file nobody recorded is refused
  too (fail closed): the course puts nothing else there.

Single-learner mode has no identity to check: nothing is recorded and every file is served as Streamlit does.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import streamlit as st
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Receive, Scope, Send
from streamlit.runtime.download_data_util import convert_data_to_bytes_and_infer_mime
from streamlit.runtime.memory_media_file_storage import _calculate_file_id
from streamlit.web.server.starlette.starlette_websocket import (
    USER_COOKIE_NAME,
    _get_signed_cookie_with_chunks,
)

from ui import auth

MEDIA_PREFIX = "/media/"
KEPT = 50_000  # ids remembered per server; the oldest are forgotten first (and then refused, never opened up)
REFUSAL = ("This download was made for another signed-in learner, or your sign-in has ended. "
           "Sign in and press the download button on the course page again.")

_lock = threading.Lock()
_owners: OrderedDict[str, set[str]] = OrderedDict()  # file id -> the subjects it may be served to


def record(file_id: str, subject: str) -> None:
    """Let `subject` fetch the file `file_id` (two learners whose files are byte for byte the same share one id)."""
    with _lock:
        _owners.setdefault(file_id, set()).add(subject)
        _owners.move_to_end(file_id)
        while len(_owners) > KEPT:
            _owners.popitem(last=False)


def may_fetch(file_id: str, subject: str | None) -> bool:
    """Whether a request signed in as `subject` (None: not signed in) may fetch `file_id`.

    >>> record("abc", "alice"); may_fetch("abc", "alice"), may_fetch("abc", "bob"), may_fetch("abc", None)
    (True, False, False)
    >>> may_fetch("never-recorded", "alice")
    False
    """
    with _lock:
        return subject is not None and subject in _owners.get(file_id, ())


def file_id_of(data: object, mime: str, file_name: str) -> str:
    """The id Streamlit's media store gives this download (the same hash of bytes, type and name it computes)."""
    data_bytes, _ = convert_data_to_bytes_and_infer_mime(data, unsupported_error=TypeError(type(data).__name__))
    return _calculate_file_id(data_bytes, mime, file_name)


def download_button(label: str, data: str | bytes | Callable[[], str | bytes], file_name: str, mime: str,
                    where: Any = st, **kwargs: Any) -> bool:
    """`st.download_button` (in `where`, a column say), with the file recorded for the signed-in learner in class
    mode. `data` may be a callable (Streamlit calls it, outside the page's run, when the button is pressed): the
    file is then made, and recorded, only on a press."""
    subject = auth.claims().get("sub") if auth.class_mode() else None
    if subject is not None:
        if callable(data):
            make = data

            def data() -> str | bytes:
                made = make()
                record(file_id_of(made, mime, file_name), str(subject))
                return made
        else:
            record(file_id_of(data, mime, file_name), str(subject))
    return where.download_button(label, data, file_name=file_name, mime=mime, **kwargs)


def _media_id(path: str) -> str | None:
    """The file id a request path names under /media/, else None.

    >>> _media_id("/media/3f2a.json"), _media_id("/course/media/3f2a"), _media_id("/lesson-1")
    ('3f2a', '3f2a', None)
    """
    _, found, rest = path.rpartition(MEDIA_PREFIX)
    return rest.split(".", 1)[0] if found and rest and "/" not in rest else None


def _subject_of(request: Request) -> str | None:
    """The subject of the request's Streamlit sign-in cookie (signed with the server's cookie secret), else None."""
    raw = _get_signed_cookie_with_chunks(dict(request.cookies), USER_COOKIE_NAME)
    if not raw:
        return None
    try:
        payload = json.loads(raw)
    except ValueError:
        return None
    subject = payload.get("sub") if isinstance(payload, dict) and payload.get("is_logged_in") else None
    return str(subject) if subject else None


class OwnFilesOnly:
    """ASGI middleware: in class mode, a file under /media/ is served only to a subject it was recorded for."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and (file_id := _media_id(scope["path"])) is not None and auth.class_mode():
            if not may_fetch(file_id, _subject_of(Request(scope))):
                await PlainTextResponse(REFUSAL, status_code=403)(scope, receive, send)
                return
        await self.app(scope, receive, send)
