"""Input formats: compressed text and JSON lines, Parquet; damaged files are counted, not fatal."""

import bz2
import gzip
import json
import lzma
import sys

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from test_data_helpers import build_local, demo_slice_with_vocab, run_cli, shard_bytes, write_demo_slice

from data_prep import input_files
from electra_tf.utils.errors import UserError

try:
    from compression import zstd
except ImportError:
    from backports import zstd

MODULE = "data_prep.build_pretraining_dataset"
COMPRESS = {".gz": gzip.compress, ".bz2": bz2.compress, ".xz": lzma.compress, ".zst": zstd.compress}


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    root = tmp_path_factory.mktemp("formats")
    _, text, vocab = demo_slice_with_vocab(root, 120)
    return {"root": root, "text": text, "vocab": vocab, "documents": text.strip().split("\n\n")}


def _build(paths, vocab, out, text_field="text"):
    return build_local(paths, vocab, out, shards=2, text_field=text_field)


_shards = shard_bytes


def test_compressed_text_and_jsonl_give_the_plain_files_shards(demo, tmp_path):
    data = demo["text"].encode()
    plain = tmp_path / "plain.txt"
    plain.write_bytes(data)
    expected_info = _build([plain], demo["vocab"], tmp_path / "plain")
    expected = _shards(tmp_path / "plain")
    records = "\n".join(json.dumps({"text": d}) for d in demo["documents"]).encode()
    (tmp_path / "plain.jsonl").write_bytes(records)
    _build([tmp_path / "plain.jsonl"], demo["vocab"], tmp_path / "plain_jsonl")
    expected_jsonl = _shards(tmp_path / "plain_jsonl")
    for suffix, compress in COMPRESS.items():
        path = tmp_path / f"corpus.txt{suffix}"
        path.write_bytes(compress(data))
        info = _build([path], demo["vocab"], tmp_path / suffix[1:])
        assert _shards(tmp_path / suffix[1:]) == expected, suffix
        assert info["input_bytes"] == len(data) and info["tokens_read"] == expected_info["tokens_read"]
        path = tmp_path / f"corpus.jsonl{suffix}"
        path.write_bytes(compress(records))
        _build([path], demo["vocab"], tmp_path / f"jsonl{suffix}")
        assert _shards(tmp_path / f"jsonl{suffix}") == expected_jsonl, suffix


def test_parquet_rows_are_documents_like_jsonl_records(demo, tmp_path):
    docs = demo["documents"]
    records = [{"text": d} for d in docs] + [{"text": "  "}, {"id": 1}]
    (tmp_path / "c.jsonl").write_text("\n".join(json.dumps(r) for r in records), encoding="utf-8")
    jsonl = _build([tmp_path / "c.jsonl"], demo["vocab"], tmp_path / "jsonl")
    # Several row groups and batches; a null and an empty row, like the records above.
    table = pa.table({"id": list(range(len(docs) + 2)), "body": docs + [None, "  "]})
    pq.write_table(table, tmp_path / "c.parquet", row_group_size=50)
    info = _build([tmp_path / "c.parquet"], demo["vocab"], tmp_path / "parquet", text_field="body")
    assert _shards(tmp_path / "parquet") == _shards(tmp_path / "jsonl")
    for key in ("documents", "tokens_read", "num_examples"):
        assert info[key] == jsonl[key]
    assert info["dropped"]["bad_records"] == jsonl["dropped"]["bad_records"] == 1
    assert info["dropped"]["empty_documents"] == 1
    assert info["input_bytes"] == sum(len(d.encode()) for d in docs) + 2
    # A binary column holding UTF-8 reads the same.
    binary = pa.table({"body": pa.array([d.encode() for d in docs], pa.binary())})
    pq.write_table(binary, tmp_path / "b.parquet")
    _build([tmp_path / "b.parquet"], demo["vocab"], tmp_path / "binary", text_field="body")
    assert _shards(tmp_path / "binary") == _shards(tmp_path / "jsonl")


def test_parquet_without_the_text_column_fails_before_writing(demo, tmp_path):
    pq.write_table(pa.table({"content": ["a b c"], "n": [1]}), tmp_path / "x.parquet")
    for field, words in (("text", ("no column 'text'", "content", "--text_field")),
                         ("n", ("holds int64", "--text_field"))):
        result = run_cli(MODULE, "--input", tmp_path / "x.parquet", "--vocab_file", demo["vocab"],
                         "--output_dir", tmp_path / "out", "--text_field", field)
        assert result.returncode != 0
        line = result.stderr.strip().splitlines()[-1]
        assert line.startswith("error: ") and all(w in line for w in words), line
        assert not (tmp_path / "out").exists()
    (tmp_path / "bad.parquet").write_bytes(b"PAR1 not really")
    with pytest.raises(UserError, match="cannot read input"):
        input_files.resolve_inputs([str(tmp_path / "bad.parquet")])


def test_parquet_without_pyarrow_is_a_user_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)  # import fails as if not installed
    with pytest.raises(UserError, match=r"electra-tf\[parquet\]"):
        input_files.parquet_module()


def test_a_corrupt_compressed_header_is_a_user_error(demo, tmp_path):
    for suffix in COMPRESS:
        path = tmp_path / f"broken.txt{suffix}"
        path.write_bytes(b"this is not compressed data" * 10)
        with pytest.raises(UserError, match=f"cannot read input .*broken.txt\\{suffix}"):
            input_files.resolve_inputs([str(path)])


def test_a_truncated_compressed_file_keeps_its_start_and_is_reported(demo, tmp_path):
    data = open(write_demo_slice(tmp_path / "more.txt", 1500), "rb").read()  # distinct text: zstd keeps up
    for suffix, compress in COMPRESS.items():
        # bz2 decompresses whole blocks only: 100 KB ones, so the cut leaves several.
        packed = bz2.compress(data, 1) if suffix == ".bz2" else compress(data)
        path = tmp_path / f"cut{suffix}" / f"corpus.txt{suffix}"
        path.parent.mkdir()
        path.write_bytes(packed[:len(packed) // 2])
        whole = tmp_path / f"cut{suffix}" / "whole.txt"
        whole.write_bytes(data)
        out = tmp_path / suffix[1:]
        if suffix == ".zst":  # the command line says so, once
            result = run_cli(MODULE, "--input", f"{path},{whole}", "--vocab_file", demo["vocab"],
                             "--output_dir", out, "--num_out_files", 2)
            assert result.returncode == 0, result.stderr
            info = json.loads((out / "dataset_info.json").read_text())
            warning = [line for line in result.stderr.splitlines() if "could not be read to the end" in line]
            assert len(warning) == 1 and str(path) in warning[0]
        else:
            info = _build([path, whole], demo["vocab"], out)
        ends = info["dropped"]["unreadable_file_ends"]
        assert [e["path"] for e in ends] == [str(path)] and ends[0]["reason"], suffix
        # The readable first part of the damaged file is used, then the whole file after it.
        assert len(data) < info["input_bytes"] < 2 * len(data), suffix
