"""Turns --input (files, directories, globs) into a checked list of files.

Everything that would stop a run is found here, before any output exists.
"""

import dataclasses
import glob
import gzip
import os

from electra_tf.utils.errors import UserError

_SNIFF_BYTES = 8192


@dataclasses.dataclass(frozen=True)
class InputFile:
    path: str
    size: int

    @property
    def is_gzip(self):
        return self.path.endswith(".gz")

    @property
    def is_jsonl(self):
        name = self.path[:-3] if self.is_gzip else self.path
        return name.endswith(".jsonl")

    def open_binary(self):
        return gzip.open(self.path, "rb") if self.is_gzip else open(self.path, "rb")


@dataclasses.dataclass
class ResolvedInputs:
    usable: list
    skipped: list  # [{"path": ..., "reason": ...}]


def _expand(spec):
    if glob.has_magic(spec):
        matches = sorted(glob.glob(spec, recursive=True))
        if not matches:
            raise UserError(f"no files match --input {spec}; check the pattern")
        return [p for m in matches for p in _expand(m)]
    if os.path.isdir(spec):
        found = []
        for root, dirs, names in os.walk(spec):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            found.extend(os.path.join(root, n) for n in sorted(names)
                         if not n.startswith("."))
        return found
    if not os.path.exists(spec):
        raise UserError(f"input path not found: {spec}; check --input")
    return [spec]


def _sniff(path):
    """Returns why the file must be skipped, or None; raises if unreadable."""
    f = InputFile(path, os.path.getsize(path))
    try:
        with f.open_binary() as stream:
            head = stream.read(_SNIFF_BYTES)
    except (OSError, EOFError) as e:
        reason = getattr(e, "strerror", None) or str(e)
        raise UserError(f"cannot read input {path} ({reason}); "
                        "fix its permissions or remove it from --input") from None
    if b"\0" in head:
        return "binary (contains NUL bytes)"
    if not head:
        return "empty file"
    return None


def resolve_inputs(specs):
    """Expands and checks inputs; raises UserError if no text is left."""
    specs = [s for s in specs if s.strip()]
    if not specs:
        raise UserError("--input is empty; give text files, directories or globs")
    paths = []
    for spec in specs:
        for path in _expand(spec):
            if path not in paths:
                paths.append(path)
    usable, skipped = [], []
    for path in paths:
        reason = _sniff(path)
        if reason:
            skipped.append({"path": path, "reason": reason})
        else:
            usable.append(InputFile(path, os.path.getsize(path)))
    if not usable:
        why = "; ".join(f"{s['path']}: {s['reason']}" for s in skipped[:3])
        raise UserError(f"input is empty: no text files found ({why or 'no files'});"
                        " check --input")
    return ResolvedInputs(usable, skipped)
