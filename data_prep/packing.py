"""Packs tokenized sentences into [CLS] A [SEP] B [SEP] examples.

DocumentPacker follows the original ELECTRA recipe (see ELECTRA_SPEC.md,
"Pre-training data"), drawing from its random.Random in the same order as
the original does, so a seeded run is reproducible. StreamPacker is the
opt-in variant that keeps filling examples across document boundaries.
"""

import numpy as np

SINGLE_SEGMENT_PROB = 0.1
SHORT_TARGET_PROB = 0.05
MIN_SHORT_TARGET = 5
_NO_LIMIT = 100000


class ExampleBuffer:
    """Collects packed examples and turns them into padded int64 arrays."""

    def __init__(self, max_seq_length, cls_id, sep_id):
        self.max_seq_length = max_seq_length
        self._cls, self._sep = cls_id, sep_id
        self._flat = []
        self._lengths = []
        self._first_lengths = []

    def __len__(self):
        return len(self._lengths)

    def add(self, first, second):
        flat = self._flat
        flat.append(self._cls)
        flat.extend(first)
        flat.append(self._sep)
        length = len(first) + 2
        self._first_lengths.append(length)
        if second:
            flat.extend(second)
            flat.append(self._sep)
            length += len(second) + 1
        self._lengths.append(length)

    def to_arrays(self, pad_id):
        """Returns input_ids, input_mask, segment_ids, each [n, max_seq_length]."""
        n, width = len(self._lengths), self.max_seq_length
        positions = np.arange(width)[None, :]
        lengths = np.asarray(self._lengths, np.int64)[:, None]
        input_mask = (positions < lengths).astype(np.int64)
        input_ids = np.full([n, width], pad_id, np.int64)
        input_ids[input_mask.astype(bool)] = np.array(self._flat, np.int32)
        first = np.asarray(self._first_lengths, np.int64)[:, None]
        segment_ids = ((positions >= first) & (positions < lengths)).astype(np.int64)
        return input_ids, input_mask, segment_ids


class DocumentPacker:
    """The original recipe: an example never spans two documents."""

    def __init__(self, buffer, rng):
        self._out = buffer
        self._rng = rng
        self._max = buffer.max_seq_length
        self._target = self._max
        self._sentences = []
        self._length = 0
        self.single_segment_draws = 0
        self.short_target_draws = 0

    def add_document(self, sentences):
        for sentence in sentences:
            self._sentences.append(sentence)
            self._length += len(sentence)
            if self._length >= self._target:
                self._emit()
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
        # overflow A joins it half the time if B is still empty.
        first, second = [], []
        for sentence in self._sentences:
            if (not first or len(first) + len(sentence) < first_target or
                (not second and len(first) < first_target and
                 self._rng.random() < 0.5)):
                first += sentence
            else:
                second += sentence
        return first, second

    def _next_target(self):
        if self._rng.random() < SHORT_TARGET_PROB:
            self.short_target_draws += 1
            return self._rng.randint(MIN_SHORT_TARGET, self._max)
        return self._max

    def _emit(self):
        first, second = self._split(self._first_segment_target())
        first = first[:self._max - 2]
        second = second[:max(0, self._max - len(first) - 3)]
        self._sentences, self._length = [], 0
        self._target = self._next_target()
        self._out.add(first, second)


class StreamPacker(DocumentPacker):
    """Fills every example: documents follow each other, joined by [SEP].

    Tokens that do not fit an example start the next one instead of being
    dropped, and a short target caps the example it was drawn for.
    """

    def __init__(self, buffer, rng, sep_id):
        super().__init__(buffer, rng)
        self._sep = sep_id

    def add_document(self, sentences):
        for i, sentence in enumerate(sentences):
            if i == 0 and self._length:
                sentence = [self._sep] + sentence
            self._sentences.append(sentence)
            self._length += len(sentence)
            while self._length >= self._target:
                self._emit()

    def finish(self):
        while self._length:
            self._emit()

    def _strip_separator(self, segment):
        return segment[1:] if segment and segment[0] == self._sep else segment

    def _emit(self):
        limit = self._target
        first, second = self._split(self._first_segment_target())
        first = self._strip_separator(first)
        second = self._strip_separator(second)
        kept_first = first[:limit - 2]
        room = max(0, limit - len(kept_first) - 3)
        leftover = first[limit - 2:] + second[room:]
        self._sentences = [leftover] if leftover else []
        self._length = len(leftover)
        self._target = self._next_target()
        self._out.add(kept_first, second[:room])
