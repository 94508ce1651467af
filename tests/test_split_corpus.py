"""bench/split_corpus.py: the held-out split that swap_eval's held-out figures rest on."""

import importlib.util
import os
import subprocess
import sys

import pytest

_PATH = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bench", "split_corpus.py")
_spec = importlib.util.spec_from_file_location("split_corpus", _PATH)
split_corpus = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(split_corpus)

CORPUS = "a one.\na two.\n\nb one.\n\n\nc one.\nc two.\n\nd one.\n"


def test_first_documents_are_held_out_and_every_document_lands_once():
    heldout, train = split_corpus.split_documents(CORPUS, 2)
    assert heldout == "a one.\na two.\n\nb one.\n\n"
    assert train == "c one.\nc two.\n\nd one.\n\n"
    assert (heldout + train).split("\n\n")[:-1] == ["a one.\na two.", "b one.", "c one.\nc two.", "d one."]


@pytest.mark.parametrize("count", [0, 4])
def test_a_split_that_leaves_a_side_empty_is_refused(count):
    with pytest.raises(ValueError, match="between 1 and 3"):
        split_corpus.split_documents(CORPUS, count)


def test_cli_writes_both_parts_or_fails_in_one_line(tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(CORPUS, encoding="utf-8")
    outputs = [f"--heldout_output={tmp_path / 'h.txt'}", f"--train_output={tmp_path / 't.txt'}"]
    subprocess.run([sys.executable, _PATH, f"--corpus={corpus}", "--heldout_documents=1", *outputs], check=True)
    assert (tmp_path / "h.txt").read_text(encoding="utf-8") == "a one.\na two.\n\n"
    assert (tmp_path / "t.txt").read_text(encoding="utf-8").startswith("b one.\n\nc one.")

    (tmp_path / "h.txt").unlink()
    bad = subprocess.run([sys.executable, _PATH, f"--corpus={corpus}", "--heldout_documents=9", *outputs],
                         capture_output=True, text=True)
    assert bad.returncode != 0
    assert "--heldout_documents must be between 1 and 3" in bad.stderr.splitlines()[-1]
    assert not (tmp_path / "h.txt").exists()


@pytest.mark.parametrize("content", [None, b"caf\xe9\n"])
def test_a_missing_or_non_utf8_corpus_fails_in_one_line(tmp_path, content):
    corpus = tmp_path / "corpus.txt"
    if content is not None:
        corpus.write_bytes(content)
    outputs = [f"--heldout_output={tmp_path / 'h.txt'}", f"--train_output={tmp_path / 't.txt'}"]
    bad = subprocess.run([sys.executable, _PATH, f"--corpus={corpus}", *outputs], capture_output=True, text=True)
    assert bad.returncode != 0
    assert "cannot read --corpus" in bad.stderr.splitlines()[-1]
    assert not (tmp_path / "h.txt").exists() and not (tmp_path / "t.txt").exists()


def test_an_unwritable_output_fails_in_one_line_and_leaves_no_partial_file(tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(CORPUS, encoding="utf-8")
    missing_dir = tmp_path / "no_such_dir" / "t.txt"
    bad = subprocess.run([sys.executable, _PATH, f"--corpus={corpus}", "--heldout_documents=1",
                          f"--heldout_output={tmp_path / 'h.txt'}", f"--train_output={missing_dir}"],
                         capture_output=True, text=True)
    assert bad.returncode != 0
    assert f"cannot write {missing_dir}" in bad.stderr.splitlines()[-1]
    assert (tmp_path / "h.txt").read_text(encoding="utf-8") == "a one.\na two.\n\n"  # complete, not partial
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".tmp-")] == []
