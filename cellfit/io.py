"""File helpers shared by every layer: atomic writes (nothing half-written is ever seen) and file fingerprints."""

from __future__ import annotations

import contextlib
import json
import os
import pathlib
import tempfile
from typing import Any, Iterator

__all__ = ["atomic_path", "write_json_atomic", "write_text_atomic", "file_stamp", "make_dir_readable", "user_dir"]


@contextlib.contextmanager
def atomic_path(path: os.PathLike | str, suffix: str = "") -> Iterator[pathlib.Path]:
    """Yield a temporary path next to ``path``; move it onto ``path`` on success.

    The temporary file lives in the same directory, so ``os.replace`` is an
    atomic rename: readers see either the old file or the complete new one,
    never a partial write. On error the temporary file is removed.
    """
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp" + suffix, dir=path.parent)
    os.close(fd)
    tmp_path = pathlib.Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual permissions
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


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


def make_dir_readable(path: os.PathLike | str) -> None:
    """Give a ``tempfile.mkdtemp`` directory (mode 0700) the usual permissions."""
    os.chmod(path, 0o777 & ~_umask())


def user_dir(given: os.PathLike | str | None, env: str, *default: str) -> pathlib.Path:
    """A directory chosen by argument, then environment variable ``env``, then ``~/.cache/<default...>``."""
    if given is not None and str(given) != "":
        return pathlib.Path(given).expanduser()
    value = os.environ.get(env, "")
    if value:
        return pathlib.Path(value).expanduser()
    return pathlib.Path.home().joinpath(".cache", *default)
