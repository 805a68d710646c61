"""paths.py: one definition of each folder, each moved by one LLM_COURSE_ variable read when asked for."""

from __future__ import annotations

import paths


def test_defaults_sit_in_the_project(monkeypatch) -> None:
    for var in (paths.DB_VAR, paths.CONTENT_VAR, paths.UPLOADS_VAR, paths.RUNS_VAR, "COURSE_RUNS_DIR"):
        monkeypatch.delenv(var, raising=False)
    assert paths.progress_db() == paths.ROOT / "data" / "progress.sqlite3"
    assert paths.content_dirs() == (paths.ROOT / "lessons", paths.ROOT / "quizzes")
    assert paths.uploads_dir() == paths.ROOT / "data" / "uploads"
    assert paths.runs_dir() == paths.ROOT / "runs"
    assert paths.DEFAULT_CORPUS.is_file() and paths.CORPORA_MANIFEST.is_file() and paths.REFERENCE_DIR.is_dir()


def test_each_variable_moves_its_folder_when_read(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv(paths.DB_VAR, str(tmp_path / "p.sqlite3"))
    monkeypatch.setenv(paths.CONTENT_VAR, str(tmp_path / "draft"))
    monkeypatch.setenv(paths.UPLOADS_VAR, str(tmp_path / "up"))
    monkeypatch.setenv(paths.RUNS_VAR, str(tmp_path / "runs"))
    assert paths.progress_db() == tmp_path / "p.sqlite3"
    assert paths.content_dirs() == (tmp_path / "draft" / "lessons", tmp_path / "draft" / "quizzes")
    assert paths.uploads_dir() == tmp_path / "up" and paths.runs_dir() == tmp_path / "runs"


def test_the_runs_folders_old_name_is_still_read_and_the_new_one_wins(monkeypatch, tmp_path) -> None:
    monkeypatch.delenv(paths.RUNS_VAR, raising=False)
    monkeypatch.setenv("COURSE_RUNS_DIR", str(tmp_path / "old"))
    assert paths.runs_dir() == tmp_path / "old"
    monkeypatch.setenv(paths.RUNS_VAR, str(tmp_path / "new"))
    assert paths.runs_dir() == tmp_path / "new"


def test_the_database_is_the_sqlite_file_unless_a_url_names_a_server(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv(paths.DB_VAR, str(tmp_path / "p.sqlite3"))
    assert paths.database_url() == f"sqlite:///{tmp_path / 'p.sqlite3'}"
    monkeypatch.setenv(paths.DATABASE_URL_OTHER_NAME, "postgresql+psycopg://course@db/other")
    assert paths.database_url() == "postgresql+psycopg://course@db/other"  # the name docs/deploy.md also accepts
    monkeypatch.setenv(paths.DATABASE_URL_VAR, "postgresql+psycopg://course@db/class")
    assert paths.database_url() == "postgresql+psycopg://course@db/class"  # the course's own name wins
