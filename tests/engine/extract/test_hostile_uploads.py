"""Hostile uploads (property-based): whatever the bytes and whatever the file's name, `validate_upload` returns text
or refuses with a reason a learner understands, naming the file as the course shows it (no path, no control
characters); `save_upload` never writes outside the learner's folder."""

from __future__ import annotations

import gzip
import io
import zipfile

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.extract.uploads import (
    MAX_NAME_CHARS,
    MAX_UPLOAD_BYTES,
    UPLOAD_ID,
    UploadRejected,
    display_name,
    save_upload,
    validate_upload,
)

FUZZ = settings(max_examples=40, deadline=None, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
PROSE = "A perfectly ordinary paragraph of my own writing, long enough to train on. " * 20
NAMES = st.text(max_size=120) | st.sampled_from([
    "../../etc/passwd", "..\\..\\boot.ini", "/abs/path.txt", "a/b\\c.txt", "con", "nul.txt", ".", "..", "",
    "\x00", "name\nwith\nlines.txt", "rtl\u202etxt.exe", "<script>alert(1)</script>.txt", "x" * 500 + ".txt",
])


def _refusal_is_explained(err: UploadRejected, name: str) -> None:
    assert err.kind in UploadRejected.KINDS
    assert err.reason.startswith(display_name(name)) and len(err.reason) > len(display_name(name)) + 15
    assert err.reason.endswith(".") and "\x00" not in err.reason


@FUZZ
@given(NAMES, st.binary(max_size=3000))
def test_random_bytes_are_text_or_refused_with_a_reason(name, data):
    try:
        text = validate_upload(name, data)
    except UploadRejected as err:
        _refusal_is_explained(err, name)
    else:
        assert isinstance(text, str) and len(text.strip()) >= 1000


@FUZZ
@given(st.text(min_size=1, max_size=300), st.sampled_from(["utf-16", "utf-16-le", "utf-16-be", "utf-32", "latin-1",
                                                           "cp1252", "shift_jis", "utf-8"]))
def test_text_in_any_encoding_is_accepted_only_as_utf8(words, encoding):
    text = (words + " " + PROSE)[:1900]
    try:
        data = text.encode(encoding)
    except UnicodeEncodeError:
        return
    try:
        back = validate_upload("mine.txt", data)
    except UploadRejected as err:
        _refusal_is_explained(err, "mine.txt")
        assert data != text.encode("utf-8") or err.kind in ("binary", "too_many_chars", "too_short"), err.reason
        if encoding.startswith(("utf-16", "utf-32")) and text.isascii():
            assert "UTF-16" in err.reason or "UTF-32" in err.reason, err.reason
    else:
        # accepted only because the bytes are UTF-8 (Latin-1 bytes can happen to be): they are read as UTF-8
        assert back == data.decode("utf-8").removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n")


def _zip(*names: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for n in names:
            z.writestr(n, PROSE)
    return buf.getvalue()


@pytest.mark.parametrize(("data", "words"), [
    (_zip("book.txt"), "is a ZIP archive"),
    (_zip("word/document.xml", "[Content_Types].xml"), "Word, Excel or EPUB"),
    (gzip.compress(PROSE.encode(), mtime=0), "gzip-compressed"),
    (b"%PDF-1.7\n" + PROSE.encode(), "a PDF document"),
    (b"\xff\xd8\xff\xe0" + b"\x10" * 2000, "a JPEG image"),
    (b"\x7fELF" + b"\x02" * 2000, "a program"),
], ids=["zip", "office", "gzip", "pdf", "jpeg", "elf"])  # named: a test id made of the bytes (a gzip header holds
# the time) differs between two pytest-xdist workers that collect a second apart, and the run stops
def test_a_binary_file_renamed_to_txt_is_named_for_what_it_is(data, words):
    with pytest.raises(UploadRejected) as info:
        validate_upload("renamed.txt", data)
    assert info.value.kind == "binary" and words in info.value.reason and "not plain text" in info.value.reason


def test_size_limits():
    with pytest.raises(UploadRejected, match="is empty"):
        validate_upload("e.txt", b"")
    with pytest.raises(UploadRejected, match="the limit is 2 MB"):
        validate_upload("big.txt", b"a " * (MAX_UPLOAD_BYTES // 2) + b"!")
    at_limit = (PROSE * (MAX_UPLOAD_BYTES // len(PROSE) + 1)).encode()[:MAX_UPLOAD_BYTES]
    assert len(validate_upload("limit.txt", at_limit)) == MAX_UPLOAD_BYTES


@FUZZ
@given(NAMES)
def test_names_are_shown_without_paths_or_control_characters(name):
    shown = display_name(name)
    assert shown and len(shown) <= MAX_NAME_CHARS
    assert "/" not in shown and "\\" not in shown and shown.isprintable() and shown == shown.strip()


@FUZZ
@given(NAMES)
def test_saving_under_any_name_stays_in_the_learners_folder(tmp_path_factory, name):
    root = tmp_path_factory.mktemp("uploads")
    folder = root / "7"
    saved = save_upload(name, PROSE, folder)
    assert saved.path.parent == folder and UPLOAD_ID.fullmatch(saved.id)
    assert sorted(p.name for p in root.rglob("*")) == sorted(["7", saved.path.name])
