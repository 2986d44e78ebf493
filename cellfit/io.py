"""File helpers shared by every layer: atomic writes (nothing half-written is ever seen) and file fingerprints."""

from __future__ import annotations

import contextlib
import json
import os
import pathlib
import tempfile
from typing import Any, Iterator

__all__ = ["atomic_path", "write_json_atomic", "write_text_atomic", "file_stamp"]


@contextlib.contextmanager
def atomic_path(path: os.PathLike | str, suffix: str = "") -> Iterator[pathlib.Path]:
    """Yield a temporary path next to ``path``; move it onto ``path`` on success.

    The temporary file lives in the same directory, so ``os.replace`` is an
    atomic rename: readers see either the old file or the complete new one,
    never a partial write. On error the temporary file is removed.
    """
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix + ".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = pathlib.Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_text_atomic(path: os.PathLike | str, text: str) -> None:
    """Write ``text`` to ``path`` atomically (UTF-8)."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json_atomic(path: os.PathLike | str, obj: Any, indent: int | None = 1) -> None:
    """Write ``obj`` as JSON to ``path`` atomically."""
    write_text_atomic(path, json.dumps(obj, indent=indent, sort_keys=False) + "\n")


def file_stamp(path: os.PathLike | str) -> tuple[int, int]:
    """Return ``(size_bytes, mtime_ns)`` of ``path``, or ``(-1, -1)`` if it is missing."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return (-1, -1)
    return (int(st.st_size), int(st.st_mtime_ns))
