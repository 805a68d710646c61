"""Uploads: what is refused and why, saving (atomic, named by content), ids that never become a path, and the
per-learner limits and retention rule."""

from __future__ import annotations

import os
import time

import pytest

from engine.extract import uploads
from engine.extract.corpus import content_hash, get_corpus, list_corpora, load_corpus, load_documents
from engine.extract.uploads import (
    MAX_UPLOAD_BYTES,
    MAX_UPLOADS,
    MAX_UPLOADS_BYTES,
    MIN_UPLOAD_CHARS,
    RETENTION_DAYS,
    UploadRejected,
    prune_all,
    prune_uploads,
    save_upload,
    upload_path,
    validate_upload,
)
from engine.transform.tokenization import MAX_CHAR_VOCAB

PROSE = " ".join(load_corpus("tinyshakespeare")[:1700].split())  # one paragraph of ~1,600 characters


# --- what is refused ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "kind", "words"),
    [
        (b"", "empty", "is empty"),
        (b"a" * (MAX_UPLOAD_BYTES + 1), "too_large", "the limit is 2 MB"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + b"x" * 2000, "binary", "is a PNG image, not plain text"),
        (b"my notes\x00\x01\x02" + b"x" * 2000, "binary", "NUL byte at byte 8"),
        (("caf\xe9 " * 400).encode("latin-1"), "not_utf8", "byte 0xE9 at position 3"),
        ("hello".encode("utf-16"), "not_utf8", "UTF-16"),
        (bytes(range(1, 32)) * 100, "binary", "non-printable"),
        (b"To be, or not to be.", "too_short", f"at least {MIN_UPLOAD_CHARS:,}"),
        ("".join(map(chr, range(0x4E00, 0x4E00 + 1200))).encode(), "too_many_chars", "1,200 different characters"),
    ],
)
def test_refused_uploads_say_why(data, kind, words):
    with pytest.raises(UploadRejected) as info:
        validate_upload("mine.txt", data)
    assert info.value.kind == kind and kind in UploadRejected.KINDS
    assert words in info.value.reason and "mine.txt" in info.value.reason
    assert str(info.value) == info.value.reason


def test_accepted_upload_is_tidied():
    text = validate_upload("play.txt", b"\xef\xbb\xbf" + PROSE.replace(". ", ".\r\n").encode())
    assert not text.startswith("\ufeff") and "\r" not in text and text.startswith("First Citizen: Before")
    assert validate_upload("", ("naïve 🙂 " * 200).encode()) == "naïve 🙂 " * 200


def test_upload_with_too_many_characters_is_refused_in_words_a_learner_understands():
    alphabet = "".join(map(chr, range(0x4E00, 0x4E00 + MAX_CHAR_VOCAB)))  # exactly the cap: accepted
    assert validate_upload("ok.txt", (alphabet * 3).encode()) == alphabet * 3
    with pytest.raises(UploadRejected) as info:
        validate_upload("mine.txt", (alphabet + "\u9fa0").encode() * 3)
    assert info.value.kind == "too_many_chars"
    assert f"{MAX_CHAR_VOCAB + 1:,} different characters" in info.value.reason
    assert f"at most {MAX_CHAR_VOCAB:,}" in info.value.reason


# --- saving and loading -------------------------------------------------------------------------------------


def test_save_upload_lists_and_loads(tmp_path):
    saved = save_upload("My Novel.txt", PROSE, tmp_path)
    info = get_corpus(saved.id, tmp_path)
    assert info.kind == "upload" and info.title == "my novel" and info.path == saved.path
    assert saved.path.parent == tmp_path and saved.removed == []
    assert saved.id == f"upload-my-novel-{content_hash(PROSE)[:10]}"
    assert info.size_bytes == len(PROSE.encode())
    assert load_corpus(info.id, tmp_path) == PROSE
    assert info.id in [c.id for c in list_corpora(tmp_path)]
    assert load_documents(info.id, tmp_path) == [PROSE]
    assert save_upload("My Novel.txt", PROSE, tmp_path).id == saved.id  # same text, same corpus
    assert [p.name for p in tmp_path.iterdir()] == [saved.path.name]  # no temp files left behind


def test_long_names_make_valid_ids(tmp_path):
    saved = save_upload("a " * 19 + "b-c.txt", PROSE, tmp_path)  # the slug is cut at 40 characters
    assert uploads.UPLOAD_ID.fullmatch(saved.id) and "--" not in saved.id
    assert load_corpus(saved.id, tmp_path) == PROSE


def test_save_upload_is_atomic(tmp_path, monkeypatch):
    first = save_upload("a.txt", PROSE, tmp_path)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        save_upload("b.txt", PROSE + " more", tmp_path)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before
    assert load_corpus(first.id, tmp_path) == PROSE
    with pytest.raises(UploadRejected):
        save_upload("tiny.txt", "too short", tmp_path)


# --- ids never become paths outside the learner's folder --------------------------------------------------


@pytest.mark.parametrize(
    "bad_id",
    ["../secret", "upload-../../etc/passwd", "/etc/passwd", "upload-x-0123456789/../../a", "upload-a-012345678",
     "upload--0123456789", "UPLOAD-a-0123456789", "upload-a-0123456789.txt", "upload-a-0123456789\n", ""],
)
def test_bad_upload_ids_are_refused_before_any_path_is_built(tmp_path, bad_id):
    (tmp_path / "learner").mkdir()
    (tmp_path / "secret.txt").write_text("secret " * 200, encoding="utf-8")
    with pytest.raises(ValueError, match="not an upload id"):
        upload_path(tmp_path / "learner", bad_id)
    with pytest.raises(KeyError, match="unknown corpus"):
        load_corpus(bad_id, tmp_path / "learner")


def test_files_that_are_not_uploads_are_not_listed(tmp_path):
    saved = save_upload("mine.txt", PROSE, tmp_path)
    (tmp_path / "upload-evil.txt").write_text(PROSE, encoding="utf-8")  # no hash: not an upload id
    (tmp_path / "bpe.json").write_text("{}", encoding="utf-8")
    assert [c.id for c in list_corpora(tmp_path) if c.kind == "upload"] == [saved.id]


# --- limits and retention -----------------------------------------------------------------------------------


def _text(i: int) -> str:
    return f"Text number {i}. " + PROSE


def _age(path, days: float) -> None:
    then = time.time() - days * 86_400
    os.utime(path, (then, then))


def test_saving_past_the_count_limit_removes_the_oldest_but_never_a_kept_one(tmp_path):
    ids = []
    for i in range(MAX_UPLOADS):
        saved = save_upload(f"t{i}.txt", _text(i), tmp_path)
        _age(saved.path, MAX_UPLOADS - i)  # t0 is the oldest
        ids.append(saved.id)
    newest = save_upload("new.txt", _text(99), tmp_path, keep=[ids[0]])
    assert newest.removed == [ids[1]]  # the oldest, t0, is the learner's choice and stays
    left = {c.id for c in list_corpora(tmp_path) if c.kind == "upload"}
    assert len(left) == MAX_UPLOADS and ids[0] in left and newest.id in left


def test_saving_past_the_byte_limit_removes_the_oldest(tmp_path):
    big = "x y z " * (MAX_UPLOAD_BYTES // 7)  # ~1.7 MB each
    per = len(big.encode()) + 20
    ids = []
    for i in range(MAX_UPLOADS_BYTES // per):
        saved = save_upload(f"b{i}.txt", f"{i} " + big, tmp_path)
        _age(saved.path, 10 - i)
        ids.append(saved.id)
    assert save_upload("last.txt", "last " + big, tmp_path).removed == [ids[0]]
    assert sum(p.stat().st_size for p in tmp_path.iterdir()) <= MAX_UPLOADS_BYTES


def test_retention_removes_expired_uploads_except_kept_ones(tmp_path):
    old = save_upload("old.txt", _text(1), tmp_path)
    kept = save_upload("kept.txt", _text(2), tmp_path)
    fresh = save_upload("fresh.txt", _text(3), tmp_path)
    _age(old.path, RETENTION_DAYS + 1)
    _age(kept.path, RETENTION_DAYS + 1)
    _age(fresh.path, RETENTION_DAYS - 1)
    (tmp_path / "bpe.json").write_text("{}", encoding="utf-8")  # not an upload: never touched
    assert prune_uploads(tmp_path, keep={kept.id}) == [old.id]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["bpe.json", kept.path.name, fresh.path.name])
    assert prune_uploads(tmp_path) == [kept.id]
    assert prune_uploads(tmp_path / "nobody") == []


def test_prune_all_walks_every_learner_folder(tmp_path):
    a = save_upload("a.txt", _text(1), tmp_path / "1")
    b = save_upload("b.txt", _text(2), tmp_path / "2")
    _age(a.path, RETENTION_DAYS + 1)
    assert prune_all(tmp_path) == {"1": [a.id]}
    assert b.path.exists() and not a.path.exists()
    assert prune_all(tmp_path / "missing") == {}
