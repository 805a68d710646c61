"""Clean the learner's corpus step by step: toggle each filter and see what it changed and removed."""

from __future__ import annotations

from dataclasses import replace

import streamlit as st

from course.widgets import CleaningLabParams
from engine.extract.cleaning import CleaningOptions, CleaningReport
from ui import learner_corpus, session

SHORT = {"nfkc": "NFKC", "whitespace": "Whitespace", "boilerplate": "Boilerplate", "short": "Short docs",
         "repetitive": "Repetitive"}
STEPS = {
    "nfkc": ("Unicode normalisation (NFKC)", "Turns look-alike characters into one form: ‘ﬁ’ → ‘fi’, full-width ‘Ａ’ → ‘A’."),
    "whitespace": ("Whitespace", "Trailing spaces, runs of spaces and blank lines, odd invisible spaces."),
    "boilerplate": ("Boilerplate lines", "Lines repeated across many documents: menus, cookie banners, footers."),
    "short": ("Very short documents", "Pages with almost no text: ‘Page not found.’, ‘Loading…’."),
    "repetitive": ("Repetitive documents", "Spam and keyword stuffing: the same phrases over and over."),
}


def _options_from_widgets(key: str, base: CleaningOptions) -> CleaningOptions:
    flags = {name: bool(st.session_state.get(f"{key}-{name}", getattr(base, name))) for name in STEPS}
    return replace(base, **flags, min_chars=int(st.session_state.get(f"{key}-min-chars", base.min_chars)),
                   max_repetition=float(st.session_state.get(f"{key}-max-rep", base.max_repetition)))


def _save(key: str) -> None:
    me = session.learner()
    info = learner_corpus.chosen(me.id)
    current = learner_corpus.cleaning_options(me.id, info)
    learner_corpus.save_cleaning_options(me.id, info, _options_from_widgets(key, current))


def _steps_table(report: CleaningReport) -> list[dict]:
    rows = []
    for step in report.steps:
        rows.append({
            "Step": STEPS.get(step.name, (step.name,))[0],
            "On": "✅" if step.enabled else "–",
            "Documents changed": step.docs_changed,
            "Documents removed": step.docs_removed,
            "Characters removed": step.chars_removed,
        })
    return rows


# The engine functions at this demo's heart, shown under it by ui/code_view.py (read from engine/ when opened).
ENGINE_CODE = ("engine.extract.cleaning:clean",)


def render(params: CleaningLabParams, key: str) -> bool:
    me = session.learner()
    info = learner_corpus.chosen(me.id)
    saved = learner_corpus.cleaning_options(me.id, info, min_chars=params.min_chars, max_repetition=params.max_repetition)
    st.caption(f"Cleaning **{info.title}**. Change the corpus on the card that picks it.")
    # keys carry the corpus id, so switching corpus shows that corpus's own saved options
    k = f"{key}-{info.id}"
    cols = st.columns(len(STEPS))
    for col, (name, (label, help_text)) in zip(cols, STEPS.items(), strict=True):
        col.toggle(SHORT[name], value=getattr(saved, name), key=f"{k}-{name}", help=f"{label}: {help_text}",
                   on_change=_save, args=(k,))
    left, right = st.columns(2)
    left.slider("Shortest document kept (characters)", 0, 500, saved.min_chars, step=10, key=f"{k}-min-chars",
                on_change=_save, args=(k,), disabled=not saved.short)
    right.slider("Most repetition allowed (share of repeated 3-word phrases)", 0.05, 1.0, float(saved.max_repetition),
                 step=0.05, key=f"{k}-max-rep", on_change=_save, args=(k,), disabled=not saved.repetitive)

    options = _options_from_widgets(k, saved)
    report = learner_corpus.cleaned(me.id, info, options)
    before, after = report.before, report.after
    a, b, c = st.columns(3)
    a.metric("Documents", f"{after.documents:,}", delta=f"{after.documents - before.documents:+,}", delta_color="off")
    b.metric("Characters", f"{after.characters:,}", delta=f"{after.characters - before.characters:+,}", delta_color="off")
    kept = after.characters / before.characters if before.characters else 1.0
    c.metric("Text kept", f"{kept:.0%}")
    st.dataframe(_steps_table(report), hide_index=True, width="stretch")

    for step in report.steps:
        if not step.enabled or not (step.examples or step.flagged):
            continue
        label = STEPS.get(step.name, (step.name,))[0]
        with st.expander(f"What “{label}” did: {len(step.examples)} example(s)"):
            if step.flagged:
                st.markdown("**Lines it treated as boilerplate** (and in how many documents they appear):")
                st.dataframe([{"line": line, "documents": n} for line, n in step.flagged[:15]], hide_index=True,
                             width="stretch")
            for ex in step.examples[:3]:
                if ex.note:
                    st.caption(ex.note)
                left, right = st.columns(2)
                left.caption("before")
                left.code(ex.before, language=None, wrap_lines=True)
                right.caption("after" if ex.after else "after: removed")
                right.code(ex.after or "(removed)", language=None, wrap_lines=True)
    return True
