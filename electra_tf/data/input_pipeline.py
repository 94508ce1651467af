"""tf.data reader for packed pre-training TFRecords.

Reads shards made by build_pretraining_dataset (the corpus tools) or by the original
google-research/electra script (same features: int64 input_ids, input_mask,
segment_ids of length max_seq_length) and yields int32 batches.
"""

import math

import tensorflow as tf
from absl import logging

from electra_tf.data.format import FEATURE_NAMES

# Every TFRecord costs 16 framing bytes besides its payload: length (8),
# length CRC (4), data CRC (4).
_RECORD_OVERHEAD_BYTES = 16


def _list_files(file_pattern):
    if isinstance(file_pattern, (list, tuple)):
        patterns = list(file_pattern)
    else:
        patterns = str(file_pattern).split(",")
    files = []
    for pattern in (p.strip() for p in patterns):
        if pattern:
            files.extend(f for f in sorted(tf.io.gfile.glob(pattern))
                         if f not in files)
    if not files:
        raise ValueError(f"no pre-training data files match {file_pattern!r}")
    return files


def _first_record(path):
    try:
        for record in tf.data.TFRecordDataset(path).take(1):
            return record.numpy()
    except tf.errors.DataLossError as e:
        raise ValueError(f"corrupt TFRecord file {path}: {e.message}") from None
    return None


def _check_record(path, record, seq_length):
    """Raises ValueError naming `path` unless the record fits `seq_length`."""
    try:
        features = tf.train.Example.FromString(record).features.feature
    except Exception:  # pylint: disable=broad-except
        raise ValueError(f"{path}: first record is not a tf.train.Example") from None
    for name in FEATURE_NAMES:
        if name not in features or features[name].WhichOneof("kind") != "int64_list":
            raise ValueError(
                f"{path}: records need int64 features {', '.join(FEATURE_NAMES)}; "
                f"found {sorted(features)}")
        length = len(features[name].int64_list.value)
        if length != seq_length:
            raise ValueError(
                f"{path}: {name} has length {length} but seq_length is "
                f"{seq_length}; rebuild the data with --max_seq_length {seq_length}"
                " or train with the data's sequence length")


def _validate_first_record(files, seq_length):
    for path in files:
        record = _first_record(path)
        if record is not None:
            _check_record(path, record, seq_length)
            return
    raise ValueError(f"pre-training data files {files[:3]}... hold no records")


def _records_checked_whole(path, size):
    """Records of one file; fails naming the file if it is corrupt or truncated.

    TFRecordDataset's own DataLossError does not say which file it came from.
    So read errors are swallowed here, and once the file ends the bytes the
    good records account for must equal the file size, or an error naming
    the file is raised.
    """
    records = tf.data.TFRecordDataset(path).ignore_errors()
    flagged = records.map(lambda r: (r, False)).concatenate(
        tf.data.Dataset.from_tensors((tf.constant(b""), True)))

    def count_bytes(total, element):
        record, is_end = element
        total += tf.where(is_end, tf.constant(0, tf.int64),
                          tf.cast(tf.strings.length(record), tf.int64) +
                          _RECORD_OVERHEAD_BYTES)
        return total, (record, is_end, total)

    def check_at_end(record, is_end, total):
        ok = tf.logical_or(tf.logical_not(is_end), tf.equal(total, tf.cast(size, tf.int64)))
        with tf.control_dependencies([tf.debugging.Assert(
            ok, ["corrupt or truncated TFRecord file", path,
                 "- only the first", total, "of", size, "bytes hold valid records"])]):
            return tf.identity(record), is_end

    return (flagged.scan(tf.constant(0, tf.int64), count_bytes)
            .map(check_at_end)
            .filter(lambda record, is_end: tf.logical_not(is_end))
            .map(lambda record, is_end: record))


def _parse_batch(serialized, seq_length):
    spec = {name: tf.io.FixedLenFeature([seq_length], tf.int64)
            for name in FEATURE_NAMES}
    parsed = tf.io.parse_example(serialized, spec)
    return {name: tf.cast(parsed[name], tf.int32) for name in FEATURE_NAMES}


def stream_count(num_files, micro_batch, num_pipelines):
    """Streams the data is split into, or 0 when the pipelines cannot share them evenly.

    Stream i is the shards i, i+S, i+2S, ...; every (micro-)batch takes
    micro_batch/S consecutive examples from each stream, in stream order.
    S = gcd(micro_batch, num_files) depends on neither replicas nor workers,
    so neither does any batch; each pipeline owns S/num_pipelines whole
    streams, so no shard is read by two pipelines.
    """
    streams = math.gcd(micro_batch, num_files)
    return streams if streams % num_pipelines == 0 else 0


def _records(files, sizes, *, shuffle, seed, repeat, shuffle_buffer, deterministic):
    """Records of some shards (1-D tensors of paths and byte sizes), shuffled with `seed`."""
    dataset = tf.data.Dataset.from_tensor_slices((files, sizes))
    num_files = int(files.shape[0])
    if shuffle:
        dataset = dataset.shuffle(num_files, seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.interleave(_records_checked_whole, cycle_length=min(num_files, 16),
                                 num_parallel_calls=tf.data.AUTOTUNE, deterministic=deterministic)
    if repeat:
        dataset = dataset.repeat()
    if shuffle:
        dataset = dataset.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    return dataset


def _split_between_pipelines(files, sizes, num_pipelines, pipeline_id, **kwargs):
    """The fallback split: whole files per pipeline, or every n-th record when files are fewer."""
    if len(files) >= num_pipelines:
        return _records(tf.constant(files[pipeline_id::num_pipelines]),
                        tf.constant(sizes[pipeline_id::num_pipelines], tf.int64), **kwargs)
    # Taking every n-th record partitions the data only if every pipeline reads the same order.
    repeat = kwargs.pop("repeat")
    kwargs.update(deterministic=True, repeat=False)
    records = _records(tf.constant(files), tf.constant(sizes, tf.int64), **kwargs)
    records = records.shard(num_pipelines, pipeline_id)
    return records.repeat() if repeat else records


def make_pretraining_dataset(file_pattern, batch_size, seq_length, *,
                             input_context=None, shuffle=True, seed=0,
                             deterministic=False, repeat=True,
                             shuffle_buffer=10000, skip_batches=0, batches_per_step=1):
    """Batches of int32 [batch_size, seq_length] input_ids/input_mask/segment_ids.

    With `deterministic`, the global batches (all replicas' batches in replica
    order) depend only on the files, the seed and the global batch size, not
    on how many replicas or workers share them, whenever `stream_count` allows
    (the shard count and the global batch have a common divisor that the
    number of workers divides; see `stream_count`). Otherwise the files, or
    the records when there are fewer files than workers, are split between
    workers and the order depends on the topology; a warning says so.
    With gradient accumulation (`batches_per_step` > 1) on one machine, the
    examples come in the order of one update's batch, as without
    accumulation; on several workers in that of a micro-batch (a warning
    says so).

    Args:
      file_pattern: a glob, comma-separated globs, or a list of them.
      batch_size: per-replica batch size.
      seq_length: sequence length the model expects; the first record is
        checked against it.
      input_context: tf.distribute.InputContext; each input pipeline then
        reads a disjoint part of the data.
      shuffle, seed: shuffle files and records with this seed.
      deterministic: same element order on every run for the same seed.
      repeat: repeat forever (epochs are reshuffled).
      shuffle_buffer: records held in shuffle buffers, all streams together.
      skip_batches: start after this many global batches (resuming a run).
      batches_per_step: global batches per update (gradient accumulation).
    """
    files = _list_files(file_pattern)
    _validate_first_record(files, seq_length)
    num_pipelines = input_context.num_input_pipelines if input_context else 1
    pipeline_id = input_context.input_pipeline_id if input_context else 0
    replicas = input_context.num_replicas_in_sync if input_context else 1
    global_batch = batch_size * replicas
    # One pipeline reads the update's micro-batches one after another, so it can order them as one batch;
    # several would each need a slice of every micro-batch.
    ordered_batch = global_batch * batches_per_step if num_pipelines == 1 else global_batch
    if batches_per_step > 1 and num_pipelines > 1:
        logging.warning("with gradient accumulation on %d workers, training examples come in the order of a "
                        "micro-batch of %d, not of the update's %d: other topologies see another order",
                        num_pipelines, global_batch, global_batch * batches_per_step)
    streams = stream_count(len(files), ordered_batch, num_pipelines)
    sizes = [tf.io.gfile.stat(f).length for f in files]
    common = dict(shuffle=shuffle, repeat=repeat, deterministic=deterministic)
    if streams:
        per_pipeline = streams // num_pipelines
        block = ordered_batch // streams
        mine = range(pipeline_id * per_pipeline, (pipeline_id + 1) * per_pipeline)
        # Stream i holds shards i, i+S, i+2S, ... and has a seed of its own. S divides the ordered batch,
        # so whole updates (skip_batches a multiple of batches_per_step) skip whole blocks of each stream.
        stream_records = [
            _records(tf.constant(files[i::streams]), tf.constant(sizes[i::streams], tf.int64),
                     seed=seed * 100003 + i, shuffle_buffer=max(1, shuffle_buffer // streams), **common)
            .skip(skip_batches * global_batch // streams)
            for i in mine]
        order = tf.data.Dataset.range(per_pipeline).map(lambda i: tf.fill([block], i)).unbatch()
        dataset = tf.data.Dataset.choose_from_datasets(stream_records, order.repeat(),
                                                       stop_on_empty_dataset=False)
        dataset = dataset.batch(batch_size, drop_remainder=True)
    else:
        logging.warning(
            "the order of training examples depends on the number of workers: %d shards and a global batch "
            "of %d leave no stream split that %d workers can share; build the data with --num_out_files "
            "a multiple of the worker count that divides the global batch", len(files), global_batch,
            num_pipelines)
        dataset = _split_between_pipelines(files, sizes, num_pipelines, pipeline_id, seed=seed,
                                           shuffle_buffer=shuffle_buffer, **common)
        dataset = dataset.batch(batch_size, drop_remainder=True)
        dataset = dataset.skip(skip_batches * (replicas // num_pipelines))
    dataset = dataset.map(lambda x: _parse_batch(x, seq_length),
                          num_parallel_calls=tf.data.AUTOTUNE,
                          deterministic=deterministic)
    options = tf.data.Options()
    options.deterministic = deterministic
    return dataset.with_options(options).prefetch(tf.data.AUTOTUNE)
