"""Files the engine keeps: a name safe to put in a path (`slug`), and writing a file so that a reader never sees
half of it (`write_atomically`, the one writer for every file the engine writes).

The file is written under a temporary name in its own folder, flushed to disk (fsync), then renamed over the real
name, which is atomic; the folder is fsynced too, so the rename itself survives a power cut. A crash leaves the old
file or the new one, never a mix, and a failed write (a full disk, an exception in the writer) removes its
temporary file and leaves the old version untouched. Checkpoints, run records, safetensors exports, the vector
index, the measured peak, uploads and learners' tokenizers all go through `write_atomically`.
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Callable
from pathlib import Path


def slug(text: str, fallback: str = "file", max_len: int = 40) -> str:
    """A name made of lower-case letters, digits and single hyphens, for a file or folder name.

    >>> slug("Lesson 7: the training loop!"), slug("***", fallback="run"), slug("Ünïcode name")
    ('lesson-7-the-training-loop', 'run', 'n-code-name')
    """
    return re.sub(r"[^a-z0-9]+", "-", text.lower())[:max_len].strip("-") or fallback


def write_atomically(path: Path | str, write: Callable[[Path], object]) -> Path:
    """Create or replace `path` with what `write(tmp)` writes at the temporary path `tmp` (a library that wants a
    path, such as torch.save, safetensors or FAISS, writes there itself). Returns `path`.

    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> write_text(folder / "a.txt", "whole").read_text()
    'whole'
    >>> def half_then_fail(tmp): tmp.write_text("half"); raise OSError("disk full")
    >>> write_atomically(folder / "a.txt", half_then_fail)
    Traceback (most recent call last):
    OSError: disk full
    >>> (folder / "a.txt").read_text(), sorted(p.name for p in folder.iterdir())
    ('whole', ['a.txt'])
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")  # unique: two writers never share it
    try:
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())  # the data is on disk before the name points at it
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_folder(path.parent)
    return path


def write_bytes(path: Path | str, data: bytes) -> Path:
    return write_atomically(path, lambda tmp: tmp.write_bytes(data))


def write_text(path: Path | str, text: str) -> Path:
    """UTF-8 text, written atomically."""
    return write_atomically(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def _fsync_folder(folder: Path) -> None:
    """Make a rename in `folder` durable. Not every system can open a folder (Windows cannot): then skip it."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
