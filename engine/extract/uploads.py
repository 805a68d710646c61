"""The learner's own corpora: check an uploaded or pasted file, save it, and keep each learner's folder small.

An upload is saved as `upload-<slug>-<hash>.txt` in the learner's folder, named by a hash of its text so the same
text saved twice is one corpus. Every id that arrives from outside (a stored choice, a widget) is matched against
`UPLOAD_ID` before it becomes a path, so no id can name a file outside that folder.

Limits, and why: one upload is at most 2 MB (a CPU trains on a few MB at most in a lesson's time) and at least
1,000 characters; it may use at most `MAX_CHAR_VOCAB` distinct characters (the character model's output layer has
a row per character). A learner keeps at most `MAX_UPLOADS` uploads and `MAX_UPLOADS_BYTES` in all; saving one
more removes their oldest uploads, and an upload not saved again for `RETENTION_DAYS` is removed
(`prune_uploads`, rule written up in docs/retention.md).

>>> bool(UPLOAD_ID.fullmatch("upload-my-novel-0123456789")), bool(UPLOAD_ID.fullmatch("upload-../../etc/passwd"))
(True, False)
"""

from __future__ import annotations

import hashlib
import re
import time
import unicodedata
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path

from engine.files import slug, write_bytes
from engine.transform.tokenization import MAX_CHAR_VOCAB

MAX_UPLOAD_BYTES = 2 * 1024 * 1024  # 2 MB: enough for a small book, small enough to train on a CPU
MIN_UPLOAD_CHARS = 1_000  # fewer characters than this is not enough to train even a tiny model on
MAX_UPLOADS = 10  # per learner: enough to compare a few texts, few enough to list in one picker
MAX_UPLOADS_BYTES = 10 * 1024 * 1024  # per learner, all uploads together: five uploads at the 2 MB limit
RETENTION_DAYS = 90  # an upload not saved again for this long is removed (docs/retention.md)
UPLOAD_ID = re.compile(r"upload-[a-z0-9-]{1,40}-[0-9a-f]{10}")  # use with fullmatch: "$" would let a final "\n" through


# The first bytes of files learners upload by mistake (or rename to .txt), so the refusal can say what the file is.
FILE_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"PK\x03\x04", "a ZIP archive (a .zip, or a Word, Excel or EPUB file, which are ZIP archives inside)"),
    (b"PK\x05\x06", "an empty ZIP archive"),
    (b"%PDF-", "a PDF document"),
    (b"\x1f\x8b", "a gzip-compressed file"),
    (b"BZh", "a bzip2-compressed file"),
    (b"\xfd7zXZ\x00", "an xz-compressed file"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (b"Rar!\x1a\x07", "a RAR archive"),
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF87a", "a GIF image"),
    (b"GIF89a", "a GIF image"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an old Microsoft Office document (.doc or .xls)"),
    (b"\x7fELF", "a program (ELF executable)"),
    (b"MZ", "a Windows program"),
    (b"SQLite format 3\x00", "an SQLite database"),
)
MAX_NAME_CHARS = 80  # a file name shown in a message is cut to this many characters


def display_name(name: str | None) -> str:
    r"""A file name as the course shows it: only the last part of a path, no control or invisible formatting
    characters (newlines, NUL, right-to-left overrides), spaces collapsed, at most `MAX_NAME_CHARS` characters.

    >>> display_name("../../etc/passwd"), display_name("C:\\Users\\me\\novel.txt"), display_name("a\nb\x00c\u202etxt.exe")
    ('passwd', 'novel.txt', 'a b c txt.exe')
    >>> display_name(""), display_name("/"), display_name(None)
    ('the pasted text', 'your file', 'the pasted text')
    """
    if not name:
        return "the pasted text"
    base = re.split(r"[/\\]", name)[-1]
    base = "".join(" " if unicodedata.category(ch)[0] in "CZ" else ch for ch in base)
    base = " ".join(base.split())
    if len(base) > MAX_NAME_CHARS:
        base = base[: MAX_NAME_CHARS - 1] + "…"
    return base or "your file"


class UploadRejected(ValueError):
    """An upload the course cannot train on. `kind` is a stable code, `reason` a sentence for the learner."""

    KINDS = ("empty", "too_large", "binary", "not_utf8", "too_short", "too_many_chars")

    def __init__(self, kind: str, reason: str):
        super().__init__(reason)
        self.kind = kind
        self.reason = reason


@dataclass(frozen=True)
class SavedUpload:
    """A saved upload, and the ids of older uploads removed to keep the learner within the limits."""

    id: str
    path: Path
    removed: list[str] = field(default_factory=list)


def validate_upload(name: str, data: bytes) -> str:
    """Check an uploaded or pasted file and return its text, or raise UploadRejected saying why not.

    Accepted text loses a UTF-8 byte-order mark and has Windows/old-Mac line endings turned into "\\n".

    >>> validate_upload("notes.txt", b"")
    Traceback (most recent call last):
    ...
    engine.extract.uploads.UploadRejected: notes.txt is empty: there is no text to train on.
    """
    label = display_name(name)
    if not data:
        raise UploadRejected("empty", f"{label} is empty: there is no text to train on.")
    if len(data) > MAX_UPLOAD_BYTES:
        raise UploadRejected(
            "too_large",
            f"{label} is {len(data) / 1024 / 1024:.1f} MB; the limit is {MAX_UPLOAD_BYTES // (1024 * 1024)} MB "
            "(a CPU trains on a few MB at most in a lesson's time). Upload an excerpt.",
        )
    if data[:4] in (b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff"):
        raise UploadRejected("not_utf8", f"{label} is UTF-32 text; save it as UTF-8 and upload it again.")
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        raise UploadRejected("not_utf8", f"{label} is UTF-16 text; save it as UTF-8 and upload it again.")
    kind = next((what for magic, what in FILE_SIGNATURES if data.startswith(magic)), None)
    if kind is not None:
        raise UploadRejected(
            "binary",
            f"{label} is {kind}, not plain text, whatever its name says: open it in the program that made it and "
            "save or export the text as a .txt file (UTF-8).",
        )
    nul = data.find(b"\x00")
    if nul >= 0 and _looks_like_utf16(data):
        raise UploadRejected("not_utf8", f"{label} looks like UTF-16 text (a zero byte beside every letter); save it "
                                         "as UTF-8 and upload it again.")
    if nul >= 0:
        raise UploadRejected(
            "binary",
            f"{label} looks like a binary file (a NUL byte at byte {nul:,}), not plain text: "
            "export it as a .txt file first.",
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise UploadRejected(
            "not_utf8",
            f"{label} is not valid UTF-8: byte 0x{data[err.start]:02X} at position {err.start:,} cannot be "
            "decoded (perhaps Latin-1 or Windows-1252). Save it as UTF-8 and upload it again.",
        ) from None
    text = text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    control = sum(1 for ch in text if unicodedata.category(ch)[0] == "C" and ch not in "\n\t\f")
    if control > 0.1 * len(text):
        raise UploadRejected(
            "binary",
            f"{label} is mostly non-printable characters ({control:,} of {len(text):,}): it does not look "
            "like text.",
        )
    if len(text.strip()) < MIN_UPLOAD_CHARS:
        raise UploadRejected(
            "too_short",
            f"{label} has {len(text.strip()):,} characters; at least {MIN_UPLOAD_CHARS:,} are needed to "
            "train on (a model needs many examples of each character).",
        )
    distinct = len(set(text))
    if distinct > MAX_CHAR_VOCAB:
        raise UploadRejected(
            "too_many_chars",
            f"{label} uses {distinct:,} different characters; the course's models allow at most "
            f"{MAX_CHAR_VOCAB:,}, because a character model learns one output per character and sees a rare one "
            "too seldom to learn it. Upload text in a script with a smaller alphabet (English, for example).",
        )
    return text


def _looks_like_utf16(data: bytes) -> bool:
    """Mostly-ASCII text in UTF-16 without a byte-order mark: zero bytes at nearly every even or every odd place.

    >>> _looks_like_utf16("plain words".encode("utf-16-le")), _looks_like_utf16(b"PK\\x03\\x04\\x00\\x00 data")
    (True, False)
    """
    sample = data[:4096]
    half = len(sample) // 2
    if half < 4:
        return False
    return max(sample[0::2].count(0), sample[1::2].count(0)) > 0.8 * half


def save_upload(name: str, text: str, folder: Path, keep: Collection[str] = ()) -> SavedUpload:
    """Save validated upload text in `folder`, atomically (temp file, then rename), then apply the limits.

    The id carries the text's hash, so saving the same text twice gives the same corpus; if writing fails,
    nothing already in the folder is touched. Older uploads beyond the limits are removed, except the new one
    and those in `keep` (e.g. the learner's current choice); their ids come back in `removed`.
    """
    if len(text.strip()) < MIN_UPLOAD_CHARS:
        raise UploadRejected("too_short", f"the text has fewer than {MIN_UPLOAD_CHARS:,} characters")
    data = text.encode("utf-8")
    if len(data) > MAX_UPLOAD_BYTES:
        raise UploadRejected("too_large", f"the text is larger than {MAX_UPLOAD_BYTES // (1024 * 1024)} MB")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    stem = Path(display_name(name) if name else "pasted").stem
    path = folder / f"upload-{slug(stem, fallback='text')}-{hashlib.sha256(data).hexdigest()[:10]}.txt"
    write_bytes(path, data)
    removed = prune_uploads(folder, keep={*keep, path.stem})
    return SavedUpload(path.stem, path, removed)


def upload_path(folder: Path, upload_id: str) -> Path:
    """The file of upload `upload_id` in `folder`; ValueError if the id is not an upload id (so never a path).

    >>> upload_path(Path("/u/7"), "upload-notes-0123456789").name
    'upload-notes-0123456789.txt'
    >>> upload_path(Path("/u/7"), "../../etc/passwd")
    Traceback (most recent call last):
    ...
    ValueError: not an upload id: '../../etc/passwd'
    """
    if not UPLOAD_ID.fullmatch(upload_id):
        raise ValueError(f"not an upload id: {upload_id!r}")
    return Path(folder) / f"{upload_id}.txt"


def upload_files(folder: Path | None) -> list[Path]:
    """The upload files in a learner's folder (none if it does not exist), oldest first."""
    if folder is None or not Path(folder).is_dir():
        return []
    files = [p for p in Path(folder).glob("upload-*.txt") if p.is_file() and UPLOAD_ID.fullmatch(p.stem)]
    return sorted(files, key=lambda p: (p.stat().st_mtime, p.name))


def upload_title(path: Path) -> str:
    """The title an upload is listed under: its file name's slug.

    >>> upload_title(Path("upload-my-novel-0123456789.txt"))
    'my novel'
    """
    return path.stem.removeprefix("upload-").rsplit("-", 1)[0].replace("-", " ")


def prune_uploads(folder: Path, keep: Collection[str] = (), now: float | None = None) -> list[str]:
    """Apply the retention rule to one learner's folder and return the ids removed, oldest first.

    First every upload not saved for `RETENTION_DAYS` goes; then, oldest first, uploads until at most
    `MAX_UPLOADS` files and `MAX_UPLOADS_BYTES` remain. Ids in `keep` are never removed.
    """
    now = time.time() if now is None else now
    files = upload_files(folder)
    removed: list[Path] = []
    for path in files:
        if path.stem not in keep and now - path.stat().st_mtime > RETENTION_DAYS * 86_400:
            removed.append(path)
    left = [p for p in files if p not in removed]
    total = sum(p.stat().st_size for p in left)
    for path in list(left):
        if len(left) <= MAX_UPLOADS and total <= MAX_UPLOADS_BYTES:
            break
        if path.stem in keep:
            continue
        removed.append(path)
        left.remove(path)
        total -= path.stat().st_size
    for path in removed:
        path.unlink(missing_ok=True)
    return [p.stem for p in removed]


def prune_all(root: Path, now: float | None = None) -> dict[str, list[str]]:
    """`prune_uploads` over every learner folder under `root` (one folder per learner id): {folder: removed}."""
    if not Path(root).is_dir():
        return {}
    done = {}
    for folder in sorted(p for p in Path(root).iterdir() if p.is_dir()):
        removed = prune_uploads(folder, now=now)
        if removed:
            done[folder.name] = removed
    return done
