"""BERT uncased tokenization with tf-text, matching BERT's reference tokenizer.

tf-text's own lower-casing is ICU case folding plus NFKC (it maps "ß" to
"ss", "ς" to "σ", "km²" to "km2"), which BERT does not do. So lower-casing,
NFD and accent stripping are done here the way BERT does them, and
FastWordpieceTokenizer only splits on whitespace, punctuation and CJK and
applies WordPiece.
"""

import numpy as np
import tensorflow as tf
import tensorflow_text as tf_text

# What BERT's cleanup deletes: control characters (Cc) other than the tab,
# newline and carriage return it turns into spaces, format characters (Cf:
# zero-width space, soft hyphen, BOM) and U+FFFD. The tokenizer would
# instead treat some of them as word breaks. The three whitespace controls
# are left in place: the tokenizer splits on them as on a space.
_DELETED = r"\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\p{Cf}\x{FFFD}"


def bert_preprocess(lines, lowercase):
    """Everything BERT does to text before splitting it: cleanup, then
    lower-casing, NFD and stripping accents (Mn), as tensor ops on a batch.

    Deleting after NFD instead of before gives the same text, so one regex
    pass does both deletions: lower-casing and NFD leave the deleted
    characters alone and never produce one.
    """
    if not lowercase:
        return tf.strings.regex_replace(lines, f"[{_DELETED}]", "")
    lines = tf.strings.lower(lines, encoding="utf-8")
    lines = tf_text.normalize_utf8(lines, "NFD")
    return tf.strings.regex_replace(lines, f"[{_DELETED}\\p{{Mn}}]", "")


def fast_bert_tokenizer(vocab_tokens):
    """tf-text's splitter + WordPiece, to be fed text that went through bert_preprocess.

    The one tokenizer of the project: data preparation and the exported
    SavedModel's serve_text both use it, so serving sees the ids training saw.
    FastWordpieceTokenizer rather than FastBertTokenizer: the latter only
    adds a normalizer that, without lower-casing, deletes what
    bert_preprocess already deleted and maps whitespace to spaces, which
    splits the same; it cost ~7% of tokenization.
    """
    return tf_text.FastWordpieceTokenizer(
        list(vocab_tokens),
        token_out_type=tf.int32,
        unknown_token="[UNK]",
        no_pretokenization=False,
        support_detokenization=False)


class WordpieceTokenizer:
    """Turns a batch of lines into WordPiece ids (one list per line)."""

    def __init__(self, vocab_tokens, lowercase=True):
        self._lowercase = lowercase
        self._wordpiece = fast_bert_tokenizer(vocab_tokens)
        self._tokenize_batch = tf.function(
            self._tokenize_graph,
            input_signature=[tf.TensorSpec([None], tf.string)], autograph=False)

    def _tokenize_graph(self, lines):
        ragged = self._wordpiece.tokenize(bert_preprocess(lines, self._lowercase))
        return ragged.flat_values, ragged.row_splits

    def tokenize(self, lines):
        """Returns (ids, row_splits): line i has ids[row_splits[i]:row_splits[i+1]]."""
        if not lines:
            return np.zeros([0], np.int32), np.zeros([1], np.int64)
        ids, splits = self._tokenize_batch(tf.constant(lines, tf.string))
        return ids.numpy(), splits.numpy()

    def tokenize_to_lists(self, lines):
        ids, splits = self.tokenize(lines)
        ids = ids.tolist()
        return [ids[a:b] for a, b in zip(splits[:-1], splits[1:])]
