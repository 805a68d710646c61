"""Lesson 10's RAG playground: ask a question of the course's own text (plus a bundled corpus and the learner's
uploads) and see what the two retrievers put in front of a model, with their scores, and the prompt they make.

The lesson text is the course the pages show (`ui.lesson_documents`, from `ui.session.course()`). Indexing takes
tens of seconds (docs/benchmarks.md), so it never happens in a script run: a button starts it in a background
thread, one build at a time per server process (two would fight over torch's process-wide thread count, see
`engine.retrieve.embedder.embed`), and a fragment polls it every second. The built index stays in this module's
registry, keyed by a hash of documents and chunk knobs, so every learner and rerun with the same documents reuses
it; its store is saved in `retrieval/` beside the training runs and loaded without asking when it is already
there. A plain rerun never starts a build.
"""

from __future__ import annotations

import dataclasses
import re
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import streamlit as st

from course.widgets import RagPlaygroundParams
from engine.extract import corpus as engine_corpus
from engine.retrieve import rag
from engine.retrieve import sources as rag_sources
from engine.retrieve.chunking import Chunk, Document, check_knobs, chunk_documents
from engine.retrieve.rag import Hit, RetrievalIndex, RetrievalResult
from engine.retrieve.vector_store import VectorStore
from engine.runs.manager import get_manager
from ui import learner_corpus, session
from ui.lesson_documents import lesson_documents
from ui.text import escape_md

PREVIEW_CHARS = 220  # of a chunk shown before "the whole chunk" expander
KEEP_INDEXES = 4  # ready indexes kept in memory (a few chunk-size settings); older ones are reloaded from disk
PROMPT_FROM = {"both": "Both lists (semantic first, each chunk once)", "semantic": "Semantic top k",
               "keyword": "Keyword top k"}


# ---- the build registry: process-wide, no st.* calls in the worker thread ---------------------------------

@dataclass
class Build:
    """One index being built (or loaded) for one key. The worker thread writes it under `_LOCK`; pages read
    copies (`build_status`)."""

    key: str
    folder: str
    documents: int
    characters: int
    chunks: int
    requested: float  # time.monotonic() when the button was pressed
    state: str = "waiting"  # waiting (another build holds the machine) | running | ready | failed
    started: float | None = None
    finished: float | None = None
    index: RetrievalIndex | None = None
    error: str | None = None

    @property
    def active(self) -> bool:
        return self.state in ("waiting", "running")


_LOCK = threading.Lock()  # guards _BUILDS and every Build's fields
_ONE_BUILD = threading.Lock()  # held by the build that is embedding: one at a time per process
_BUILDS: dict[str, Build] = {}


def build_status(key: str) -> Build | None:
    """A copy of the build for `key` (None if nobody asked for it in this process)."""
    with _LOCK:
        b = _BUILDS.get(key)
        return dataclasses.replace(b) if b is not None else None


def start_build(documents: list[Document], folder: Path, size: int, overlap: int) -> Build:
    """Start building (or loading) the index for these documents and knobs in a background thread, unless one
    for the same key is already under way or ready; a failed one is tried again."""
    key = rag.index_key(documents, size, overlap)
    with _LOCK:
        old = _BUILDS.get(key)
        if old is not None and old.state != "failed":
            return dataclasses.replace(old)
        chunks = len(chunk_documents(documents, size, overlap))
        b = Build(key, str(folder), len(documents), sum(len(d.text) for d in documents), chunks, time.monotonic())
        _BUILDS[key] = b
        _forget_old()
    threading.Thread(target=_work, args=(b, list(documents), size, overlap), name=f"rag-build-{key}",
                     daemon=True).start()
    return dataclasses.replace(b)


def _work(b: Build, documents: list[Document], size: int, overlap: int) -> None:
    with _ONE_BUILD:
        with _LOCK:
            b.state, b.started = "running", time.monotonic()
        try:
            index = rag.build_index(documents, Path(b.folder), size, overlap, threads=1)
        except Exception as exc:  # the page shows the reason; the thread must not die silently
            with _LOCK:
                b.state, b.error, b.finished = "failed", f"{type(exc).__name__}: {exc}", time.monotonic()
            return
        with _LOCK:
            b.state, b.index, b.finished = "ready", index, time.monotonic()


def _forget_old() -> None:
    """Keep the KEEP_INDEXES most recent ready indexes in memory (called under _LOCK); saved stores stay."""
    ready = sorted((b for b in _BUILDS.values() if b.state == "ready"), key=lambda b: b.requested, reverse=True)
    for b in ready[KEEP_INDEXES:]:
        del _BUILDS[b.key]


# ---- where the saved stores go, and what is searched ------------------------------------------------------

def index_folder() -> Path:
    """Beside the training runs (never the repo's data/): the folder the run manager writes to."""
    return Path(get_manager().runs_root) / "retrieval"


def fallback_folder() -> Path:
    return Path(tempfile.gettempdir()) / "llm-course-retrieval"


def unwritable(folder: Path) -> str | None:
    """Why `folder` cannot hold a saved index (None if it can): created if missing, then a file written."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-check-"):
            pass
    except OSError as exc:
        return exc.strerror or str(exc)
    return None


@st.cache_data(show_spinner=False, max_entries=16)
def _corpus_documents(corpus_id: str, version: str, folder: str) -> list[Document]:
    return rag_sources.corpus_documents(corpus_id, Path(folder))


def gather_documents(params: RagPlaygroundParams, learner_id: int) -> list[tuple[str, list[Document]]]:
    """What this card searches, in labelled groups: the lesson text, each bundled corpus, each upload."""
    groups: list[tuple[str, list[Document]]] = []
    if params.include_lessons:
        groups.append(("the lesson text", lesson_documents(session.course())))
    folder = learner_corpus.upload_folder(learner_id)
    infos = {c.id: c for c in engine_corpus.list_corpora(folder)}
    for corpus_id in params.corpora:
        info = infos[corpus_id]
        groups.append((info.title, _corpus_documents(info.id, learner_corpus.version(info), str(folder))))
    if params.include_uploads:
        for info in infos.values():
            if info.kind == "upload":
                groups.append((f"your upload {info.title}",
                               _corpus_documents(info.id, learner_corpus.version(info), str(folder))))
    return groups


# ---- the page -------------------------------------------------------------------------------------------

def preview(text: str, limit: int = PREVIEW_CHARS) -> str:
    """The start of a chunk, cut at a space near `limit`, with an ellipsis when something was cut.

    >>> preview("one two three four", limit=10)
    'one two …'
    >>> preview("short\\n\\n\\nlines")
    'short\\nlines'
    """
    text = re.sub(r"\n\s*\n", "\n", text.strip())  # blank lines take room and say nothing here
    if len(text) <= limit:
        return text
    cut = text.rfind(" ", 0, limit + 1)
    return text[: cut + 1 if cut > limit // 2 else limit] + "…"


def prompt_passages(result: RetrievalResult, which: str) -> list[Hit]:
    """The hits that go into the prompt: one retriever's list, or both (semantic first, each chunk once)."""
    if which == "semantic":
        return result.semantic
    if which == "keyword":
        return result.keyword
    seen: set[tuple[str, int]] = set()
    merged = []
    for hit in result.semantic + result.keyword:
        where = (hit.chunk.doc_id, hit.chunk.position)
        if where not in seen:
            seen.add(where)
            merged.append(hit)
    return merged


# The engine functions at this demo's heart, shown under it by ui/code_view.py (read from engine/ when opened).
ENGINE_CODE = ("engine.retrieve.rag:retrieve", "engine.retrieve.rag:assemble_prompt")


def render(params: RagPlaygroundParams, key: str) -> bool:
    me = session.learner()
    st.caption("The course's own model does not answer here: it is a character model trained for a minute, and "
               "it cannot read a question. The point of this card is the first half of RAG: what retrieval finds "
               "and puts in front of a model. A large model would be given exactly the prompt at the bottom.")
    groups = gather_documents(params, me.id)
    documents = [d for _, docs in groups for d in docs]
    if not documents:
        st.info("There is nothing to search: this card was set to search no lesson text, no corpus and no "
                "uploads (and you have none).", icon=":material/search_off:")
        return False

    with st.expander("Chunk size and overlap"):
        c1, c2 = st.columns(2)
        size = int(c1.number_input("Characters per chunk", 100, 4000, params.chunk_size, step=100,
                                   key=f"{key}-size"))
        overlap = int(c2.number_input("Characters shared by neighbouring chunks", 0, 2000, params.overlap,
                                      step=50, key=f"{key}-overlap"))
        st.caption("Changing either one makes a different index: it has to be built again (chunks whose text "
                   "an earlier index already embedded are reused).")
    try:
        check_knobs(size, overlap)
    except ValueError as exc:
        st.warning(f"These settings cannot cut chunks: {exc}.", icon=":material/warning:")
        return False

    key_now = rag.index_key(documents, size, overlap)
    build = build_status(key_now)
    folder = index_folder()
    if build is None:
        problem = unwritable(folder)
        if problem is not None:
            spare = fallback_folder()
            st.warning(f"The folder for saved search indexes, {escape_md(str(folder))}, cannot be written to "
                       f"({escape_md(problem)}). The index will be saved in {escape_md(str(spare))} instead, "
                       "which the system may clear.", icon=":material/folder_off:")
            folder, spare_problem = spare, unwritable(spare)
            if spare_problem is not None:
                st.warning(f"That folder cannot be written to either ({escape_md(spare_problem)}), so no search "
                           "index can be saved on this server. Ask whoever runs the course to check its disk.",
                           icon=":material/folder_off:")
                return False
        if VectorStore.exists(folder, key_now):  # saved earlier: loading it is quick, so no button
            build = start_build(documents, folder, size, overlap)

    if build is None:
        _offer_build(groups, documents, folder, size, overlap, key)
        return False
    if build.active:
        _watch(key_now)
        return False
    if build.state == "failed" or build.index is None:
        st.warning(f"Building the search index did not work: {escape_md(build.error or 'no reason given')}",
                   icon=":material/error:")
        if st.button("Try again", key=f"{key}-retry", icon=":material/refresh:"):
            start_build(documents, Path(build.folder), size, overlap)
            st.rerun()
        return False
    return _search(params, build, build.index, key)


def _offer_build(groups: list[tuple[str, list[Document]]], documents: list[Document], folder: Path, size: int,
                 overlap: int, key: str) -> None:
    chars = sum(len(d.text) for d in documents)
    parts = ", ".join(f"{escape_md(label)} ({len(docs):,} documents)" for label, docs in groups if docs)
    st.markdown(f"Before anything can be searched, every passage has to be turned into a vector once. This will "
                f"index **{len(documents):,} documents, {chars:,} characters**: {parts}, cut into chunks of "
                f"{size:,} characters overlapping by {overlap:,}.")
    if st.button("Build the search index", key=f"{key}-build", type="primary", icon=":material/manufacturing:"):
        start_build(documents, folder, size, overlap)
        st.rerun()


@st.fragment(run_every=1.0)
def _watch(index_key: str) -> None:
    """Polls the build once a second; redraws the whole card when it has ended, so the search box appears."""
    b = build_status(index_key)
    if b is None or not b.active:
        st.rerun()
        return
    now = time.monotonic()
    if b.state == "waiting":
        st.info(f"Waiting for another search index to finish (this server builds one at a time): "
                f"{now - b.requested:.0f} s so far.", icon=":material/hourglass_top:")
    else:
        st.info(f"Building the search index: embedding {b.chunks:,} chunks from {b.documents:,} documents, "
                f"{now - (b.started or now):.0f} s so far. You can read on; it keeps going.",
                icon=":material/hourglass_top:")


def _search(params: RagPlaygroundParams, build: Build, index: RetrievalIndex, key: str) -> bool:
    reused = len({c.text for c in index.chunks}) - index.embedded  # repeated texts are embedded once
    how = (f"loaded from disk in {index.seconds:.2f} s" if not index.built else
           f"built on this server in {index.seconds:.1f} s" + (
               f" ({index.embedded:,} chunks embedded, {reused:,} taken from an index saved earlier)"
               if reused > 0 else ""))
    st.success(f"Search index ready: {len(index.chunks):,} chunks from {index.documents:,} documents, {how}.",
               icon=":material/check_circle:")
    asked_key = f"{key}-asked"
    with st.form(f"{key}-ask", border=False):
        c1, c2 = st.columns([4, 1])
        question = c1.text_input("Your question", params.question, max_chars=300, key=f"{key}-question")
        k = int(c2.number_input("Passages (k)", 1, 20, params.k, key=f"{key}-k"))
        if st.form_submit_button("Search", type="primary", icon=":material/search:"):
            if question.strip():
                st.session_state[asked_key] = (question, k)
            else:
                st.warning("Type a question first.")
    asked = st.session_state.get(asked_key)
    if not asked:
        return False
    question, k = asked
    result = rag.retrieve(question, k, index=index)
    st.markdown("**You asked:**")
    st.text(question)
    both = set(result.both)
    found = {0: "No chunk was found", 1: "1 chunk was found"}.get(len(both), f"{len(both)} chunks were found")
    st.caption(f"{found} by both retrievers{' (marked)' if both else ''}. Semantic search took {result.semantic_ms:.0f} ms, "
               f"keyword search {result.keyword_ms:.1f} ms. The two kinds of score are on different scales: "
               "compare the order within a column, not numbers across columns.")
    left, right = st.columns(2)
    with left:
        st.markdown("**Semantic** (cosine similarity of meaning vectors, 1 = same direction)")
        _hits(result.semantic, both)
    with right:
        st.markdown("**Keyword** (BM25: shared words, rarer words count more)")
        _hits(result.keyword, both)

    st.markdown("**The prompt a model would be given**")
    which = st.radio("Passages in the prompt", list(PROMPT_FROM), format_func=PROMPT_FROM.get, horizontal=True,
                     key=f"{key}-which")
    passages = prompt_passages(result, which)
    prompt = rag.assemble_prompt(question, passages)
    st.caption(f"{len(passages)} passages, {len(prompt):,} characters.")
    st.code(prompt, language=None, wrap_lines=True)
    return True


def _hits(hits: list[Hit], both: set[tuple[str, int]]) -> None:
    if not hits:
        st.caption("Nothing found.")
    for hit in hits:
        chunk: Chunk = hit.chunk
        mark = " :green-badge[found by both]" if (chunk.doc_id, chunk.position) in both else ""
        st.markdown(f"**{hit.rank}.** score **{hit.score:.3f}** · {escape_md(chunk.source)}{mark}")
        short = preview(chunk.text)
        st.text(short)
        if short != chunk.text.strip():  # cut, or blank lines dropped: the expander has it as it is
            with st.expander("The whole chunk"):
                st.code(chunk.text, language=None, wrap_lines=True)
