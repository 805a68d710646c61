"""Pick the text to work with: a bundled corpus, the generated web-crawl sample, or your own (upload or paste).

Uploads are checked by the engine (size, UTF-8, not binary, long enough, not too many distinct characters) and
refused with its reason, the file's name shown as text (no path, no control characters, Markdown escaped); a
refused upload never touches what was saved before. Saving one more upload than a learner may keep removes their
oldest (`engine.extract.uploads`, docs/retention.md), and the page says which.
The choice is stored per learner, so later widgets use it too.
"""

from __future__ import annotations

import streamlit as st

from course.widgets import CorpusPickerParams
from engine.extract.cleaning import corpus_stats
from engine.extract.uploads import (
    MAX_UPLOAD_BYTES,
    MAX_UPLOADS,
    MAX_UPLOADS_BYTES,
    RETENTION_DAYS,
    UploadRejected,
    display_name,
    save_upload,
    validate_upload,
)
from ui import learner_corpus, session
from ui.text import escape_md

KIND_ICON = {"prose": "📜", "code": "🐍", "web": "🌐", "upload": "📄"}


def _take(name: str, data: bytes, key: str) -> None:
    me = session.learner()
    label = display_name(name)  # no path, no control characters; escaped below, since alerts render Markdown
    try:
        text = validate_upload(name, data)
    except UploadRejected as err:
        reason = err.reason  # the engine's sentence, which starts with the same label
        reason = escape_md(label) + reason[len(label):] if reason.startswith(label) else escape_md(reason)
        st.session_state[f"{key}-refused"] = f"“{escape_md(label)}” was refused: {reason}"
        return
    folder = learner_corpus.upload_folder(me.id)
    titles = {c.id: c.title for c in learner_corpus.available(me.id)}
    saved = save_upload(name, text, folder, keep=[learner_corpus.chosen(me.id).id])
    learner_corpus.choose(me.id, saved.id)
    st.session_state.pop(f"{key}-refused", None)
    msg = f"“{escape_md(label)}” is saved as your corpus ({len(text):,} characters)."
    if saved.removed:
        gone = ", ".join(f"“{titles.get(i, i)}”" for i in saved.removed)
        msg += f" To stay within {MAX_UPLOADS} uploads and {MAX_UPLOADS_BYTES // 2**20} MB, your oldest were removed: {gone}."
    st.session_state[f"{key}-accepted"] = msg


def _on_pick(key: str) -> None:
    learner_corpus.choose(session.learner().id, st.session_state[f"{key}-choice"])


def _on_paste(key: str) -> None:
    _take("pasted text", (st.session_state.get(f"{key}-paste") or "").encode("utf-8"), key)


# The engine functions at this demo's heart, shown under it by ui/code_view.py (read from engine/ when opened).
ENGINE_CODE = ("engine.extract.uploads:validate_upload", "engine.extract.cleaning:corpus_stats")


def render(params: CorpusPickerParams, key: str) -> bool:
    me = session.learner()
    options = learner_corpus.available(me.id)
    current = learner_corpus.chosen(me.id)
    ids = [c.id for c in options]
    st.session_state[f"{key}-choice"] = current.id  # the radio follows the saved choice (uploads change it too)
    by_id = {c.id: c for c in options}
    st.radio("Your corpus", ids, key=f"{key}-choice", on_change=_on_pick, args=(key,),
             format_func=lambda i: f"{KIND_ICON.get(by_id[i].kind, '📄')} {by_id[i].title}",
             captions=[f"{c.size_bytes / 1e6:.2f} MB · {c.description}" for c in options])

    if params.allow_upload or params.allow_paste:
        with st.expander("Bring your own text", icon=":material/upload_file:"):
            if params.allow_upload:
                st.caption(f"You keep up to {MAX_UPLOADS} uploads ({MAX_UPLOADS_BYTES // 2**20} MB in all): saving "
                           f"another removes your oldest. An upload not saved again for {RETENTION_DAYS} days is "
                           "removed.")
                # One limit, stated once: the drop zone shows it, the browser refuses a bigger file before sending
                # it, and engine.extract.uploads checks it again (with the same MB: 2**20 bytes).
                upload = st.file_uploader("Upload a plain-text file (UTF-8)", key=f"{key}-upload",
                                          max_upload_size=MAX_UPLOAD_BYTES // 2**20)
                if upload is not None and st.session_state.get(f"{key}-upload-seen") != upload.file_id:
                    st.session_state[f"{key}-upload-seen"] = upload.file_id  # handle each upload once
                    _take(upload.name, upload.getvalue(), key)
                    st.rerun()
            if params.allow_paste:
                st.text_area("…or paste text (at least 1,000 characters)", key=f"{key}-paste", height=120)
                st.button("Use the pasted text", key=f"{key}-paste-use", on_click=_on_paste, args=(key,),
                          icon=":material/content_paste:")
    if msg := st.session_state.get(f"{key}-refused"):
        st.error(msg, icon=":material/block:")
    if msg := st.session_state.pop(f"{key}-accepted", None):
        st.success(msg, icon=":material/check_circle:")

    docs = learner_corpus.documents(me.id, current)
    stats = corpus_stats(docs)
    a, b, c = st.columns(3)
    a.metric("Documents", f"{stats.documents:,}")
    b.metric("Characters", f"{stats.characters:,}")
    c.metric("Words", f"{stats.words:,}")
    st.caption(f"Source: {current.source}")
    with st.expander("Peek at three documents"):
        for doc in docs[:3]:
            st.code(doc[:600] + (" …" if len(doc) > 600 else ""), language=None, wrap_lines=True)
    return True
