"""The pre-training data format, defined once: what the corpus tools write and training reads.

A data directory holds TFRecord shards named `pretrain_data.tfrecord-<i>-of-<n>`
(the original google-research/electra script's names, so either tool's output
fits the same glob), each record a `tf.train.Example` with three int64
features of length max_seq_length: `input_ids`, `input_mask`, `segment_ids`
(no masks: masking happens during training). Beside them, `dataset_info.json`
says what the build produced and from what; it is written last, and data made
by the original script has none.
"""

import json
import os

from electra_tf.utils.atomic import write_text_atomically
from electra_tf.utils.errors import UserError

FEATURE_NAMES = ("input_ids", "input_mask", "segment_ids")
SHARD_PREFIX = "pretrain_data.tfrecord"
DATASET_INFO_FILE = "dataset_info.json"


def shard_name(index, count):
    """The file name of shard `index` of `count`."""
    return f"{SHARD_PREFIX}-{index}-of-{count}"


def shard_pattern(data_dir):
    """The glob of every shard in `data_dir`."""
    return os.path.join(data_dir, SHARD_PREFIX + "*")


def _ratio(numerator, denominator):
    return round(numerator / denominator, 6) if denominator else 0.0


def build_dataset_info(*, vocab, config, shard_names, shard_counts, stats, read_stats,
                       inputs, skipped_inputs, elapsed_seconds, runner="local"):
    """Returns the JSON-ready summary of one build.

    Every token read is written or dropped, by cause: `long_line_tails` (a
    line's tokens past max_seq_length - 2, which the original recipe never
    places) and `crossing_example_end` (the part of a sentence that crosses
    the end of an example, which the recipe cuts off).
    """
    # The reader leaves out the far parts of lines of over 256K characters in the original mode, but counts them.
    long_line_tails = stats["dropped_long_line_tails"] + read_stats.long_line_tail_tokens
    tokens_read = stats["tokens_read"] + read_stats.long_line_tail_tokens
    return {
        "format": "electra pretraining tfrecords (int64 input_ids, "
                  "input_mask, segment_ids)",
        "max_seq_length": config.max_seq_length,
        "vocab_file": vocab.path if "://" in vocab.path else os.path.abspath(vocab.path),
        "vocab_size": len(vocab),
        "vocab_sha256": vocab.sha256,
        "lowercase": config.lowercase,
        "pack_across_documents": config.pack_across_documents,
        "seed": config.seed,
        "num_examples": sum(shard_counts),
        "shards": shard_names,
        "examples_per_shard": shard_counts,
        "sentence_splitting": {
            "mode": config.sentence_splitting,
            "language": config.sentence_language,
            "lines_split": stats["lines_split"],
            "sentences_cut": stats["sentences_cut"],
        },
        "documents": stats["documents"],
        "tokens_read": tokens_read,
        "tokens_written": stats["tokens_written"],
        "written_fraction": _ratio(stats["tokens_written"], tokens_read),
        "tokens_dropped": {
            "long_line_tails": long_line_tails,
            "crossing_example_end": stats["dropped_crossing_example_end"],
        },
        "padding_fraction": _ratio(stats["positions"] - stats["real_positions"],
                                   stats["positions"]),
        "unk_rate": _ratio(stats["unk_tokens"], stats["tokens_written"]),
        "single_segment_examples": stats["single_segment_examples"],
        "input_files": [f.path for f in inputs],
        "input_bytes": read_stats.text_bytes,
        "skipped_inputs": skipped_inputs,
        "dropped": {
            "empty_documents": stats["empty_documents"] +
                               read_stats.empty_documents,
            "bad_records": read_stats.bad_records,
            "unreadable_file_ends": read_stats.unreadable_ends,
        },
        "repaired": {
            "invalid_utf8_bytes_replaced": read_stats.invalid_utf8_replaced,
            "long_lines_cut": read_stats.long_lines_cut,
            "long_documents_split": read_stats.long_documents_split,
        },
        "runner": runner,
        "elapsed_seconds": round(elapsed_seconds, 3),
    }


# What a model card says of the data (model_card.py), from dataset_info.json.
SUMMARY_FIELDS = ("input_files", "input_bytes", "documents", "num_examples", "max_seq_length", "tokens_written",
                  "vocab_size", "lowercase")


def dataset_summary(info):
    """The fields of `info` (dataset_info.json) that say what a model was trained on.

    Example:

    >>> dataset_summary({"num_examples": 10, "shards": ["a"], "lowercase": True})
    {'num_examples': 10, 'lowercase': True}
    """
    return {name: info[name] for name in SUMMARY_FIELDS if name in info}


def write_dataset_info(output_dir, info):
    """Writes `info` as `output_dir/dataset_info.json`: atomically on a local disk; gs:// and the like through TF."""
    path = os.path.join(output_dir, DATASET_INFO_FILE)
    text = json.dumps(info, indent=2) + "\n"
    if "://" in path:  # an object store writes an object whole or not at all
        import tensorflow as tf

        with tf.io.gfile.GFile(path, "w") as f:
            f.write(text)
        return
    write_text_atomically(path, text)


def read_dataset_info(data_dir):
    """The parsed dataset_info.json of `data_dir`; {} when it has none (data from the original script).

    Raises a UserError when the file exists but cannot be read.
    """
    path = os.path.join(data_dir, DATASET_INFO_FILE)
    try:
        if "://" in path:  # gs:// and other remote file systems (TPU runs keep data in buckets)
            import tensorflow as tf

            if not tf.io.gfile.exists(path):
                return {}
            with tf.io.gfile.GFile(path) as f:
                return json.load(f)
        if not os.path.exists(path):
            return {}
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        raise UserError(f"cannot read {path} ({e}); rebuild the data with build_pretraining_dataset") from None
