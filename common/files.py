"""Atomic file writes: a reader (or a killed run) never sees a half-written file.

Each write goes to a fresh temporary file in the target's folder and is moved over
the target with `os.replace`, which is atomic on POSIX file systems; if the write
fails, the temporary file is removed and the target is left as it was.

Example:
    >>> import json, os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "state.json")
    >>> atomic_write_json(path, {"step": 3})
    >>> json.load(open(path))
    {'step': 3}
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from typing import IO, Any

import numpy as np


@contextlib.contextmanager
def atomic_open(path: str, binary: bool = False) -> Iterator[IO]:
    """A file to write that replaces `path` when the `with` block ends without error.

    The parent folder is created if needed. The file gets the usual permissions
    (0644 less the umask), not `mkstemp`'s private 0600.
    """
    folder = os.path.dirname(path) or "."
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".tmp-{os.path.basename(path)}-")
    try:
        with os.fdopen(fd, "wb" if binary else "w") as f:
            yield f
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o644 & ~umask)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def atomic_write_text(path: str, text: str) -> None:
    """Writes `text` to `path` atomically."""
    with atomic_open(path) as f:
        f.write(text)


def atomic_write_json(
    path: str, obj: Any, indent: int | None = 2, sort_keys: bool = False
) -> None:
    """Writes `obj` as JSON (with a trailing newline) to `path` atomically."""
    atomic_write_text(path, json.dumps(obj, indent=indent, sort_keys=sort_keys) + "\n")


def atomic_write_npz(path: str, **arrays: Any) -> None:
    """Writes `arrays` as an uncompressed `.npz` archive to `path` atomically."""
    with atomic_open(path, binary=True) as f:
        np.savez(f, **arrays)
