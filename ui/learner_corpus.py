"""The text a learner works with in lessons 3 and 4: which corpus they picked, and that corpus cleaned.

The choice is saved in the progress store (`corpus.choice`), uploads in `data/uploads/<learner id>/`, and the
cleaning options in `cleaning.options`, so every widget downstream (dedup, tokenizers, training) sees the same text
across pages and restarts. Expensive results are cached by corpus id plus the content hash of uploads.
"""

from __future__ import annotations

from dataclasses import asdict, replace
from pathlib import Path

import streamlit as st

import paths
from engine.extract import cleaning, uploads
from engine.extract import corpus as engine_corpus
from engine.extract.cleaning import CleaningOptions, CleaningReport
from engine.extract.corpus import CorpusInfo
from engine.extract.dedup import DedupReport, deduplicate
from ui import session

CHOICE_KEY = "corpus.choice"
CLEANING_KEY = "cleaning.options"
DEFAULT_CORPUS = engine_corpus.CRAWL_ID  # the most instructive one for cleaning and dedup


def upload_folder(learner_id: int) -> Path:
    root = paths.uploads_dir()
    _apply_retention(str(root))
    return root / str(int(learner_id))


@st.cache_resource(show_spinner=False)
def _apply_retention(root: str) -> dict[str, list[str]]:
    """Remove every learner's expired uploads once per server process (docs/retention.md): the first page that
    looks at an upload folder does it, so a learner who never comes back does not keep files forever."""
    return uploads.prune_all(Path(root))


def available(learner_id: int) -> list[CorpusInfo]:
    return engine_corpus.list_corpora(upload_folder(learner_id))


def chosen(learner_id: int) -> CorpusInfo:
    """The learner's corpus (falls back to the default if an upload disappeared)."""
    corpus_id = session.store().fact(learner_id, CHOICE_KEY, DEFAULT_CORPUS)
    try:
        return engine_corpus.get_corpus(corpus_id, upload_folder(learner_id))
    except KeyError:
        return engine_corpus.get_corpus(DEFAULT_CORPUS)


def choose(learner_id: int, corpus_id: str) -> None:
    session.store().set_fact(learner_id, CHOICE_KEY, corpus_id)


def cleaning_options(learner_id: int, info: CorpusInfo, **defaults: float) -> CleaningOptions:
    """The learner's saved options for this corpus, else the engine's suggestion for its kind (with `defaults`)."""
    saved = session.store().fact(learner_id, f"{CLEANING_KEY}.{info.id}")
    if saved:
        return CleaningOptions(**saved)
    return replace(cleaning.suggested_options(info.kind), **defaults)


def save_cleaning_options(learner_id: int, info: CorpusInfo, options: CleaningOptions) -> None:
    session.store().set_fact(learner_id, f"{CLEANING_KEY}.{info.id}", asdict(options))


def version(info: CorpusInfo) -> str:
    """A cache key that changes when the corpus does (uploads are named by content hash; bundled files by size)."""
    return f"{info.id}:{info.size_bytes}"


@st.cache_data(show_spinner=False, max_entries=8)
def bundled_text(corpus: str) -> str:
    """A corpus of data/corpora.yaml by the id a lesson file names (course.widgets checks it is one): a bundled
    file or the generated crawl. Never an upload, and never a path: an id outside the manifest is a KeyError."""
    return engine_corpus.load_corpus(corpus)


@st.cache_data(show_spinner="Reading the corpus...", max_entries=8)
def _documents(corpus_id: str, version: str, folder: str) -> list[str]:
    return engine_corpus.load_documents(corpus_id, Path(folder))


@st.cache_data(show_spinner="Cleaning...", max_entries=16)
def _cleaned(corpus_id: str, version: str, folder: str, options: CleaningOptions) -> CleaningReport:
    return cleaning.clean(_documents(corpus_id, version, folder), options)


@st.cache_data(show_spinner="Looking for duplicates...", max_entries=16)
def _deduped(corpus_id: str, version: str, folder: str, options: CleaningOptions, threshold: float,
             exact: bool, near: bool) -> DedupReport:
    docs = _cleaned(corpus_id, version, folder, options).docs
    return deduplicate(docs, exact=exact, near=near, threshold=threshold, max_examples=12)


def documents(learner_id: int, info: CorpusInfo) -> list[str]:
    return _documents(info.id, version(info), str(upload_folder(learner_id)))


def cleaned(learner_id: int, info: CorpusInfo, options: CleaningOptions) -> CleaningReport:
    return _cleaned(info.id, version(info), str(upload_folder(learner_id)), options)


def deduped(learner_id: int, info: CorpusInfo, options: CleaningOptions, threshold: float,
            exact: bool = True, near: bool = True) -> DedupReport:
    return _deduped(info.id, version(info), str(upload_folder(learner_id)), options, threshold, exact, near)


@st.cache_data(show_spinner=False, max_entries=8)
def _training_text(corpus_id: str, version: str, folder: str, options: CleaningOptions) -> tuple[str, int]:
    """(cleaned documents joined, number of distinct characters): computed once per corpus and options, since
    lesson 4's cards ask for both on every rerun and the text is megabytes long."""
    text = "\n\n".join(_cleaned(corpus_id, version, folder, options).docs)
    return text, len(set(text))


def _training(learner_id: int) -> tuple[str, int]:
    info = chosen(learner_id)
    return _training_text(info.id, version(info), str(upload_folder(learner_id)), cleaning_options(learner_id, info))


def training_text(learner_id: int) -> str:
    """What the learner's model trains on: their corpus, cleaned with their options (documents joined)."""
    return _training(learner_id)[0]


def training_vocab_size(learner_id: int) -> int:
    """Distinct characters in `training_text`: the vocabulary of a character tokenizer trained on it."""
    return _training(learner_id)[1]


# ---- a run's text, named so that it can be built again (engine.runs.run_source) -------------------------------


def source_of(learner_id: int, text: str) -> tuple[str, dict | None, str] | None:
    """(corpus id, cleaning options as a dict or None for the corpus as loaded, title) when `text` is one the
    course can build again from those: one of the learner's corpora as it is, or their chosen corpus cleaned with
    their options. None for any other text (a slice, a deduplicated copy)."""
    folder = upload_folder(learner_id)
    size = len(text.encode("utf-8"))
    for info in available(learner_id):
        if info.size_bytes == size and text == _raw_text(info.id, folder):
            return info.id, None, info.title
    info = chosen(learner_id)
    options = cleaning_options(learner_id, info)
    if text == _training_text(info.id, version(info), str(folder), options)[0]:
        return info.id, asdict(options), info.title
    return None


def _raw_text(corpus_id: str, folder: Path) -> str:
    if uploads.UPLOAD_ID.fullmatch(corpus_id):
        return engine_corpus.load_corpus(corpus_id, folder)
    return bundled_text(corpus_id)


def rebuild(learner_id: int, corpus_id: str, cleaning: dict | None) -> str:
    """The text `source_of` named, built again as it is now. KeyError when the corpus is no longer there (an
    upload removed by retention); TypeError when the saved cleaning options no longer fit CleaningOptions."""
    folder = upload_folder(learner_id)
    if cleaning is None:
        return _raw_text(corpus_id, folder)
    info = engine_corpus.get_corpus(corpus_id, folder)
    return _training_text(info.id, version(info), str(folder), CleaningOptions(**cleaning))[0]
