"""Files written whole or not at all: a temporary file beside the target, then a rename, so a
crash or a kill never leaves half a file where a good one was."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from typing import BinaryIO

NAME_BYTES = 255
"""The longest file name most file systems take (NAME_MAX)."""


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[str]:
    """Yield a temporary path beside ``path`` (ending in the same suffix, for writers that pick
    the format by it) that replaces ``path`` when the block ends without error.

    On an error the temporary file is removed and ``path`` is left as it was.
    """
    path = os.fspath(path)
    # A fresh name, not a file made by mkstemp, so the writer makes it with the usual
    # permissions (mkstemp's are owner-only); the target's name is cut so that the whole
    # stays within the 255 bytes a file name may have.
    tail = f".{secrets.token_hex(6)}.partial{os.path.splitext(path)[1][:16]}"
    name = os.fsencode(os.path.basename(path))[: NAME_BYTES - 1 - len(tail)]
    partial = os.path.join(os.path.dirname(path), "." + name.decode("utf-8", "ignore") + tail)
    try:
        yield partial
        os.replace(partial, path)
    finally:
        if os.path.exists(partial):
            os.remove(partial)


@contextmanager
def atomic_write(path: str | os.PathLike) -> Iterator[BinaryIO]:
    """Yield a binary file whose content replaces ``path`` when the block ends without error
    (see :func:`atomic_path`)."""
    with atomic_path(path) as partial, open(partial, "xb") as file:
        yield file


def path_text(owner: str, path: object) -> str:
    """``path`` (a str or os.PathLike) as a str; else a ``TypeError`` starting with ``owner``."""
    if not isinstance(path, (str, os.PathLike)) or not isinstance(os.fspath(path), str):
        raise TypeError(f"{owner}: expected path to be a str or os.PathLike; got "
                        f"{type(path).__name__}.")
    return os.fspath(path)


def regular_file(where: str, path: str, expected: str) -> None:
    """Refuse a ``path`` that is a folder, a device, a pipe or a socket (reading one can block
    or never end) with a ``ValueError`` starting with ``where`` and naming ``expected``; a
    missing path is left to the caller."""
    if os.path.isdir(path):
        raise ValueError(f"{where} is a folder; expected {expected}.")
    if os.path.exists(path) and not os.path.isfile(path):
        raise ValueError(f"{where} is not a regular file (a device, a pipe or a socket); "
                         f"expected {expected}.")


def writable_path(owner: str, path: object) -> str:
    """``path`` as a str, if a file can be written there: not a folder, in a folder that exists
    and is writable; else a ``TypeError`` or ``ValueError`` starting with ``owner``."""
    path = path_text(owner, path)
    folder = os.path.dirname(os.path.abspath(path))
    if not path or os.path.isdir(path) or path.endswith(("/", os.sep)):
        raise ValueError(f"{owner}: cannot write {path!r}: it is a folder; expected a file path.")
    if not os.path.isdir(folder):
        raise ValueError(f"{owner}: cannot write {path!r}: the folder {folder!r} does not exist.")
    if not os.access(folder, os.W_OK):
        raise ValueError(f"{owner}: cannot write {path!r}: the folder {folder!r} is not "
                         "writable.")
    return path
