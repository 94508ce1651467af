"""Turns --input (files, directories, globs) into a checked list of files.

Everything that would stop a run is found here, before any output exists.
A file's format comes from its name: `.parquet`; `.jsonl`; anything else is
text. Text and JSON lines may be compressed: `.gz`, `.bz2`, `.xz` or `.zst`.
"""

import bz2
import contextlib
import dataclasses
import glob
import gzip
import lzma
import os

from electra_tf.utils.errors import UserError

try:
    from compression import zstd  # Python 3.14+
except ImportError:
    from backports import zstd

_SNIFF_BYTES = 8192


def _gzip(raw):
    return gzip.GzipFile(fileobj=raw, mode="rb")


_DECOMPRESSORS = {".gz": _gzip, ".bz2": bz2.BZ2File, ".xz": lzma.LZMAFile, ".zst": zstd.ZstdFile}
# What a damaged compressed file raises while it is read.
READ_ERRORS = (OSError, EOFError, lzma.LZMAError, zstd.ZstdError)


def parquet_module():
    """pyarrow.parquet, or a UserError saying how to install it."""
    try:
        import pyarrow.parquet as pq  # pylint: disable=g-import-not-at-top
    except ImportError:
        raise UserError("reading .parquet inputs needs pyarrow; install it with "
                        "`pip install 'electra-tf[parquet]'`") from None
    return pq


@dataclasses.dataclass(frozen=True)
class InputFile:
    """One input: its path, its size in bytes and, from its name, its format and compression."""

    path: str
    size: int

    @property
    def compression(self):
        """".gz", ".bz2", ".xz", ".zst", or "" for none."""
        suffix = os.path.splitext(self.path)[1]
        return suffix if suffix in _DECOMPRESSORS else ""

    @property
    def kind(self):
        """ "parquet", "jsonl" or "text"."""
        name = self.path[:len(self.path) - len(self.compression)]
        if name.endswith(".parquet") and not self.compression:
            return "parquet"
        return "jsonl" if name.endswith(".jsonl") else "text"

    @property
    def is_jsonl(self):
        return self.kind == "jsonl"

    def open_raw(self):
        """The file's bytes as stored (compressed or not)."""
        return open(self.path, "rb")

    def decompressed(self, raw):
        """A reader of the text in `raw`, an open binary file of this input; closing it leaves `raw` open."""
        decompress = _DECOMPRESSORS.get(self.compression)
        return decompress(raw) if decompress else contextlib.nullcontext(raw)

    @contextlib.contextmanager
    def open_binary(self):
        """The file's decompressed bytes."""
        with self.open_raw() as raw, self.decompressed(raw) as stream:
            yield stream


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


def _unreadable(path, error):
    reason = getattr(error, "strerror", None) or str(error)
    return UserError(f"cannot read input {path} ({reason}); fix its permissions or remove it from --input")


def _check_parquet(input_file, text_field):
    """Why a Parquet file must be skipped, or None; raises a UserError if it is unreadable or lacks the field."""
    pq = parquet_module()
    import pyarrow as pa  # pylint: disable=g-import-not-at-top
    path = input_file.path
    try:
        with input_file.open_raw() as raw:
            parquet_file = pq.ParquetFile(raw)
            schema, rows = parquet_file.schema_arrow, parquet_file.metadata.num_rows
    except (OSError, EOFError, ValueError) as e:  # pyarrow's ArrowInvalid is a ValueError
        raise _unreadable(path, e) from None
    if text_field not in schema.names:
        raise UserError(f"input {path} has no column {text_field!r} (its columns: {', '.join(schema.names[:10])}); "
                        "name the text column with --text_field")
    kind = schema.field(text_field).type
    if not any(test(kind) for test in (pa.types.is_string, pa.types.is_large_string, pa.types.is_binary,
                                        pa.types.is_large_binary)):
        raise UserError(f"column {text_field!r} of input {path} holds {kind}, not text; "
                        "name the text column with --text_field")
    return None if rows else "empty file"


def sniff(input_file, text_field="text"):
    """Returns why the file must be skipped, or None; raises a UserError if it cannot be read."""
    if input_file.kind == "parquet":
        return _check_parquet(input_file, text_field)
    try:
        with input_file.open_raw() as raw, input_file.decompressed(raw) as stream:
            head = getattr(stream, "read1", stream.read)(_SNIFF_BYTES)
    except READ_ERRORS as e:
        raise _unreadable(input_file.path, e) from None
    if b"\0" in head:
        return "binary (contains NUL bytes)"
    if not head:
        return "empty file"
    return None


def resolve_inputs(specs, text_field="text"):
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
        input_file = InputFile(path, os.path.getsize(path))
        reason = sniff(input_file, text_field)
        if reason:
            skipped.append({"path": path, "reason": reason})
        else:
            usable.append(input_file)
    if not usable:
        why = "; ".join(f"{s['path']}: {s['reason']}" for s in skipped[:3])
        raise UserError(f"input is empty: no text files found ({why or 'no files'});"
                        " check --input")
    return ResolvedInputs(usable, skipped)
