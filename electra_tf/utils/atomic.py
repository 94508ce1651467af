"""The one way files and directories are written: beside their destination, then renamed into place.

A reader (or a re-run after a kill) sees the old content or the new, never
half of one. The result has the mode an ordinary write would give it (0666
for a file, 0777 for a directory, less the umask), not the private mode of
its temporary sibling. Temporary siblings are named `.<name>.tmp-*` (and a replaced
directory `.<name>.old-*` for the moment of the swap), so anything left
behind by a killed process is recognisable.
"""

import contextlib
import os
import secrets
import shutil

from electra_tf.utils.errors import UserError


def umask():
    """The process's umask, read without changing it where the system allows (another thread may be writing)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def ordinary_mode(directory=False):
    """The mode `open(path, "w")` (or `os.mkdir`) would give a new file (directory): 0o666 (0o777) less the umask.

    Example:

    >>> previous = os.umask(0o022)
    >>> oct(ordinary_mode()), oct(ordinary_mode(directory=True))
    ('0o644', '0o755')
    >>> _ = os.umask(previous)
    """
    return (0o777 if directory else 0o666) & ~umask()


def _sibling_name(path, kind):
    """A new name `.<name>.<kind>-<16 hex digits>` beside `path`; 64 random bits make a clash with another writer moot.

    The name is chosen before anything is created: a stop signal raised just
    after the creation (Python acts on signals between any two calls) then
    still finds the name in the writer's cleanup, which `tempfile.mkdtemp`'s
    returned name would not yet be.
    """
    directory = os.path.dirname(os.path.abspath(path))
    return os.path.join(directory, f".{os.path.basename(os.path.abspath(path))}.{kind}-{secrets.token_hex(8)}")


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
    tmp = _sibling_name(path, "tmp")
    try:
        os.close(os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))  # the mode of an ordinary write
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


def _readable_as_usual(directory):
    """Adds the read (and, for directories, search) bits the umask allows to everything under `directory`.

    Writers the project does not control (safetensors writes 0600) then
    leave files as readable as an ordinary write would.
    """
    for root, subdirectories, files in os.walk(directory):
        for name, usual in [*[(d, ordinary_mode(True) & 0o555) for d in subdirectories],
                            *[(f, ordinary_mode() & 0o444) for f in files]]:
            entry = os.path.join(root, name)
            mode = os.lstat(entry).st_mode
            if not os.path.islink(entry) and mode & usual != usual:
                os.chmod(entry, (mode & 0o7777) | usual)


@contextlib.contextmanager
def atomic_directory(path, replace=False):
    """Yields a temporary sibling of `path` to fill; renames it to `path` only if the block succeeds.

    A failure or an interrupt removes the temporary directory, so `path`
    never holds a partial result. What the block wrote is made as readable
    as an ordinary write makes it (the umask's read bits), whatever wrote it.

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
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    staging, old = _sibling_name(path, "tmp"), None
    try:
        os.mkdir(staging)  # the mode of an ordinary mkdir
        yield staging
        _readable_as_usual(staging)
        if os.path.isdir(path):
            if replace:
                old = _sibling_name(path, "old")
                os.mkdir(old)
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
