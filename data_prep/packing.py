"""Packs tokenized sentences into [CLS] A [SEP] B [SEP] examples.

DocumentPacker follows the original ELECTRA recipe (google-research/electra's
build_pretraining_dataset.py, ExampleBuilder), drawing from its random.Random in the same order as
the original does, so a seeded run is reproducible. StreamPacker is the
opt-in variant that keeps filling examples across document boundaries.

The recipe only looks at sentence lengths, so packers never copy tokens: a
sentence is a piece (start, length) of the block's flat id array, a segment
is a list of pieces, and ExampleBuffer.tokens gathers every example's
tokens with one NumPy index at the end.
"""

import itertools

import numpy as np

SINGLE_SEGMENT_PROB = 0.1
SHORT_TARGET_PROB = 0.05
MIN_SHORT_TARGET = 5
_NO_LIMIT = 100000

# Pieces standing for one [CLS] / [SEP] token. ExampleBuffer.tokens appends
# the two ids to the flat id array, where NumPy's negative indexing finds them.
CLS_PIECE = (-2, 1)
SEP_PIECE = (-1, 1)


def sentence_pieces(row_splits, first, last):
    """Pieces of lines first..last-1 of a block tokenized with `row_splits`."""
    return [(row_splits[i], row_splits[i + 1] - row_splits[i])
            for i in range(first, last)]


def _take(pieces, length, count):
    """Splits a segment of `length` tokens into its first `count` and the rest.

    Returns (kept pieces, kept length, rest pieces, rest length).
    """
    if length <= count:
        return pieces, length, [], 0
    kept, rest = [], []
    left = count
    for start, size in pieces:
        if left >= size:
            kept.append((start, size))
            left -= size
        elif left > 0:
            kept.append((start, left))
            rest.append((start + left, size - left))
            left = 0
        else:
            rest.append((start, size))
    return kept, count, rest, length - count


class ExampleBuffer:
    """Collects packed examples (as pieces) and gathers them into arrays."""

    def __init__(self, max_seq_length):
        self.max_seq_length = max_seq_length
        self._pieces = []
        self._lengths = []
        self._first_lengths = []

    def __len__(self):
        return len(self._lengths)

    def add(self, first, first_len, second, second_len):
        """Adds [CLS] first [SEP] (second [SEP]): lists of pieces and their lengths."""
        pieces = self._pieces
        pieces.append(CLS_PIECE)
        pieces += first
        pieces.append(SEP_PIECE)
        length = first_len + 2
        self._first_lengths.append(length)
        if second_len:
            pieces += second
            pieces.append(SEP_PIECE)
            length += second_len + 1
        self._lengths.append(length)

    def lengths(self):
        """Real tokens per example and the length of [CLS] A [SEP]."""
        return (np.asarray(self._lengths, np.int64),
                np.asarray(self._first_lengths, np.int64))

    def tokens(self, ids, cls_id, sep_id):
        """Every example's real tokens, one after another ([CLS] A [SEP] B [SEP]).

        `ids` is the flat id array the pieces point into.
        """
        source = np.concatenate([np.asarray(ids, np.int64), [cls_id, sep_id]])
        flat = np.fromiter(itertools.chain.from_iterable(self._pieces), np.int64,
                           2 * len(self._pieces))
        starts, counts = flat[0::2], flat[1::2]
        first_token = np.cumsum(counts) - counts
        return source[np.repeat(starts - first_token, counts) +
                      np.arange(counts.sum())]

    def to_arrays(self, ids, cls_id, sep_id, pad_id):
        """Returns input_ids, input_mask, segment_ids, each [n, max_seq_length]."""
        lengths, first_lengths = self.lengths()
        positions = np.arange(self.max_seq_length)[None, :]
        input_mask = (positions < lengths[:, None]).astype(np.int64)
        input_ids = np.full(input_mask.shape, pad_id, np.int64)
        input_ids[input_mask.astype(bool)] = self.tokens(ids, cls_id, sep_id)
        segment_ids = ((positions >= first_lengths[:, None]) &
                       (positions < lengths[:, None])).astype(np.int64)
        return input_ids, input_mask, segment_ids


class DocumentPacker:
    """The original recipe: an example never spans two documents.

    With `draw_first_target` the first example's target is drawn like every
    later one (a short target with probability 0.05), as when the packer
    continues from an earlier document: a packer made for one document then
    packs it as a packer of many would.
    """

    def __init__(self, buffer, rng, draw_first_target=False):
        self._out = buffer
        self._rng = rng
        self._max = buffer.max_seq_length
        self._sentences = []  # (pieces, length) of each pending sentence
        self._length = 0
        self.single_segment_draws = 0
        self.short_target_draws = 0
        self._target = self._next_target() if draw_first_target else self._max

    def add_document(self, sentences):
        """`sentences`: one piece per line of the document."""
        pending = self._sentences
        for piece in sentences:
            length = piece[1]
            # An empty line adds no piece: it would hide a [SEP] that
            # starts a segment in StreamPacker.
            pending.append(([piece] if length else [], length))
            self._length += length
            if self._length >= self._target:
                self._emit()
                pending = self._sentences
        if self._length:
            self._emit()

    def finish(self):
        """Nothing is pending between documents in this mode."""

    def _first_segment_target(self):
        if self._rng.random() < SINGLE_SEGMENT_PROB:
            self.single_segment_draws += 1
            return _NO_LIMIT
        return (self._target - 3) // 2

    def _split(self, first_target):
        # A sentence joins A while A is empty or it fits; a sentence that would
        # overflow A joins it half the time if B is still empty. Only lengths
        # decide, so a list's truth is its length's.
        first, second = [], []
        first_len = second_len = 0
        for pieces, length in self._sentences:
            if (not first_len or first_len + length < first_target or
                (not second_len and first_len < first_target and
                 self._rng.random() < 0.5)):
                first += pieces
                first_len += length
            else:
                second += pieces
                second_len += length
        return first, first_len, second, second_len

    def _next_target(self):
        if self._rng.random() < SHORT_TARGET_PROB:
            self.short_target_draws += 1
            return self._rng.randint(MIN_SHORT_TARGET, self._max)
        return self._max

    def _emit(self):
        first, first_len, second, second_len = self._split(
            self._first_segment_target())
        first, first_len = _take(first, first_len, self._max - 2)[:2]
        second, second_len = _take(second, second_len,
                                   max(0, self._max - first_len - 3))[:2]
        self._sentences, self._length = [], 0
        self._target = self._next_target()
        self._out.add(first, first_len, second, second_len)


class StreamPacker(DocumentPacker):
    """Fills every example: documents follow each other, joined by [SEP].

    Tokens that do not fit an example start the next one instead of being
    dropped, and a short target caps the example it was drawn for.
    """

    def add_document(self, sentences):
        for i, piece in enumerate(sentences):
            pieces = [piece] if piece[1] else []
            length = piece[1]
            if i == 0 and self._length:
                pieces.insert(0, SEP_PIECE)
                length += 1
            self._sentences.append((pieces, length))
            self._length += length
            while self._length >= self._target:
                self._emit()

    def finish(self):
        while self._length:
            self._emit()

    @staticmethod
    def _strip_separator(segment, length):
        if segment and segment[0] == SEP_PIECE:
            return segment[1:], length - 1
        return segment, length

    def _emit(self):
        limit = self._target
        first, first_len, second, second_len = self._split(
            self._first_segment_target())
        first, first_len = self._strip_separator(first, first_len)
        second, second_len = self._strip_separator(second, second_len)
        first, first_len, first_rest, first_rest_len = _take(
            first, first_len, limit - 2)
        second, second_len, second_rest, second_rest_len = _take(
            second, second_len, max(0, limit - first_len - 3))
        leftover_len = first_rest_len + second_rest_len
        self._sentences = ([(first_rest + second_rest, leftover_len)]
                           if leftover_len else [])
        self._length = leftover_len
        self._target = self._next_target()
        self._out.add(first, first_len, second, second_len)
