"""Questions and contexts -> windows of `[CLS] question [SEP] context piece window [SEP]`.

As the original (google-research/electra `finetune/qa/qa_tasks.py`): the
question's word pieces cut to `max_query_length`; the context tokenized
word by word (so every piece knows its word); windows of
`max_seq_length - len(question) - 3` pieces starting every `doc_stride`
pieces until one reaches the end; each piece scored "max context" in the
window where min(left, right context) + 0.01 x window length is highest.
For training, the answer's words become a piece span, tightened to the
pieces of the answer text when they match exactly (a year inside
"(1895-1943)."); a window that does not hold the whole span (and every
window of an unanswerable question) points at [CLS], and `is_impossible`
is the question's flag.
"""

import dataclasses

import numpy as np


@dataclasses.dataclass
class Windows:
    """The windows of a batch of questions.

    `features`: int32 [n, sequence] input_ids, input_mask, segment_ids.
    `example`: [n] the question each window belongs to. `word`: [n, sequence]
    the context word of each position (-1 outside the context).
    `max_context`: [n, sequence] whether this window is the position's best.
    Training labels: `start_positions`, `end_positions` [n], `is_impossible` [n].
    """

    features: dict
    example: np.ndarray
    word: np.ndarray
    max_context: np.ndarray
    start_positions: np.ndarray = None
    end_positions: np.ndarray = None
    is_impossible: np.ndarray = None

    def __len__(self):
        return len(self.example)


def _improve_span(pieces, start, end, answer_pieces):
    """The first sub-span of [start, end] whose pieces are exactly the answer's, else [start, end]."""
    for new_start in range(start, end + 1):
        for new_end in range(end, new_start - 1, -1):
            if pieces[new_start:new_end + 1] == answer_pieces:
                return new_start, new_end
    return start, end


def window_starts(length, room, stride):
    """Where the windows over `length` pieces start, each holding at most `room` pieces.

    Example:

    >>> window_starts(10, 4, 3), window_starts(3, 4, 3)
    ([0, 3, 6], [0])
    """
    starts, start = [], 0
    while True:
        starts.append(start)
        if start + room >= length:
            return starts
        start += min(room, stride)


def _max_context_window(starts, room, length):
    """For each piece, the window (index into `starts`) where it has the most context."""
    best = np.zeros([length], np.int64)
    best_score = np.full([length], -np.inf)
    for w, start in enumerate(starts):
        end = min(start + room, length)
        positions = np.arange(start, end)
        score = np.minimum(positions - start, end - 1 - positions) + 0.01 * (end - start)
        better = score > best_score[start:end]
        best[start:end][better] = w
        best_score[start:end][better] = score[better]
    return best


def make_windows(examples, preprocessor, max_query_length, doc_stride, training):
    """The `Windows` of `QAExample`s (training: with the answer span labels).

    Args:
        examples: `QAExample`s (electra_tf.finetuning.qa.squad).
        preprocessor: the `ElectraPreprocessor` (tokenizer, sequence length, special ids).
        max_query_length: question pieces kept.
        doc_stride: pieces between window starts.
        training: compute the answer labels.

    Example:

    >>> vocab = os.path.join(tempfile.mkdtemp(), "vocab.txt")
    >>> words = ["who", "sat", "?", "the", "cat", "on", "mat"]
    >>> _ = open(vocab, "w").write("\\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + words))
    >>> from electra_tf.finetuning.qa.squad import make_example
    >>> example = make_example(0, "q", "who sat?", "the cat sat on the mat", ["the cat"], answer_start=0)
    >>> windows = make_windows([example], ElectraPreprocessor(vocab, sequence_length=10), 4, 2, training=True)
    >>> len(windows), windows.start_positions.tolist(), windows.end_positions.tolist()
    (2, [5, 0], [6, 0])
    """
    p = preprocessor
    sequence = p.sequence_length
    questions = [q[:max_query_length] for q in p.tokenize([e.question for e in examples]).to_list()] \
        if examples else []
    context_pieces = p.tokenize_words([list(e.words) for e in examples]).to_list() if examples else []
    answers = (p.tokenize([e.answer_text for e in examples]).to_list() if training and examples else None)
    rows = {"input_ids": [], "segment_ids": [], "example": [], "word": [], "max_context": [], "start": [], "end": []}
    for i, example in enumerate(examples):
        query = questions[i]
        pieces, piece_word = [], []
        first_piece = []
        for w, word_pieces in enumerate(context_pieces[i]):
            first_piece.append(len(pieces))
            pieces += word_pieces
            piece_word += [w] * len(word_pieces)
        span = None
        if training and not example.is_impossible and example.start_word >= 0:
            start = first_piece[example.start_word]
            end = (first_piece[example.end_word + 1] - 1 if example.end_word + 1 < len(first_piece)
                   else len(pieces) - 1)
            span = _improve_span(pieces, start, end, answers[i])
        room = sequence - len(query) - 3
        starts = window_starts(len(pieces), room, doc_stride)
        best_window = _max_context_window(starts, room, len(pieces))
        offset = len(query) + 2
        for w, start in enumerate(starts):
            end = min(start + room, len(pieces))
            ids = [p.cls_id] + query + [p.sep_id] + pieces[start:end] + [p.sep_id]
            segments = [0] * offset + [1] * (end - start + 1)
            word = np.full([sequence], -1, np.int32)
            word[offset:offset + end - start] = piece_word[start:end]
            max_context = np.zeros([sequence], bool)
            max_context[offset:offset + end - start] = best_window[start:end] == w
            label = (0, 0)
            if span is not None and start <= span[0] and span[1] < end:
                label = (span[0] - start + offset, span[1] - start + offset)
            rows["input_ids"].append(ids)
            rows["segment_ids"].append(segments)
            rows["example"].append(i)
            rows["word"].append(word)
            rows["max_context"].append(max_context)
            rows["start"].append(label[0])
            rows["end"].append(label[1])
    n = len(rows["example"])
    input_ids = np.full([n, sequence], p.pad_id, np.int32)
    segment_ids = np.zeros([n, sequence], np.int32)
    input_mask = np.zeros([n, sequence], np.int32)
    for r, (ids, segments) in enumerate(zip(rows["input_ids"], rows["segment_ids"])):
        input_ids[r, :len(ids)] = ids
        segment_ids[r, :len(ids)] = segments
        input_mask[r, :len(ids)] = 1
    windows = Windows({"input_ids": input_ids, "input_mask": input_mask, "segment_ids": segment_ids},
                      np.array(rows["example"], np.int32), np.array(rows["word"], np.int32).reshape(n, sequence),
                      np.array(rows["max_context"], bool).reshape(n, sequence))
    if training:
        windows.start_positions = np.array(rows["start"], np.int32)
        windows.end_positions = np.array(rows["end"], np.int32)
        windows.is_impossible = np.array([examples[i].is_impossible for i in rows["example"]], np.float32)
    return windows
