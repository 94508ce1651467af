"""Example serialization: the bytes protobuf itself would write."""

import numpy as np
import tensorflow as tf

from data_prep import example_encoding


def _proto_bytes(ids, mask, segments):
    feature = {name: tf.train.Feature(int64_list=tf.train.Int64List(
        value=values.tolist())) for name, values in (
            ("input_ids", ids), ("input_mask", mask), ("segment_ids", segments))}
    example = tf.train.Example(features=tf.train.Features(feature=feature))
    return example.SerializeToString(deterministic=True)


def _rows(lengths, first_lengths, max_len, tokens, pad):
    positions = np.arange(max_len)
    ends = np.cumsum(lengths)
    for length, first, end in zip(lengths, first_lengths, ends):
        ids = np.full(max_len, pad)
        ids[:length] = tokens[end - length:end]
        mask = (positions < length).astype(int)
        segments = ((positions >= first) & (positions < length)).astype(int)
        yield ids, mask, segments


def test_records_are_protobufs_own_bytes():
    rng = np.random.default_rng(0)
    for max_len, pad, vocab in ((128, 0, 30522), (16, 3, 100), (300, 7, 2**21 + 5)):
        lengths = rng.integers(2, max_len + 1, size=200)
        lengths[:3] = (2, max_len, max_len)
        first_lengths = np.array([rng.integers(2, n + 1) for n in lengths])
        first_lengths[1] = lengths[1]  # a single-segment example
        # Ids of every varint width up to the vocab's, 0 included.
        tokens = rng.integers(0, vocab, size=int(lengths.sum()))
        tokens[:4] = (0, 127, 128, vocab - 1)
        serializer = example_encoding.ExampleSerializer(max_len, pad)
        records = serializer.serialize(tokens, lengths, first_lengths)
        expected = [_proto_bytes(*row) for row in
                    _rows(lengths, first_lengths, max_len, tokens, pad)]
        assert records == expected


def test_no_examples_no_records():
    serializer = example_encoding.ExampleSerializer(128, 0)
    assert serializer.serialize(np.zeros(0, np.int64), [], []) == []
