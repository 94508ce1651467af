"""`ElectraPreprocessor`: one or two batches of raw strings -> input_ids, input_mask, segment_ids.

The project's one tokenizer (electra_tf.text.tokenization), then the
original's layout and truncation (google-research/electra
`finetune/classification/classification_tasks.py`): `[CLS] a [SEP]` or
`[CLS] a [SEP] b [SEP]`, segment 1 for b and its [SEP]; a pair longer than
the sequence loses tokens from the end of the longer text first (ties: from
b), a single text is cut at max_seq_length - 2. All of it is TensorFlow
ops, so the exported SavedModel tokenizes in its graph.
"""

import keras
import tensorflow as tf
import tensorflow_text as tf_text

from electra_tf.text.tokenization import bert_preprocess, fast_bert_tokenizer
from electra_tf.text.vocab import RESERVED_TOKENS, Vocab

FEATURES = ("input_ids", "input_mask", "segment_ids")


def _as_strings(texts):
    if isinstance(texts, tf.Tensor | tf.RaggedTensor):
        return texts
    return tf.convert_to_tensor(texts, tf.string)


@keras.saving.register_keras_serializable(package="electra_tf")
class ElectraPreprocessor(keras.layers.Layer):
    """Tokenizes text (or text pairs) into the int32 features the ELECTRA encoder takes.

    Called on a batch of strings, or a tuple of two batches (text_a, text_b),
    it returns a dict of int32 `[batch, sequence_length]` `input_ids`,
    `input_mask` and `segment_ids`. Called with labels too (as `fit`'s
    tf.data pipeline does), it returns `(features, labels[, sample_weight])`,
    as keras-hub's preprocessors do.

    Args:
        vocabulary: the WordPiece tokens in id order, or the path of a vocab.txt.
        lowercase: lower-case and strip accents first (BERT uncased); must match pre-training.
        sequence_length: tokens per example, [CLS] and [SEP] included.

    Example:

    >>> vocab = os.path.join(tempfile.mkdtemp(), "vocab.txt")
    >>> words = ["a", "gem", "of", "film", "dull", "cat", "sat", "it", "fine", "."]
    >>> _ = open(vocab, "w").write("\\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + words))
    >>> preprocessor = ElectraPreprocessor(vocab, sequence_length=16)
    >>> features = preprocessor(["a fine film .", "dull"])
    >>> features["input_ids"].shape
    TensorShape([2, 16])
    >>> pair = preprocessor((["a cat sat ."], ["it sat ."]))
    >>> preprocessor.tokenize_words([["a", "cat."], ["\\x00"]]).to_list()  # word by word; no piece -> [UNK]
    [[[5], [10, 14]], [[1]]]
    """

    def __init__(self, vocabulary, lowercase=True, sequence_length=128, **kwargs):
        super().__init__(**kwargs)
        # Strings in, no Keras tensor conversion, nothing to build (as keras-hub's preprocessing layers).
        self._convert_input_args = False
        self._allow_non_tensor_positional_args = True
        if isinstance(vocabulary, str):
            vocabulary = Vocab(vocabulary).tokens
        self.vocabulary = list(vocabulary)
        ids = {token: i for i, token in enumerate(self.vocabulary)}
        missing = [t for t in RESERVED_TOKENS if t not in ids]
        if missing:
            raise ValueError(f"the vocabulary lacks {', '.join(missing)}")
        if sequence_length < 3:
            raise ValueError(f"sequence_length must hold [CLS] and two [SEP], got {sequence_length}")
        self.lowercase = lowercase
        self.sequence_length = sequence_length
        self.pad_id, self.cls_id, self.sep_id = ids["[PAD]"], ids["[CLS]"], ids["[SEP]"]
        self.unk_id = ids["[UNK]"]
        self.tokenizer = fast_bert_tokenizer(self.vocabulary)
        # What the original's _truncate_seq_pair does (pop from the longer, ties from b) is round-robin
        # allocation with a first: checked against that loop in tests/test_finetuning_data.py.
        self._pair_trimmer = tf_text.RoundRobinTrimmer(max_seq_length=sequence_length - 3)
        self.built = True

    def tokenize(self, texts):
        """A batch of strings -> ragged int32 WordPiece ids (no [CLS]/[SEP])."""
        return self.tokenizer.tokenize(bert_preprocess(_as_strings(texts), self.lowercase))

    def tokenize_words(self, words, offsets=False):
        """Words -> their WordPiece ids, word by word: ragged int32 [batch, (words), (pieces)].

        `words` is a ragged string tensor [batch, (words)] (or a list of lists
        of strings). A word that yields no piece (only deleted characters)
        becomes [UNK], so every word keeps a first piece to carry its tag.
        With `offsets`, also each piece's start and end byte in its word:
        where cleaning changed the word's length (accents stripped, control
        characters deleted) no piece can be placed, and each spans the word.
        """
        if not isinstance(words, tf.RaggedTensor):
            words = tf.ragged.constant(words, dtype=tf.string, ragged_rank=1) if len(words) else \
                tf.RaggedTensor.from_row_lengths(tf.zeros([0], tf.string), tf.zeros([0], tf.int64))
        cleaned = bert_preprocess(_as_strings(words.flat_values), self.lowercase)
        pieces, starts, ends = self.tokenizer.tokenize_with_offsets(cleaned)
        lengths = pieces.row_lengths()
        word_bytes = tf.strings.length(words.flat_values)
        placed = tf.equal(tf.strings.length(cleaned), word_bytes)

        def one_per_word(values):
            return tf.RaggedTensor.from_row_lengths(values, tf.ones_like(lengths))

        def keep_first(ragged, fallback):  # each word's pieces, or its fallback when it has none
            both = tf.concat([ragged, one_per_word(fallback)], axis=1)
            keep = tf.ragged.range(both.row_lengths()) < tf.expand_dims(tf.maximum(lengths, 1), 1)
            return tf.RaggedTensor.from_row_splits(tf.ragged.boolean_mask(both, keep), words.row_splits)

        unknown = tf.fill(tf.shape(lengths), tf.constant(self.unk_id, pieces.dtype))
        pieces = keep_first(pieces, unknown)
        if not offsets:
            return pieces
        word_bytes = tf.cast(word_bytes, starts.dtype)
        placed = tf.gather(placed, starts.value_rowids())
        starts = starts.with_flat_values(tf.where(placed, starts.flat_values, 0))
        ends = ends.with_flat_values(tf.where(placed, ends.flat_values, tf.gather(word_bytes, ends.value_rowids())))
        return pieces, keep_first(starts, tf.zeros_like(word_bytes)), keep_first(ends, word_bytes)

    def pack(self, segments):
        """One or two ragged id batches -> the padded, truncated features dict."""
        if len(segments) == 1:
            segments = [segments[0][:, : self.sequence_length - 2]]
        else:
            segments = self._pair_trimmer.trim(segments)
        ids, segment_ids = tf_text.combine_segments(segments, start_of_sequence_id=self.cls_id,
                                                    end_of_segment_id=self.sep_id)
        input_ids, input_mask = tf_text.pad_model_inputs(ids, self.sequence_length, pad_value=self.pad_id)
        segment_ids, _ = tf_text.pad_model_inputs(segment_ids, self.sequence_length)
        return {"input_ids": tf.cast(input_ids, tf.int32), "input_mask": tf.cast(input_mask, tf.int32),
                "segment_ids": tf.cast(segment_ids, tf.int32)}

    def call(self, x, y=None, sample_weight=None):
        texts = list(x) if isinstance(x, tuple | list) and len(x) in (1, 2) and not isinstance(x[0], str) else [x]
        features = self.pack([self.tokenize(t) for t in texts])
        return keras.utils.pack_x_y_sample_weight(features, y, sample_weight)

    def get_config(self):
        return {**super().get_config(), "vocabulary": self.vocabulary, "lowercase": self.lowercase,
                "sequence_length": self.sequence_length}
