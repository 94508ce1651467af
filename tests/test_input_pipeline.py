"""The tf.data reader: round trip, original-format records, sharding, errors."""

import collections
import json

import numpy as np
import pytest
import tensorflow as tf
from test_data_helpers import quick_vocab, write_demo_slice

from data_prep import block_processing, input_files
from data_prep import build_pretraining_dataset as builder
from electra_tf.data import format as data_format
from electra_tf.data import input_pipeline

SEQ = 32


def _original_format_example(ids_value, seq_length=SEQ):
    """A record written the way google-research/electra writes them."""
    length = 5 + ids_value % 20
    ids = [101] + [1000 + ids_value] * (length - 2) + [102]
    ids += [0] * (seq_length - length)
    mask = [1] * length + [0] * (seq_length - length)
    segments = [0] * seq_length

    def feature(values):
        return tf.train.Feature(int64_list=tf.train.Int64List(value=values))

    return tf.train.Example(features=tf.train.Features(feature={
        "input_ids": feature(ids), "input_mask": feature(mask),
        "segment_ids": feature(segments)})).SerializeToString()


def _write_shards(directory, num_files, per_file, seq_length=SEQ):
    directory.mkdir(exist_ok=True)
    paths = []
    for f in range(num_files):
        path = str(directory / f"pretrain_data.tfrecord-{f}-of-{num_files}")
        with tf.io.TFRecordWriter(path) as writer:
            for i in range(per_file):
                writer.write(_original_format_example(f * per_file + i,
                                                      seq_length))
        paths.append(path)
    return paths


def _example_keys(dataset):
    """Identifies each example by its second token (unique per example)."""
    keys = []
    for batch in dataset:
        keys.extend(batch["input_ids"][:, 1].numpy().tolist())
    return keys


def test_reads_original_format_records_as_int32_batches(tmp_path):
    _write_shards(tmp_path / "d", 3, 10)
    dataset = input_pipeline.make_pretraining_dataset(
        str(tmp_path / "d" / "*"), 4, SEQ, repeat=False)
    batches = list(dataset)
    assert len(batches) == 30 // 4  # drop_remainder
    for batch in batches:
        assert set(batch) == {"input_ids", "input_mask", "segment_ids"}
        for value in batch.values():
            assert value.dtype == tf.int32 and value.shape == (4, SEQ)
        assert (batch["input_ids"][:, 0].numpy() == 101).all()
    keys = _example_keys(input_pipeline.make_pretraining_dataset(
        str(tmp_path / "d" / "*"), 1, SEQ, repeat=False))
    assert sorted(keys) == [1000 + i for i in range(30)]
    assert data_format.read_dataset_info(str(tmp_path / "d")) == {}


def test_round_trip_from_the_builder(tmp_path):
    corpus = write_demo_slice(tmp_path / "corpus.txt", 60)
    vocab = quick_vocab(tmp_path / "vocab.txt",
                        open(corpus, encoding="utf-8").read())
    config = block_processing.PackingConfig(vocab, True, 64, False, 0)
    out = tmp_path / "out"
    builder.build(config, input_files.resolve_inputs([corpus]), str(out), 3,
                  1, show_progress=False)
    info = data_format.read_dataset_info(str(out))
    assert info == json.loads((out / "dataset_info.json").read_text())
    expected = collections.Counter()
    for record in tf.data.TFRecordDataset(
            sorted(str(p) for p in out.glob("pretrain_data*"))):
        features = tf.train.Example.FromString(record.numpy()).features.feature
        expected[tuple(features["input_ids"].int64_list.value)] += 1
    dataset = input_pipeline.make_pretraining_dataset(
        str(out / "pretrain_data*"), 1, 64, repeat=False, seed=3)
    got = collections.Counter()
    for batch in dataset:
        got[tuple(batch["input_ids"][0].numpy().tolist())] += 1
        mask = batch["input_mask"][0].numpy()
        assert mask.sum() == np.count_nonzero(batch["input_ids"][0].numpy())
    assert got == expected and sum(got.values()) == info["num_examples"]


def test_deterministic_order_for_a_seed(tmp_path):
    pattern = str(tmp_path / "d" / "*")
    _write_shards(tmp_path / "d", 4, 25)

    def order(seed):
        return _example_keys(input_pipeline.make_pretraining_dataset(
            pattern, 5, SEQ, seed=seed, deterministic=True, repeat=False,
            shuffle_buffer=50))

    assert order(1) == order(1)
    assert order(1) != order(2)
    assert sorted(order(1)) == sorted(order(2))


def test_accumulated_micro_batches_come_in_the_order_of_one_batch(tmp_path):
    """Micro-batches of 4 for updates of 8 hold, in order, the examples of batches of 8, also on resume."""
    pattern = str(tmp_path / "d" / "*")
    _write_shards(tmp_path / "d", 4, 25)

    def order(batch_size, skip_batches=0, batches_per_step=1):
        return _example_keys(input_pipeline.make_pretraining_dataset(
            pattern, batch_size, SEQ, seed=2, deterministic=True, shuffle_buffer=50,
            skip_batches=skip_batches, batches_per_step=batches_per_step).take(24 // batch_size))

    whole = order(8)
    assert order(4, batches_per_step=2) == whole and order(4) != whole
    # Resuming after 2 updates: skip 4 micro-batches, 2 batches of 8.
    assert order(4, skip_batches=4, batches_per_step=2)[:8] == order(8, skip_batches=2)[:8] == whole[16:24]


@pytest.mark.parametrize("num_files", [5, 1])
def test_two_pipelines_split_each_epoch_exactly(tmp_path, num_files):
    per_file = 40 // num_files
    _write_shards(tmp_path / "d", num_files, per_file)
    seen = []
    for pipeline_id in range(2):
        context = tf.distribute.InputContext(
            num_input_pipelines=2, input_pipeline_id=pipeline_id,
            num_replicas_in_sync=2)
        seen.append(_example_keys(input_pipeline.make_pretraining_dataset(
            [str(tmp_path / "d" / "*")], 1, SEQ, input_context=context,
            repeat=False, seed=7)))
    assert seen[0] and seen[1]
    assert not set(seen[0]) & set(seen[1])
    assert sorted(seen[0] + seen[1]) == [1000 + i for i in range(40)]


def test_sequence_length_mismatch_names_the_file(tmp_path):
    paths = _write_shards(tmp_path / "d", 2, 3, seq_length=48)
    with pytest.raises(ValueError, match="length 48 but seq_length is 32") as e:
        input_pipeline.make_pretraining_dataset(paths, 2, SEQ)
    assert paths[0] in str(e.value)


def test_missing_features_and_files_are_value_errors(tmp_path):
    path = str(tmp_path / "other.tfrecord")
    with tf.io.TFRecordWriter(path) as writer:
        writer.write(tf.train.Example().SerializeToString())
    with pytest.raises(ValueError, match="input_ids"):
        input_pipeline.make_pretraining_dataset(path, 2, SEQ)
    pattern = str(tmp_path / "nothing" / "*.tfrecord")
    with pytest.raises(ValueError, match="nothing"):
        input_pipeline.make_pretraining_dataset(pattern, 2, SEQ)


@pytest.mark.parametrize("damage", ["truncate", "garble"])
def test_corrupt_record_error_names_the_file(tmp_path, damage):
    paths = _write_shards(tmp_path / "d", 3, 40)
    data = bytearray(open(paths[1], "rb").read())
    # Inside a record: a file cut exactly between records is a valid file.
    middle = len(data) // 2 + 7
    if damage == "truncate":
        data = data[:middle]
    else:
        data[middle] ^= 0xFF
    with open(paths[1], "wb") as f:
        f.write(bytes(data))
    dataset = input_pipeline.make_pretraining_dataset(
        paths, 4, SEQ, repeat=False)
    with pytest.raises(tf.errors.OpError, match="corrupt or truncated") as e:
        for _ in dataset:
            pass
    assert paths[1] in str(e.value)


def _global_batches(pattern, global_batch, workers, replicas_per_worker, steps, **kwargs):
    """The first `steps` global batches as every replica's keys in replica order."""
    replicas = workers * replicas_per_worker
    per_worker = []
    for worker in range(workers):
        context = tf.distribute.InputContext(num_input_pipelines=workers, input_pipeline_id=worker,
                                             num_replicas_in_sync=replicas)
        dataset = input_pipeline.make_pretraining_dataset(
            pattern, global_batch // replicas, SEQ, input_context=context, seed=3, deterministic=True,
            shuffle_buffer=40, **kwargs)
        per_worker.append(_example_keys(dataset.take(steps * replicas_per_worker)))
    # Each worker's replicas take its consecutive batches: worker w holds the w-th slice of every global batch.
    share = global_batch // workers
    return [sum((keys[s * share:(s + 1) * share] for keys in per_worker), []) for s in range(steps)]


@pytest.mark.parametrize("workers,replicas_per_worker", [(1, 2), (2, 1), (2, 2), (4, 1)])
def test_global_batches_do_not_depend_on_the_topology(tmp_path, workers, replicas_per_worker):
    pattern = str(tmp_path / "d" / "*")
    _write_shards(tmp_path / "d", 4, 30)
    alone = _global_batches(pattern, 8, 1, 1, steps=20)
    assert _global_batches(pattern, 8, workers, replicas_per_worker, steps=20) == alone
    # Every batch takes 2 examples from each shard's stream, and batches differ.
    for batch in alone:
        assert sorted(collections.Counter((key - 1000) // 30 for key in batch).values()) == [2, 2, 2, 2]
    assert len({tuple(batch) for batch in alone}) == 20


def test_each_worker_reads_only_its_own_shards(tmp_path):
    pattern = str(tmp_path / "d" / "*")
    _write_shards(tmp_path / "d", 4, 30)
    files_read = []
    for worker in range(2):
        context = tf.distribute.InputContext(num_input_pipelines=2, input_pipeline_id=worker,
                                             num_replicas_in_sync=2)
        keys = _example_keys(input_pipeline.make_pretraining_dataset(
            pattern, 1, SEQ, input_context=context, seed=3, repeat=False))
        files_read.append({(key - 1000) // 30 for key in keys})
        assert sorted(keys) == [1000 + 30 * f + i for f in sorted(files_read[-1]) for i in range(30)]
    # A global batch of 2 makes 2 streams, shards {0, 2} and {1, 3}: one per worker.
    assert files_read == [{0, 2}, {1, 3}]


@pytest.mark.parametrize("workers", [1, 2])
def test_skipping_batches_resumes_the_same_order(tmp_path, workers):
    pattern = str(tmp_path / "d" / "*")
    _write_shards(tmp_path / "d", 4, 30)
    full = _global_batches(pattern, 8, workers, 1, steps=12)
    assert _global_batches(pattern, 8, workers, 1, steps=5, skip_batches=7) == full[7:]


def test_an_unshareable_split_still_partitions_the_data_and_warns(tmp_path, caplog):
    pattern = str(tmp_path / "d" / "*")
    _write_shards(tmp_path / "d", 3, 12)
    assert input_pipeline.stream_count(3, 8, 2) == 0
    assert input_pipeline.stream_count(4, 8, 2) == 4 and input_pipeline.stream_count(1000, 128, 4) == 8
    seen = []
    for worker in range(2):
        context = tf.distribute.InputContext(num_input_pipelines=2, input_pipeline_id=worker,
                                             num_replicas_in_sync=2)
        seen += _example_keys(input_pipeline.make_pretraining_dataset(
            pattern, 4, SEQ, input_context=context, repeat=False))
    assert sorted(seen) == [1000 + i for i in range(36)]
    assert "depends on the number of workers" in caplog.text
