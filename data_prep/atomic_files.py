"""Atomic file creation: readers never see a half-written file."""

import contextlib
import os
import tempfile


@contextlib.contextmanager
def atomic_output(path, mode="w", encoding="utf-8"):
    """Yields a temp file beside `path`; renames it over `path` only on success."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(
        dir=directory, prefix=f".tmp-{os.path.basename(path)}-")
    try:
        with os.fdopen(fd, mode, encoding=None if "b" in mode else encoding) as f:
            yield f
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise


def write_text_atomically(path, text):
    with atomic_output(path) as f:
        f.write(text)
