"""Files written whole or not at all: a temporary file beside the target, then a rename, so a
crash or a kill never leaves half a file where a good one was."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import BinaryIO


@contextmanager
def atomic_write(path: str | os.PathLike) -> Iterator[BinaryIO]:
    """Yield a binary file whose content replaces ``path`` when the block ends without error.

    On an error the temporary file is removed and ``path`` is left as it was.
    """
    path = os.fspath(path)
    handle, partial = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.",
                                       suffix=".partial", dir=os.path.dirname(path) or ".")
    try:
        with os.fdopen(handle, "wb") as file:
            yield file
        os.replace(partial, path)
    finally:
        if os.path.exists(partial):
            os.remove(partial)
