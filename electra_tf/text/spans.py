"""Chunk-style tags (IOB1, IOB2/BIO, BIOES) as spans, and spans back as tags.

`span_labels` is the original's `get_span_labels`
(google-research/electra `finetune/tagging/tagging_utils.py`), so
entity-level scores match the paper's: B and S open a span, O closes one,
an I after O (IOB1) opens one, E does not close one, and a change of type
inside I tags does not split a span (the span takes the last tag's type).
"""

import re

_CHUNK_TAG = re.compile(r"^[BIES]-.+$")


def is_chunk_tag(tag):
    """Whether `tag` is O or a prefix B/I/E/S, a hyphen and a type."""
    return tag == "O" or bool(_CHUNK_TAG.match(tag))


def is_chunk_tag_set(tags):
    """Whether every tag is chunk-style and at least one is not O (then spans are scored, not tokens).

    Example:

    >>> is_chunk_tag_set(["B-NP", "I-NP", "O"]), is_chunk_tag_set(["NN", "VBZ"]), is_chunk_tag_set(["O"])
    (True, False, False)
    """
    tags = set(tags)
    return bool(tags - {"O"}) and all(is_chunk_tag(t) for t in tags)


def _prefix(tag):
    return None if tag == "O" else tag[0]


def _type(tag):
    return tag[2:]


def span_labels(tags):
    """The (start, end, type) spans of chunk-style `tags`, end inclusive, as the original reads them.

    Args:
        tags: a sentence's tags (IOB1, IOB2 or BIOES).

    Example:

    >>> span_labels(["B-NP", "I-NP", "O", "S-VP", "B-PP", "E-PP"])
    [(0, 1, 'NP'), (3, 3, 'VP'), (4, 5, 'PP')]
    >>> span_labels(["I-NP", "I-VP"])  # IOB1, and a type change inside I tags does not split
    [(0, 1, 'VP')]
    """
    spans = []
    last, start = "O", -1
    for i, tag in enumerate(tags):
        prefix = _prefix(tag)
        if (prefix in ("S", "B") or tag == "O") and last != "O":
            spans.append((start, i - 1, _type(last)))
        if prefix in ("B", "S") or last == "O":
            start = i
        last = tag
    if tags and tags[-1] != "O":
        spans.append((start, len(tags) - 1, _type(tags[-1])))
    return spans


def tags_of_spans(spans, length, scheme="BIOES"):
    """`length` tags that encode `spans` in `scheme` ("BIOES" or "BIO"), as the original's `get_tags`.

    Args:
        spans: (start, end, type) spans, end inclusive.
        length: the number of words.
        scheme: "BIOES" (single-word spans S, last words E) or "BIO" (IOB2).

    Example:

    >>> tags_of_spans([(0, 1, "NP"), (3, 3, "VP")], 4)
    ['B-NP', 'E-NP', 'O', 'S-VP']
    >>> tags_of_spans([(0, 1, "NP"), (3, 3, "VP")], 4, "BIO")
    ['B-NP', 'I-NP', 'O', 'B-VP']
    """
    tags = ["O"] * length
    for start, end, kind in spans:
        for i in range(start, end + 1):
            tags[i] = "I-" + kind
        if scheme == "BIOES":
            tags[end] = "E-" + kind
            tags[start] = ("S-" if start == end else "B-") + kind
        else:
            tags[start] = "B-" + kind
    return tags


def to_bioes(tags):
    """Chunk-style tags in any scheme re-encoded as BIOES (what the original trains chunking on).

    Example:

    >>> to_bioes(["B-NP", "I-NP", "B-VP", "O"])
    ['B-NP', 'E-NP', 'S-VP', 'O']
    """
    return tags_of_spans(span_labels(tags), len(tags), "BIOES")


def iob2_tensor(tag_ids, kept, tags):
    """Predicted tags re-written in IOB2 as TensorFlow ops: `tags_of_spans(span_labels(...), n, "BIO")` in a graph.

    The exported chunk tagger's answer in the scheme its run writes: the
    spans `span_labels` reads (B and S open one, O closes one, I or E after
    O opens one, a span takes its last tag's type), each written B-, I-....

    Args:
        tag_ids: int [batch, words] indices into `tags`.
        kept: bool [batch, words], False past a sentence's tagged words (those give "").
        tags: the tag names (a Python list).

    Example:

    >>> tags = ["O", "B-NP", "E-NP", "S-VP", "I-NP"]
    >>> kept = tf.constant([[True] * 4, [True, True, False, False]])
    >>> out = iob2_tensor(tf.constant([[1, 2, 3, 0], [4, 3, 0, 0]]), kept, tags)
    >>> out.numpy().tolist()
    [[b'B-NP', b'I-NP', b'B-VP', b'O'], [b'B-NP', b'B-VP', b'', b'']]
    """
    import tensorflow as tf  # here, not at the top: reading tagging files (run_finetuning's flags) needs no TF

    tag_ids = tf.convert_to_tensor(tag_ids)
    is_outside = tf.gather(tf.constant([t == "O" for t in tags]), tag_ids) | ~kept
    after_outside = tf.concat([tf.ones_like(is_outside[:, :1]), is_outside[:, :-1]], axis=1)
    opens = ~is_outside & (tf.gather(tf.constant([_prefix(t) in ("B", "S") for t in tags]), tag_ids) | after_outside)
    # Number the spans (and each outside word) along the batch; every span's type is its last word's.
    segment = tf.reshape(tf.cumsum(tf.cast(tf.reshape(opens | is_outside, [-1]), tf.int32)), tf.shape(tag_ids))
    index = tf.reshape(tf.range(tf.size(tag_ids)), tf.shape(tag_ids))
    last = tf.math.unsorted_segment_max(index, segment, tf.size(tag_ids) + 1)
    kind = tf.gather(tf.reshape(tf.gather(tf.constant([_type(t) for t in tags]), tag_ids), [-1]),
                     tf.maximum(tf.gather(last, segment), 0))
    inside = tf.strings.join([tf.where(opens, "B-", "I-"), kind])
    return tf.where(is_outside, tf.where(kept, "O", ""), inside)
