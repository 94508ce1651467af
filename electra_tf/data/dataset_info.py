"""dataset_info.json: what a build produced and from what, written last."""

import json
import os

from electra_tf.utils import atomic as atomic_files

FILE_NAME = "dataset_info.json"


def _ratio(numerator, denominator):
    return round(numerator / denominator, 6) if denominator else 0.0


def build_info(*, vocab, config, shard_names, shard_counts, stats, read_stats,
                              inputs, skipped_inputs, elapsed_seconds):
    """Returns the JSON-ready summary of one build."""
    return {
        "format": "electra pretraining tfrecords (int64 input_ids, "
                  "input_mask, segment_ids)",
        "max_seq_length": config.max_seq_length,
        "vocab_file": os.path.abspath(vocab.path),
        "vocab_size": len(vocab),
        "vocab_sha256": vocab.sha256,
        "lowercase": config.lowercase,
        "pack_across_documents": config.pack_across_documents,
        "seed": config.seed,
        "num_examples": sum(shard_counts),
        "shards": shard_names,
        "examples_per_shard": shard_counts,
        "documents": stats["documents"],
        "tokens": stats["tokens"],
        "tokens_tokenized": stats["tokens_tokenized"],
        "padding_fraction": _ratio(stats["positions"] - stats["real_positions"],
                                   stats["positions"]),
        "unk_rate": _ratio(stats["unk_tokens"], stats["tokens"]),
        "single_segment_examples": stats["single_segment_examples"],
        "input_files": [f.path for f in inputs],
        "input_bytes": read_stats.text_bytes,
        "skipped_inputs": skipped_inputs,
        "dropped": {
            "empty_documents": stats["empty_documents"] +
                               read_stats.empty_documents,
            "bad_jsonl_records": read_stats.bad_jsonl_records,
        },
        "repaired": {
            "invalid_utf8_bytes_replaced": read_stats.invalid_utf8_replaced,
            "long_lines_cut": read_stats.long_lines_cut,
            "long_documents_split": read_stats.long_documents_split,
        },
        "elapsed_seconds": round(elapsed_seconds, 3),
    }


def write_info(output_dir, info):
    atomic_files.write_text_atomically(
        os.path.join(output_dir, FILE_NAME), json.dumps(info, indent=2) + "\n")
