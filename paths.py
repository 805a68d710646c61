"""Where the course keeps its files, and the environment variables that move them: one definition of each.

Every layer reads its paths here (engine, course, ui, bench), so this module imports nothing from the project and
nothing heavy. The variables share one prefix, LLM_COURSE_; the runs folder's is also read under its deprecated
name, COURSE_RUNS_DIR, for one release (README, "Where your work is kept"). Folders named by a variable are read
when asked for, not at import, so a test or a second server can point them elsewhere.
"""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent
DATA_DIR = ROOT / "data"
LESSONS_DIR = ROOT / "lessons"
QUIZZES_DIR = ROOT / "quizzes"
DOCS_DIR = ROOT / "docs"
REFERENCE_DIR = DATA_DIR / "reference"  # the reference model lessons 5, 6, 8 and 10 show before a learner trains
CORPORA_MANIFEST = DATA_DIR / "corpora.yaml"
ACCELERATORS = DATA_DIR / "accelerators.yaml"
PUBLISHED_MODELS = DATA_DIR / "published_models.yaml"
DEFAULT_CORPUS = DATA_DIR / "tinyshakespeare.txt"

DB_VAR = "LLM_COURSE_DB"  # the progress database (SQLite file)
DATABASE_URL_VAR = "LLM_COURSE_DATABASE_URL"  # the progress database as a URL (PostgreSQL for a class)
DATABASE_URL_OTHER_NAME = "COURSE_DATABASE_URL"  # the same, under the name the deployment notes also accept
CONTENT_VAR = "LLM_COURSE_CONTENT"  # a folder holding lessons/ and quizzes/ (an instructor's draft)
UPLOADS_VAR = "LLM_COURSE_UPLOADS"  # learners' uploaded corpora and tokenizers
RUNS_VAR = "LLM_COURSE_RUNS"  # training runs, the peak measurement and the retrieval index
RUNS_MAX_BYTES_VAR = "LLM_COURSE_RUNS_MAX_BYTES"  # cap on the run folders' bytes (engine.runs.retention)
OLD_NAMES = {RUNS_VAR: "COURSE_RUNS_DIR"}  # accepted for one release


def _folder(var: str, default: Path) -> Path:
    value = os.environ.get(var) or os.environ.get(OLD_NAMES.get(var, ""))
    return Path(value) if value else default


def progress_db() -> Path:
    """The progress database: $LLM_COURSE_DB, else data/progress.sqlite3."""
    return _folder(DB_VAR, DATA_DIR / "progress.sqlite3")


def database_url() -> str:
    """The progress database as an SQLAlchemy URL: $LLM_COURSE_DATABASE_URL (or $COURSE_DATABASE_URL), e.g.
    `postgresql+psycopg://course@db.example.edu/course` for a class; else the SQLite file `progress_db()`."""
    url = os.environ.get(DATABASE_URL_VAR) or os.environ.get(DATABASE_URL_OTHER_NAME)
    return url or f"sqlite:///{progress_db()}"


def content_dirs() -> tuple[Path, Path]:
    """(lessons, quizzes): under $LLM_COURSE_CONTENT when it is set, else the project's own."""
    root = os.environ.get(CONTENT_VAR)
    return (Path(root) / "lessons", Path(root) / "quizzes") if root else (LESSONS_DIR, QUIZZES_DIR)


def uploads_dir() -> Path:
    """Learners' uploads and tokenizers: $LLM_COURSE_UPLOADS, else data/uploads."""
    return _folder(UPLOADS_VAR, DATA_DIR / "uploads")


def runs_dir() -> Path:
    """Training runs and what lives beside them: $LLM_COURSE_RUNS (or the older COURSE_RUNS_DIR), else runs/."""
    return _folder(RUNS_VAR, ROOT / "runs")
