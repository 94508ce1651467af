"""build_pretraining_dataset end to end: outputs, determinism and bad input."""

import contextlib
import glob
import gzip
import hashlib
import json
import os
import tracemalloc

import pytest
import tensorflow as tf
from test_data_helpers import build_local, demo_slice_with_vocab, run_cli, shard_bytes, write_demo_slice

from data_prep import block_processing, input_files, shard_writer, text_input, workers
from electra_tf.utils.errors import UserError

MODULE = "data_prep.build_pretraining_dataset"


@pytest.fixture(scope="module")
def corpus_and_vocab(tmp_path_factory):
    corpus, _, vocab = demo_slice_with_vocab(tmp_path_factory.mktemp("demo"), 300)
    return corpus, vocab


def _build(inputs, vocab, output_dir, seed=0, processes=1, across=False,
           shards=4, overwrite=False, splitting="auto"):
    return build_local(inputs, vocab, output_dir, shards, processes, overwrite=overwrite,
                       seed=seed, across=across, splitting=splitting)


_shard_bytes = shard_bytes


def _records(output_dir):
    files = sorted(glob.glob(os.path.join(output_dir, "pretrain_data*")))
    return [tf.train.Example.FromString(r.numpy())
            for r in tf.data.TFRecordDataset(files)]


def _assert_one_line_error(result, *words):
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr
    for word in words:
        assert word in lines[0]


def _fails_before_writing(tmp_path, source, vocab, *words):
    result = run_cli(MODULE, "--input", source, "--vocab_file", vocab,
                     "--output_dir", tmp_path / "out")
    _assert_one_line_error(result, *words)
    assert not (tmp_path / "out").exists()


def test_cli_writes_shards_and_dataset_info(corpus_and_vocab, tmp_path):
    corpus, vocab = corpus_and_vocab
    out = tmp_path / "out"
    result = run_cli(MODULE, "--input", corpus, "--vocab_file", vocab,
                     "--output_dir", out, "--num_out_files", 3)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("wrote ") and "padding" in result.stdout
    info = json.loads((out / "dataset_info.json").read_text())
    with open(vocab, "rb") as f:
        assert info["vocab_sha256"] == hashlib.sha256(f.read()).hexdigest()
    assert info["vocab_size"] == len(open(vocab).read().splitlines())
    assert info["lowercase"] is True and info["max_seq_length"] == 128
    assert info["documents"] == 300
    counts = info["examples_per_shard"]
    assert len(counts) == 3 and sum(counts) == info["num_examples"] >= 300
    assert max(counts) - min(counts) <= 1  # round robin
    records = _records(out)
    assert len(records) == info["num_examples"]
    mask = [sum(r.features.feature["input_mask"].int64_list.value)
            for r in records]
    padding = 1 - sum(mask) / (128 * len(records))
    assert info["padding_fraction"] == pytest.approx(padding, abs=1e-5)
    assert info["tokens_written"] > 100 * 300 and 0 <= info["unk_rate"] < 0.05
    assert info["skipped_inputs"] == []
    for name in ("input_ids", "input_mask", "segment_ids"):
        feature = records[0].features.feature[name]
        assert len(feature.int64_list.value) == 128
    assert not [p for p in os.listdir(out) if p.startswith(".tmp")]


def test_same_seed_same_bytes_any_process_count(corpus_and_vocab, tmp_path,
                                               monkeypatch):
    corpus, vocab = corpus_and_vocab
    # Many small blocks, so both workers' results are interleaved. Across
    # documents, since with this vocab nearly every line fills an example by
    # itself and the default recipe's draws rarely change anything.
    monkeypatch.setattr(block_processing, "BLOCK_CHARS", 1 << 12)
    _build([corpus], vocab, tmp_path / "a", seed=1, across=True)
    _build([corpus], vocab, tmp_path / "b", seed=1, processes=2, across=True)
    _build([corpus], vocab, tmp_path / "c", seed=2, across=True)
    a, b, c = (_shard_bytes(tmp_path / d) for d in "abc")
    assert a == b and len(a) == 4
    assert a != c


def test_cli_workers_write_the_same_bytes(corpus_and_vocab, tmp_path):
    # The command line forks its workers (a test session has run TF, so
    # _build above uses a forkserver); both must give one process's bytes.
    corpus, vocab = corpus_and_vocab
    big = write_demo_slice(tmp_path / "big.txt", 1500)  # several blocks
    info = _build([big, corpus], vocab, tmp_path / "one", shards=3)
    result = run_cli(MODULE, "--input", f"{big},{corpus}", "--vocab_file",
                     vocab, "--output_dir", tmp_path / "two", "--num_out_files",
                     3, "--num_processes", 2)
    assert result.returncode == 0, result.stderr
    assert _shard_bytes(tmp_path / "two") == _shard_bytes(tmp_path / "one")
    cli_info = json.loads((tmp_path / "two" / "dataset_info.json").read_text())
    for key in ("num_examples", "examples_per_shard", "tokens_written", "tokens_read", "documents"):
        assert cli_info[key] == info[key]


def test_across_documents_mode_pads_less(corpus_and_vocab, tmp_path):
    corpus, vocab = corpus_and_vocab
    default = _build([corpus], vocab, tmp_path / "d")
    across = _build([corpus], vocab, tmp_path / "x", across=True)
    assert across["pack_across_documents"] is True
    assert across["padding_fraction"] < min(default["padding_fraction"], 0.05)
    assert across["tokens_written"] > default["tokens_written"]  # nothing cut at line ends


def test_missing_input_is_one_line_error(corpus_and_vocab, tmp_path):
    _, vocab = corpus_and_vocab
    _fails_before_writing(tmp_path, tmp_path / "nope.txt", vocab,
                          "not found", "nope.txt")


def test_empty_input_is_one_line_error(corpus_and_vocab, tmp_path):
    _, vocab = corpus_and_vocab
    (tmp_path / "empty.txt").write_text("")
    (tmp_path / "d").mkdir()
    for source in (tmp_path / "empty.txt", tmp_path / "d"):
        _fails_before_writing(tmp_path, source, vocab, "empty")


def test_unreadable_input_is_one_line_error(corpus_and_vocab, tmp_path):
    _, vocab = corpus_and_vocab
    bad_gzip = tmp_path / "broken.txt.gz"
    bad_gzip.write_bytes(b"this is not gzip data")
    _fails_before_writing(tmp_path, bad_gzip, vocab,
                          "cannot read", "broken.txt.gz")
    if os.geteuid() != 0:  # root reads any file whatever its mode
        locked = tmp_path / "locked.txt"
        locked.write_text("text\n")
        locked.chmod(0)
        _fails_before_writing(tmp_path, locked, vocab,
                              "cannot read", "locked.txt")


def test_bad_vocab_is_one_line_error(corpus_and_vocab, tmp_path):
    corpus, _ = corpus_and_vocab
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("[PAD]\n[UNK]\nhello\n")
    _fails_before_writing(tmp_path, corpus, vocab, "[CLS]")


def test_existing_output_dir_needs_overwrite(corpus_and_vocab, tmp_path):
    corpus, vocab = corpus_and_vocab
    out = tmp_path / "out"
    _build([corpus], vocab, out, shards=6)
    before = sorted(os.listdir(out))
    result = run_cli(MODULE, "--input", corpus, "--vocab_file", vocab,
                     "--output_dir", out)
    _assert_one_line_error(result, "--overwrite")
    assert sorted(os.listdir(out)) == before
    _build([corpus], vocab, out, shards=2, overwrite=True)
    assert sorted(os.listdir(out)) == [
        "dataset_info.json", "pretrain_data.tfrecord-0-of-2",
        "pretrain_data.tfrecord-1-of-2"]


def test_all_empty_documents_is_an_error_and_writes_nothing(
        corpus_and_vocab, tmp_path):
    _, vocab = corpus_and_vocab
    source = tmp_path / "blank.jsonl"
    source.write_text('{"text": "   "}\n{"text": "\\u200b"}\n')
    with pytest.raises(UserError, match="empty"):
        _build([source], vocab, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_messy_inputs_are_repaired_skipped_and_counted(
        corpus_and_vocab, tmp_path):
    corpus, vocab = corpus_and_vocab
    with open(corpus, encoding="utf-8") as f:
        docs = f.read().split("\n\n")[:20]
    src = tmp_path / "src"
    (src / "nested").mkdir(parents=True)
    # Two invalid bytes in one document, a document of only zero-width and
    # control characters, whitespace-only lines between documents.
    (src / "a.txt").write_bytes(
        docs[0].encode() + b" caf\xe9 \xff\n\n" + "\u200b\x07".encode() +
        b"\n\n  \t \n\n" + docs[1].encode() + b"\n")
    (src / "binary.bin").write_bytes(b"\x00\x01\x02" * 100)
    with gzip.open(src / "nested" / "b.txt.gz", "wt", encoding="utf-8") as f:
        f.write("\n\n".join(docs[2:10]))
    records = [{"text": d} for d in docs[10:20]] + [{"text": "  "}, {"id": 1}]
    (src / "c.jsonl").write_text("\n".join(json.dumps(r) for r in records))
    info = _build([src], vocab, tmp_path / "out")
    assert info["documents"] == 20
    assert info["repaired"]["invalid_utf8_bytes_replaced"] == 2
    assert info["dropped"]["empty_documents"] == 2
    assert info["dropped"]["bad_records"] == 1
    assert info["skipped_inputs"] == [
        {"path": str(src / "binary.bin"), "reason": "binary (contains NUL bytes)"}]
    assert len(info["input_files"]) == 3


def test_enormous_line_costs_bounded_memory(tmp_path, corpus_and_vocab):
    _, vocab = corpus_and_vocab
    path = tmp_path / "huge.txt"
    words = ("the quick brown fox jumps over the lazy dog " * 1000).encode()
    with open(path, "wb") as f:
        f.write(b"first document line\n\n")
        for _ in range(700):  # one 31 MB line
            f.write(words)
        f.write(b"\n\nlast document\n")
    files = input_files.resolve_inputs([str(path)]).usable
    for keep_tail in (False, True):
        tracemalloc.start()
        stats = text_input.ReadStats()
        lines = sum(len(d) for d in text_input.read_documents(
            files, stats, keep_long_line_tail=keep_tail))
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        # A few chunks and one document block, not the 31 MB line.
        assert peak < 24 * 2**20, peak
        assert stats.long_lines_cut == 1
        assert lines > 100 if keep_tail else lines == 3
    # The original rule reads only the line's first piece; the default splits all of it.
    info = _build([path], vocab, tmp_path / "never", splitting="never")
    assert info["documents"] == 3 and info["repaired"]["long_lines_cut"] == 1
    info = _build([path], vocab, tmp_path / "auto")
    assert info["repaired"]["long_lines_cut"] == 1 and info["repaired"]["long_documents_split"] >= 5
    assert info["tokens_dropped"]["long_line_tails"] == 0 and info["documents"] > 3


def test_interrupted_build_leaves_no_finished_looking_shard(
        corpus_and_vocab, tmp_path, monkeypatch):
    corpus, vocab = corpus_and_vocab
    out = tmp_path / "out"
    seen = []
    real_write = shard_writer.ShardWriter.write

    def write_then_fail(self, records):
        real_write(self, records)
        seen.extend(os.listdir(out))
        raise KeyboardInterrupt

    monkeypatch.setattr(shard_writer.ShardWriter, "write", write_then_fail)
    with pytest.raises(KeyboardInterrupt):
        _build([corpus], vocab, out)
    assert seen and all(name.startswith(".tmp-") for name in seen)
    assert not out.exists()


def test_a_dead_worker_stops_the_build(corpus_and_vocab, tmp_path,
                                       monkeypatch):
    corpus, vocab = corpus_and_vocab
    real_start = workers._started_workers

    @contextlib.contextmanager
    def one_killed(*args):
        with real_start(*args) as started:
            started[0].process.kill()
            yield started

    monkeypatch.setattr(workers, "_started_workers", one_killed)
    with pytest.raises(RuntimeError, match="worker died"):
        _build([corpus], vocab, tmp_path / "out", processes=2)
    assert not (tmp_path / "out").exists()
