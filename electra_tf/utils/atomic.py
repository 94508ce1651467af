"""Files and directories that appear whole or not at all."""

import contextlib
import os
import shutil
import tempfile

from electra_tf.utils.errors import UserError


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



def check_free(path, flag):
    """Raises a UserError unless `path` can become a new output directory (absent or empty)."""
    if os.path.isfile(path):
        raise UserError(f"--{flag} {path} is a file; give a directory")
    if os.path.isdir(path) and os.listdir(path):
        raise UserError(f"--{flag} {path} exists and is not empty; choose a new directory or remove it")


@contextlib.contextmanager
def atomic_directory(path, flag):
    """Yields a temporary sibling of `path` to fill; renames it to `path` only if the block succeeds.

    A failure or an interrupt removes the temporary directory, so `path`
    never holds a partial conversion.
    """
    check_free(path, flag)
    parent = os.path.dirname(os.path.abspath(path))
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=f".{os.path.basename(os.path.abspath(path))}.tmp-", dir=parent)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(staging, 0o777 & ~umask)  # mkdtemp's 0700 is for the staging only, not for the result
    try:
        yield staging
        if os.path.isdir(path):
            os.rmdir(path)  # empty, checked above; a rename cannot replace a directory
        os.replace(staging, path)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
