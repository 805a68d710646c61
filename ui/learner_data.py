"""A learner's own data, whole: what the course holds about them, and deleting all of it.

Deletion is shown before it happens (what will go, counted) and takes nothing of anyone else's: the learner's rows
in the progress store, the run folders their own progress names (unless another learner's progress names the same
folder), and their upload folder (uploaded texts and their tokenizers). Their runs that still train are stopped
first. A learner does this from My progress; an instructor, for a learner who leaves, from the roster.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import streamlit as st

from course.progress import Member
from ui import learner_corpus, private_files, run_view, session
from ui.text import escape_md


@dataclass(frozen=True)
class Holdings:
    """What deleting a learner would remove."""

    answers: int
    reflections: int
    lessons_completed: int
    run_folders: tuple[Path, ...]
    upload_files: int
    upload_bytes: int

    def sentence(self) -> str:
        return (f"{self.answers} quiz answers, {self.reflections} reflections, {self.lessons_completed} completed "
                f"lessons, {len(self.run_folders)} training run folders, and {self.upload_files} uploaded files "
                f"({self.upload_bytes / 1e6:.1f} MB)")


def _their_run_folders(learner_id: int) -> tuple[Path, ...]:
    """The run folders this learner's progress names and no other learner's does."""
    mine, others = set(), set()
    for owner, _key, info in session.store().facts_of_everyone_with_prefix(run_view.FACT_PREFIX):
        if isinstance(info, dict) and info.get("run_dir"):
            (mine if owner == learner_id else others).add(Path(info["run_dir"]))
    return tuple(sorted(p for p in mine - others if p.is_dir()))


def holdings(learner_id: int) -> Holdings:
    exported = session.store().export(learner_id)
    answers = exported["answers"]
    reflections = sum(1 for a in answers if a["correct"] is None)
    folder = learner_corpus.upload_folder(learner_id)
    files = [p for p in folder.rglob("*") if p.is_file()] if folder.is_dir() else []
    return Holdings(len(answers) - reflections, reflections, len(exported["completed"]), _their_run_folders(learner_id),
                    len(files), sum(p.stat().st_size for p in files))


def delete_everything(learner_id: int) -> Holdings:
    """Stop the learner's training runs, delete their run folders and uploads, then their rows; return what went."""
    gone = holdings(learner_id)
    for run in run_view.learner_runs(learner_id):
        if run.status.active:
            run_view.stop(run, learner_id)
    for folder in gone.run_folders:
        shutil.rmtree(folder, ignore_errors=True)
    shutil.rmtree(learner_corpus.upload_folder(learner_id), ignore_errors=True)
    session.store().delete_learner(learner_id)
    return gone


def _confirm(learner_id: int, own: bool) -> None:
    gone = delete_everything(learner_id)
    for key in [k for k in st.session_state if k != session.LEARNER_KEY]:
        del st.session_state[key]
    if own:
        st.session_state.pop(session.LEARNER_KEY, None)
    st.session_state["learner-data-deleted"] = gone.sentence()


def learner_panel(learner_id: int, name: str) -> None:
    """My progress: delete everything the course holds about me, after seeing what that is."""
    with st.popover("Delete all my data", icon=":material/person_remove:"):
        st.markdown(f"This deletes everything the course holds about **{escape_md(name)}**: "
                    f"{escape_md(holdings(learner_id).sentence())}. Runs still training are stopped first. "
                    "It cannot be undone: download your progress first if you want a copy.")
        st.button("Yes, delete all my data", key="learner-data-delete", type="primary", on_click=_confirm,
                  args=(learner_id, True))


def instructor_panel(members: list[Member]) -> None:
    """The roster: export or delete one learner's data (a learner who leaves the class)."""
    if "learner-data-deleted" in st.session_state:
        st.success(f"Deleted: {st.session_state.pop('learner-data-deleted')}.")
    if not members:
        return
    by_id = {m.id: m for m in members}
    chosen = st.selectbox("Learner", list(by_id), key="learner-data-who",
                          format_func=lambda i: f"{by_id[i].name} ({by_id[i].email or 'local profile'})")
    store = session.store()
    private_files.download_button("Export their data (JSON)",
                                  lambda: json.dumps(store.export(chosen), indent=2, ensure_ascii=False),
                                  file_name=f"llm-course-learner-{chosen}.json", mime="application/json",
                                  icon=":material/download:", key="learner-data-export", on_click="ignore")
    st.warning(f"Deleting removes {holdings(chosen).sentence()}, for {by_id[chosen].name} only.")
    confirm = st.checkbox(f"I want to delete {by_id[chosen].name}'s data", key="learner-data-confirm")
    st.button("Delete their data", key="learner-data-delete-other", type="primary", disabled=not confirm,
              on_click=_confirm, args=(chosen, False))
