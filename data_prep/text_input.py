"""Streams documents (lists of lines) out of text, JSON-lines and Parquet files.

Files are read in fixed-size chunks, so a line of any length costs bounded
memory: a line longer than `max_line_chars` is cut into pieces at whitespace.
Parquet files are read in batches of rows, one column.
"""

import codecs
import dataclasses
import json

from data_prep import input_files

_CHUNK_BYTES = 1 << 20
MAX_LINE_CHARS = 1 << 18
# A document longer than this is split so one work block stays small.
MAX_DOCUMENT_CHARS = 1 << 22


@dataclasses.dataclass
class ReadStats:
    raw_bytes_read: int = 0
    text_bytes: int = 0
    invalid_utf8_replaced: int = 0
    long_lines_cut: int = 0
    long_documents_split: int = 0
    empty_documents: int = 0
    bad_records: int = 0  # .jsonl or .parquet records without text
    # Files whose end could not be read (a damaged compressed file): [{"path", "reason"}].
    unreadable_ends: list = dataclasses.field(default_factory=list)

    def add(self, other):
        """Adds the counts (and lists) of another ReadStats to these."""
        for field in dataclasses.fields(self):
            setattr(self, field.name, getattr(self, field.name) + getattr(other, field.name))
    # Tokens of the parts of over-long lines never read into a document (see read_documents).
    long_line_tail_tokens: int = 0


_replacements = [0]


def _count_and_replace(error):
    _replacements[0] += 1
    return "\ufffd", error.end


# Error handlers are looked up by name; this one replaces like "replace"
# and counts, so invalid bytes are reported instead of silently changed.
codecs.register_error("data_prep_count_replace", _count_and_replace)


def _cut(text, limit):
    """Splits an over-long line into pieces of at most `limit` chars at whitespace."""
    while len(text) > limit:
        cut = text.rfind(" ", limit // 2, limit)
        cut = limit if cut <= 0 else cut + 1
        yield text[:cut]
        text = text[cut:]
    yield text


def _read_or_stop(read, input_file, stats):
    """The next chunk, or b"" (the end) where a damaged file cannot be read on: that is counted."""
    try:
        return read(_CHUNK_BYTES)
    except input_files.READ_ERRORS as e:
        stats.unreadable_ends.append({"path": input_file.path, "reason": str(e) or type(e).__name__})
        return b""


def iter_lines(input_file, stats, max_line_chars=MAX_LINE_CHARS):
    """Yields (piece, starts_line) over the decoded file, chunk by chunk."""
    decoder = codecs.getincrementaldecoder("utf-8")(
        errors="data_prep_count_replace")
    pending, continuing = "", False
    bytes_before = stats.raw_bytes_read
    with input_file.open_raw() as raw, input_file.decompressed(raw) as stream:
        # read1: what one step of decompression gives, so a damaged file's last good text is kept.
        read = getattr(stream, "read1", stream.read)
        while True:
            data = _read_or_stop(read, input_file, stats)
            final = not data
            stats.raw_bytes_read = bytes_before + raw.tell()
            stats.text_bytes += len(data)
            replaced_before = _replacements[0]
            pending += decoder.decode(data, final)
            stats.invalid_utf8_replaced += _replacements[0] - replaced_before
            lines = pending.split("\n")
            pending = "" if final else lines.pop()
            for line in lines:
                if max_line_chars and len(line) > max_line_chars:
                    for i, piece in enumerate(_cut(line, max_line_chars)):
                        if i == 1 and not continuing:
                            stats.long_lines_cut += 1
                        yield piece, not (continuing or i)
                else:
                    yield line, not continuing
                continuing = False
            if max_line_chars and len(pending) > max_line_chars:
                pieces = list(_cut(pending, max_line_chars))
                pending = pieces.pop()
                if not continuing:
                    stats.long_lines_cut += 1
                for piece in pieces:
                    yield piece, not continuing
                    continuing = True
            if final:
                return


def _text_documents(input_file, stats, keep_long_line_tail, count_tokens):
    doc, chars = [], 0
    for piece, starts_line in iter_lines(input_file, stats):
        if not starts_line and not keep_long_line_tail:
            if count_tokens is not None:
                stats.long_line_tail_tokens += count_tokens(piece)
            continue
        line = piece.strip()
        if not line:
            # A blank line ends a document; a blank piece of a long line doesn't.
            if starts_line and doc:
                yield doc
                doc, chars = [], 0
            continue
        doc.append(line)
        chars += len(line)
        if chars > MAX_DOCUMENT_CHARS:
            stats.long_documents_split += 1
            yield doc
            doc, chars = [], 0
    if doc:
        yield doc


def _record_document(text, stats):
    """A record's text as a document (None if it has no text), counting records without any."""
    if isinstance(text, bytes):
        replaced_before = _replacements[0]
        text = text.decode("utf-8", errors="data_prep_count_replace")
        stats.invalid_utf8_replaced += _replacements[0] - replaced_before
    if not isinstance(text, str):
        stats.bad_records += 1
        return None
    doc = [line.strip() for line in text.split("\n")]
    doc = [line for line in doc if line]
    if not doc:
        stats.empty_documents += 1
        return None
    return doc


def _jsonl_documents(input_file, stats, text_field):
    for line, _ in iter_lines(input_file, stats, max_line_chars=None):
        if not line.strip():
            continue
        try:
            text = json.loads(line).get(text_field)
        except (ValueError, AttributeError):
            text = None
        doc = _record_document(text, stats)
        if doc:
            yield doc


_PARQUET_BATCH_ROWS = 1024


def parquet_documents(input_file, stats, text_field, row_groups=None, with_rows=False):
    """Each row's `text_field` as a document, read in batches of rows (of `row_groups` only, if given).

    With `with_rows`, yields (row number in the file, document) pairs.
    """
    pq = input_files.parquet_module()
    import pyarrow.compute as pc  # pylint: disable=g-import-not-at-top
    bytes_before = stats.raw_bytes_read
    with input_file.open_raw() as raw:
        try:
            parquet_file = pq.ParquetFile(raw)
            metadata = parquet_file.metadata
            total = max(metadata.num_rows, 1)
            groups = range(metadata.num_row_groups) if row_groups is None else row_groups
            row = sum(metadata.row_group(g).num_rows for g in range(min(groups, default=0)))
            batches = parquet_file.iter_batches(_PARQUET_BATCH_ROWS, row_groups=groups, columns=[text_field])
            done = 0
            for batch in batches:
                column = batch.column(0)
                stats.text_bytes += int(pc.sum(pc.binary_length(column)).as_py() or 0)
                for text in column.to_pylist():
                    doc = _record_document(text, stats)
                    if doc:
                        yield (row, doc) if with_rows else doc
                    row += 1
                done += batch.num_rows
                stats.raw_bytes_read = bytes_before + input_file.size * done // total
        except (OSError, EOFError, ValueError) as e:  # pyarrow's ArrowInvalid is a ValueError
            stats.unreadable_ends.append({"path": input_file.path, "reason": str(e) or type(e).__name__})


def read_documents(files, stats=None, text_field="text",
                   keep_long_line_tail=False, count_tokens=None):
    """Yields every document of every file as a list of non-blank lines.

    With keep_long_line_tail False only the first piece of an over-long line
    is kept (the original recipe never uses more than max_seq_length tokens
    of one line); `count_tokens(text)`, if given, counts the tokens of each
    piece left out, into stats.long_line_tail_tokens.
    """
    stats = stats if stats is not None else ReadStats()
    for input_file in files:
        if input_file.kind == "parquet":
            yield from parquet_documents(input_file, stats, text_field)
        elif input_file.kind == "jsonl":
            yield from _jsonl_documents(input_file, stats, text_field)
        else:
            yield from _text_documents(input_file, stats, keep_long_line_tail, count_tokens)
