"""BERT's text normalisation as tensor ops, shared by data preparation and serving.

tf-text's own lower-casing is ICU case folding plus NFKC (it maps "ß" to
"ss"), which BERT does not do; so lower-casing, NFD and accent stripping are
done here the way BERT's BasicTokenizer does them, and FastBertTokenizer only
splits and applies WordPiece.
"""

import tensorflow as tf
import tensorflow_text as tf_text


def bert_normalize(lines, lowercase):
    """BERT's lower-casing and accent stripping on a batch of strings."""
    if not lowercase:
        return lines
    lines = tf.strings.lower(lines, encoding="utf-8")
    lines = tf_text.normalize_utf8(lines, "NFD")
    return tf.strings.regex_replace(lines, r"\p{Mn}", "")
