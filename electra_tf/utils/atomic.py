"""The one way files and directories are written: beside their destination, then renamed into place.

A reader (or a re-run after a kill) sees the old content or the new, never
half of one. Temporary siblings are named `.<name>.tmp-*` (and a replaced
directory `.<name>.old-*` for the moment of the swap), so anything left
behind by a killed process is recognisable.
"""

import contextlib
import os
import shutil
import tempfile

from electra_tf.utils.errors import UserError


def _staging_prefix(path):
    return f".{os.path.basename(os.path.abspath(path))}.tmp-"


@contextlib.contextmanager
def staged_path(path):
    """Yields the name of a temporary sibling of `path`; renames it over `path` only if the block succeeds.

    For writers that open their file by name (TFRecordWriter); `atomic_file`
    is the same for a Python file object.

    Args:
        path: the file to create or replace.

    Example:

    >>> path = os.path.join(tempfile.mkdtemp(), "notes.txt")
    >>> with staged_path(path) as staging, open(staging, "w") as f:
    ...     _ = f.write("whole or nothing")
    >>> open(path).read()
    'whole or nothing'
    """
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=_staging_prefix(path))
    os.close(fd)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise


@contextlib.contextmanager
def atomic_file(path, mode="w", encoding="utf-8"):
    """Yields a file object on a temporary sibling of `path`; renames it over `path` only if the block succeeds.

    Args:
        path: the file to create or replace.
        mode: `"w"` or `"wb"`.
        encoding: the text encoding (ignored in binary mode).

    Example:

    >>> path = os.path.join(tempfile.mkdtemp(), "notes.txt")
    >>> with atomic_file(path) as f:
    ...     _ = f.write("whole or nothing")
    >>> open(path).read()
    'whole or nothing'
    """
    with staged_path(path) as tmp, open(tmp, mode, encoding=None if "b" in mode else encoding) as f:
        yield f


def write_text_atomically(path, text):
    """Writes `text` (UTF-8) to `path` through `atomic_file`."""
    with atomic_file(path) as f:
        f.write(text)


def copy_file_atomically(source, path):
    """Copies `source` to `path` through `atomic_file`."""
    with open(source, "rb") as src, atomic_file(path, "wb") as dst:
        shutil.copyfileobj(src, dst)


def check_free(path, flag):
    """Raises a UserError unless `path` can become a new output directory (absent or empty)."""
    if os.path.isfile(path):
        raise UserError(f"--{flag} {path} is a file; give a directory")
    if os.path.isdir(path) and os.listdir(path):
        raise UserError(f"--{flag} {path} exists and is not empty; choose a new directory or remove it")


@contextlib.contextmanager
def atomic_directory(path, replace=False):
    """Yields a temporary sibling of `path` to fill; renames it to `path` only if the block succeeds.

    A failure or an interrupt removes the temporary directory, so `path`
    never holds a partial result.

    Args:
        path: the directory to create.
        replace: if `path` exists, swap the new directory in for it (the old
            one stays whole until the swap). Otherwise `path` must be absent or
            empty (check it with `check_free` first, for a message naming the flag).

    Example:

    >>> path = os.path.join(tempfile.mkdtemp(), "export")
    >>> with atomic_directory(path) as staging:
    ...     write_text_atomically(os.path.join(staging, "vocab.txt"), "[PAD]\\n")
    >>> os.listdir(path)
    ['vocab.txt']
    """
    parent = os.path.dirname(os.path.abspath(path))
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=_staging_prefix(path), dir=parent)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(staging, 0o777 & ~umask)  # mkdtemp's 0700 is for the staging only, not for the result
    old = None
    try:
        yield staging
        if os.path.isdir(path):
            if replace:
                old = tempfile.mkdtemp(prefix=f".{os.path.basename(os.path.abspath(path))}.old-", dir=parent)
                os.replace(path, os.path.join(old, "previous"))
            elif os.listdir(path):
                raise FileExistsError(f"{path} exists and is not empty")
            else:
                os.rmdir(path)  # a rename cannot replace a directory
        os.replace(staging, path)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        if old and not os.path.exists(path):
            os.replace(os.path.join(old, "previous"), path)
        raise
    finally:
        if old:
            shutil.rmtree(old, ignore_errors=True)
