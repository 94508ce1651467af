"""build_pretraining_dataset --runner=beam on Beam's DirectRunner: valid shards, dataset_info.json, determinism."""

import glob
import json
import os
import sys

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import tensorflow as tf
from test_data_helpers import build_local, packing_config, quick_vocab, run_cli, write_demo_slice

from data_prep import beam_pipeline
from data_prep import build_pretraining_dataset as builder
from electra_tf.utils.errors import UserError

MODULE = "data_prep.build_pretraining_dataset"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """Three inputs: text, compressed JSON lines, and Parquet cut into several tasks."""
    root = tmp_path_factory.mktemp("beam")
    text = open(write_demo_slice(root / "all.txt", 900), encoding="utf-8").read()
    docs = text.strip().split("\n\n")
    (root / "in").mkdir()
    (root / "in" / "a.txt").write_text("\n\n".join(docs[:300]) + "\n", encoding="utf-8")
    import gzip
    with gzip.open(root / "in" / "b.jsonl.gz", "wt", encoding="utf-8") as f:
        f.write("\n".join(json.dumps({"text": d}) for d in docs[300:600]))
    pq.write_table(pa.table({"text": docs[600:]}), root / "in" / "c.parquet", row_group_size=40)
    return {"dir": str(root / "in"), "vocab": quick_vocab(root / "vocab.txt", text)}


def _config(vocab, seed=0, across=False):
    return packing_config(vocab, seed=seed, across=across)


def _beam(corpus, out, seed=0, beam_args=(), across=False):
    inputs = beam_pipeline.resolve_inputs([corpus["dir"]], "text")
    return beam_pipeline.build(_config(corpus["vocab"], seed, across), inputs, str(out), 3,
                               beam_args=beam_args)


def _files(directory):
    return {os.path.basename(p): open(p, "rb").read()
            for p in sorted(glob.glob(os.path.join(directory, "pretrain_*")))}


def _comparable(info):
    return {k: v for k, v in info.items() if k != "elapsed_seconds"}


@pytest.fixture
def small_parquet_tasks(monkeypatch):
    """Parquet files in tasks of a few row groups, so one file is spread over workers."""
    monkeypatch.setattr(beam_pipeline, "PARQUET_TASK_BYTES", 30000)


def test_beam_writes_valid_shards_and_dataset_info(corpus, tmp_path, small_parquet_tasks):
    inputs = beam_pipeline.resolve_inputs([corpus["dir"]], "text")
    tasks = beam_pipeline.make_tasks(inputs.usable)
    assert len(tasks) >= 5 and [t[0] for t in tasks] == sorted(t[0] for t in tasks)
    info = _beam(corpus, tmp_path / "beam")
    assert info["runner"] == "beam:DirectRunner"
    files = _files(tmp_path / "beam")
    assert list(files) == info["shards"] == [f"pretrain_data.tfrecord-{i}-of-3" for i in range(3)]
    assert not [p for p in os.listdir(tmp_path / "beam") if p.startswith(".")]
    lengths, counts = [], []
    for name in info["shards"]:
        records = list(tf.data.TFRecordDataset(str(tmp_path / "beam" / name)))
        counts.append(len(records))
        for record in records:
            feature = tf.train.Example.FromString(record.numpy()).features.feature
            ids, mask, segments = (np.array(feature[k].int64_list.value) for k in
                                   ("input_ids", "input_mask", "segment_ids"))
            assert len(ids) == len(mask) == len(segments) == 128
            length = int(mask.sum())
            assert mask[:length].all() and ids[0] == 2 and ids[length - 1] == 3  # [CLS] ... [SEP]
            assert not segments[length:].any() and not ids[length:].any()
            lengths.append(length)
    assert counts == info["examples_per_shard"] and max(counts) - min(counts) <= 1
    assert sum(counts) == info["num_examples"]
    assert info["padding_fraction"] == pytest.approx(1 - sum(lengths) / (128 * len(lengths)), abs=1e-5)
    assert info["tokens_read"] == info["tokens_written"] + sum(info["tokens_dropped"].values())
    # The local builder reads the same documents and tokens; packing draws differ, statistics agree.
    local = build_local([corpus["dir"]], corpus["vocab"], tmp_path / "local", shards=3)
    for key in ("documents", "tokens_read", "input_bytes", "input_files"):
        assert info[key] == local[key], key
    # (Within 1% on the whole demo corpus, bench/RESULTS.md; a small corpus varies more from seed to seed.)
    for key in ("num_examples", "tokens_written"):
        assert info[key] == pytest.approx(local[key], rel=0.02), key
    assert info["padding_fraction"] == pytest.approx(local["padding_fraction"], abs=0.01)


def test_beam_output_is_the_same_whatever_the_workers(corpus, tmp_path, small_parquet_tasks, monkeypatch):
    one = _beam(corpus, tmp_path / "one", seed=3)
    threads = _beam(corpus, tmp_path / "threads", seed=3,
                    beam_args=["--direct_num_workers=2", "--direct_running_mode=multi_threading"])
    assert _files(tmp_path / "one") == _files(tmp_path / "threads")
    assert _comparable(one) == _comparable(threads)
    # Documents are named by file and row, not by task: one task per file gives the same bytes.
    monkeypatch.setattr(beam_pipeline, "PARQUET_TASK_BYTES", 1 << 40)
    assert len(beam_pipeline.make_tasks(beam_pipeline.resolve_inputs([corpus["dir"]], "text").usable)) == 3
    whole = _beam(corpus, tmp_path / "whole", seed=3)
    assert _files(tmp_path / "whole") == _files(tmp_path / "one") and _comparable(whole) == _comparable(one)
    other_seed = _beam(corpus, tmp_path / "other", seed=4)
    assert _files(tmp_path / "other") != _files(tmp_path / "one")
    assert other_seed["tokens_read"] == one["tokens_read"]


def test_beam_cli_with_worker_processes_gives_the_same_output(corpus, tmp_path):
    # The command line, with Beam's options after --: two worker processes (one task per file here)
    # make what one in-memory worker makes.
    expected = _comparable(_beam(corpus, tmp_path / "memory", seed=5))
    out = tmp_path / "cli"
    result = run_cli(MODULE, "--input", corpus["dir"], "--vocab_file", corpus["vocab"], "--output_dir", out,
                     "--num_out_files", 3, "--runner", "beam", "--seed", 5, "--",
                     "--direct_num_workers=2", "--direct_running_mode=multi_processing")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("wrote ") and "Traceback" not in result.stderr
    assert _files(out) == _files(tmp_path / "memory")
    assert _comparable(json.loads((out / "dataset_info.json").read_text())) == expected


def test_beam_packs_across_documents_and_overwrites(corpus, tmp_path):
    out = tmp_path / "out"
    first = _beam(corpus, out)
    (out / "pretrain_data.tfrecord-7-of-8").write_bytes(b"old")
    inputs = beam_pipeline.resolve_inputs([corpus["dir"]], "text")
    across = beam_pipeline.build(_config(corpus["vocab"], across=True), inputs, str(out), 2, overwrite=True)
    assert sorted(os.listdir(out)) == ["dataset_info.json", "pretrain_data.tfrecord-0-of-2",
                                       "pretrain_data.tfrecord-1-of-2"]
    assert across["tokens_written"] == across["tokens_read"] == first["tokens_read"]
    assert across["padding_fraction"] < 0.05 < first["padding_fraction"]


def test_beam_errors_are_one_line(corpus, tmp_path):
    empty = tmp_path / "blank.jsonl"
    empty.write_text('{"text": "  "}\n')
    with pytest.raises(UserError, match="input is empty"):
        beam_pipeline.build(_config(corpus["vocab"]), beam_pipeline.resolve_inputs([str(empty)], "text"),
                            str(tmp_path / "out"), 2)
    assert not glob.glob(str(tmp_path / "out" / "*")) and not glob.glob(str(tmp_path / "out" / ".*"))
    result = run_cli(MODULE, "--input", corpus["dir"], "--vocab_file", corpus["vocab"],
                     "--output_dir", tmp_path / "x", "--", "--direct_num_workers=2")
    assert result.returncode != 0 and result.stderr.strip().splitlines()[-1].startswith("error: ")
    assert "--runner=beam" in result.stderr and not (tmp_path / "x").exists()
    result = run_cli(MODULE, "--input", corpus["dir"], "--vocab_file", corpus["vocab"], "--output_dir",
                     tmp_path / "x", "--runner", "beam", "--beam_runner", "DataflowRunner")
    assert result.returncode != 0 and "gs://" in result.stderr.strip().splitlines()[-1]
    assert not (tmp_path / "x").exists()


def test_missing_beam_is_a_user_error(monkeypatch):
    import data_prep

    monkeypatch.setitem(sys.modules, "apache_beam", None)  # import fails as if not installed
    monkeypatch.delitem(sys.modules, "data_prep.beam_pipeline")
    monkeypatch.delattr(data_prep, "beam_pipeline")
    with pytest.raises(UserError, match=r"electra-tf\[beam\]"):
        builder._beam_pipeline()
