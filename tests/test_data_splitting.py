"""Sentence splitting of long lines, and the count of every token read: written or dropped, by cause."""

import json

import numpy as np
import pytest
from test_data_helpers import build_local, demo_slice_with_vocab, quick_vocab, run_cli, shard_bytes

from data_prep import build_pretraining_dataset as builder
from data_prep import sentences
from electra_tf.text.tokenization import WordpieceTokenizer
from electra_tf.text.vocab import Vocab

MODULE = "data_prep.build_pretraining_dataset"


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """The demo slice (one sentence per line), the same documents one per line, and a vocab."""
    root = tmp_path_factory.mktemp("split")
    corpus, text, vocab = demo_slice_with_vocab(root, 300)
    documents = [doc.split("\n") for doc in text.strip().split("\n\n")]
    per_line = root / "documents.txt"
    per_line.write_text("\n\n".join(" ".join(doc) for doc in documents) + "\n", encoding="utf-8")
    return {"sentences": corpus, "documents": str(per_line), "vocab": vocab, "docs": documents}


def _build(source, vocab, out, mode="auto", across=False):
    return build_local([source], vocab, out, splitting=mode, across=across)


_shards = shard_bytes


def _line_lengths(vocab, lines):
    ids, splits = WordpieceTokenizer(Vocab(vocab).tokens).tokenize(lines)
    return np.diff(splits)


def _assert_accounted(info):
    dropped = info["tokens_dropped"]
    assert info["tokens_read"] == info["tokens_written"] + sum(dropped.values())
    assert info["written_fraction"] == pytest.approx(info["tokens_written"] / info["tokens_read"], abs=1e-6)


def test_splitter_cuts_only_where_the_tokenizer_splits():
    splitter = sentences.SentenceSplitter("en")
    text = "It rained all day. Dr. Smith stayed in!  Then: \"Why?\" he asked.history.Four more."
    parts = splitter.split(text)
    assert "".join(parts) == text and len(parts) >= 3
    # A cut between two letters would change the word's WordPiece tokens: such a cut is undone.
    splitter._segment = lambda language, t: [t[:5], t[5:9], t[9:]]
    assert splitter.split("abcde fghij") == ["abcde", " fgh" + "ij"]


def test_cut_at_words_balances_pieces_and_keeps_words_whole():
    rng = np.random.RandomState(0)
    is_continuation = np.array([False] * 50 + [True] * 50)
    for _ in range(200):
        n, limit = rng.randint(1, 400), rng.randint(2, 130)
        ids = rng.randint(0, 100, n + 7)
        ids[7] = 0
        word_start = ~is_continuation[ids]
        pieces = sentences.cut_at_words(is_continuation, ids, 7, n, limit)
        assert pieces[0][0] == 7 and sum(length for _, length in pieces) == n
        assert all(a + la == b for (a, la), (b, _) in zip(pieces, pieces[1:]))
        assert all(0 < length <= limit for _, length in pieces)
        for start, _ in pieces[1:]:  # inside a word only when no word starts in reach
            previous = max(a for a, _ in pieces if a < start)
            assert word_start[start] or not word_start[previous + 1:previous + limit + 1].any()
    # Words of 3 tokens: every cut lands before a word, and the pieces are near-equal, not 126 + 1.
    ids = np.array([0, 50, 50] * 43)
    pieces = sentences.cut_at_words(is_continuation, ids, 0, len(ids), 126)
    assert [length for _, length in pieces] == [63, 66]
    assert all(ids[start] == 0 for start, _ in pieces)


def test_split_lines_tokenize_to_the_ids_of_the_whole_line(demo):
    tokens = Vocab(demo["vocab"]).tokens
    tokenizer = WordpieceTokenizer(tokens)
    lines = [" ".join(doc) for doc in demo["docs"][:60]] + ["zq" * 45, "短い文。" * 30]
    is_continuation = np.array([t.startswith("##") for t in tokens])
    for mode in ("auto", "always"):
        cutter = sentences.LineTokenizer(tokenizer.tokenize, mode, 62, is_continuation)
        ids, splits, pieces, counts = cutter(lines)
        whole_ids, whole_splits = tokenizer.tokenize(lines)
        np.testing.assert_array_equal(ids, whole_ids)
        np.testing.assert_array_equal(splits, whole_splits)
        assert counts["lines_split"] > 40 and counts["sentences_cut"] >= 1
        for i, line_pieces in pieces.items():
            assert line_pieces[0][0] == splits[i]
            assert all(a + la == b for (a, la), (b, _) in zip(line_pieces, line_pieces[1:]))
            assert sum(length for _, length in line_pieces) == splits[i + 1] - splits[i]
            assert all(0 < length <= 62 for _, length in line_pieces)
        over = np.flatnonzero(np.diff(splits) > 62)
        assert set(over) <= set(pieces)  # "zq" * 45 is one word: it is cut inside
        if mode == "auto":
            assert set(pieces) == set(over)


def test_document_per_line_loses_nothing_by_default(demo, tmp_path):
    never = _build(demo["documents"], demo["vocab"], tmp_path / "never", "never")
    auto = _build(demo["documents"], demo["vocab"], tmp_path / "auto")
    across = _build(demo["documents"], demo["vocab"], tmp_path / "across", across=True)
    for info in (never, auto, across):
        _assert_accounted(info)
        assert info["tokens_read"] == never["tokens_read"]
    # never: what the original loses, every line's tokens past [CLS] line [SEP].
    lengths = _line_lengths(demo["vocab"], [" ".join(doc) for doc in demo["docs"]])
    assert never["tokens_dropped"]["long_line_tails"] == np.maximum(lengths - 126, 0).sum() > 0
    assert never["sentence_splitting"]["lines_split"] == 0
    # auto: no line tail is lost; only the recipe's cut at the end of an example remains.
    assert auto["tokens_dropped"]["long_line_tails"] == 0
    # Every over-long line is split into sentences, or is one sentence and cut at words.
    split, over = auto["sentence_splitting"], np.count_nonzero(lengths > 126)
    assert over - split["sentences_cut"] <= split["lines_split"] <= over
    assert auto["written_fraction"] > 0.8 > 0.5 > never["written_fraction"]
    assert across["tokens_written"] == across["tokens_read"]
    assert across["sentence_splitting"]["mode"] == "auto"


def test_default_on_sentence_per_line_demo_is_byte_identical_to_never(demo, tmp_path):
    # The demo slice, less the documents with a line too long for an example (which the
    # default does split): every other line is a sentence that fits. A vocab of whole words,
    # so that lines have the demo vocab's length in tokens (4 characters each).
    docs = demo["docs"]
    vocab = quick_vocab(tmp_path / "words.txt", "\n".join(line for doc in docs for line in doc), 20000)
    lengths = _line_lengths(vocab, [line for doc in docs for line in doc])
    fits, at = [], 0
    for doc in docs:
        if lengths[at:at + len(doc)].max() <= 126:
            fits.append(doc)
        at += len(doc)
    assert len(fits) > 200
    source = tmp_path / "fits.txt"
    source.write_text("\n\n".join("\n".join(doc) for doc in fits) + "\n", encoding="utf-8")
    # Lines this long go through the sentence splitter before tokenizing, and come back whole.
    splitter = sentences.SentenceSplitter()
    assert sum(len(splitter.split(line)) > 1 for doc in fits for line in doc if len(line) > 2 * 126) >= 1
    never = _build(source, vocab, tmp_path / "never", "never")
    auto = _build(source, vocab, tmp_path / "auto")
    assert _shards(tmp_path / "auto") == _shards(tmp_path / "never") and len(_shards(tmp_path / "auto")) == 4
    assert auto["num_examples"] == never["num_examples"] and auto["sentence_splitting"]["lines_split"] == 0
    # The same with two sentences a line: hundreds of lines are split, tokenized and put back together.
    pairs = [[" ".join(doc[i:i + 2]) for i in range(0, len(doc), 2)] for doc in fits]
    pair_lengths = _line_lengths(vocab, [line for doc in pairs for line in doc])
    pairs = [doc for doc, n in zip(pairs, np.split(pair_lengths, np.cumsum([len(d) for d in pairs])[:-1]))
             if n.max() <= 126]
    assert sum(len(splitter.split(line)) > 1 for doc in pairs for line in doc if len(line) > 2 * 126) > 100
    source = tmp_path / "pairs.txt"
    source.write_text("\n\n".join("\n".join(doc) for doc in pairs) + "\n", encoding="utf-8")
    _build(source, vocab, tmp_path / "pairs_never", "never")
    _build(source, vocab, tmp_path / "pairs_auto")
    assert _shards(tmp_path / "pairs_auto") == _shards(tmp_path / "pairs_never")
    # With a vocab of fewer words some lines are too long: there the default keeps their tails.
    whole_never = _build(demo["sentences"], demo["vocab"], tmp_path / "whole_never", "never")
    whole_auto = _build(demo["sentences"], demo["vocab"], tmp_path / "whole_auto")
    assert whole_never["tokens_dropped"]["long_line_tails"] > 0 == whole_auto["tokens_dropped"]["long_line_tails"]


def test_always_splits_every_line_into_sentences(demo, tmp_path):
    always = _build(demo["documents"], demo["vocab"], tmp_path / "always", "always")
    auto = _build(demo["documents"], demo["vocab"], tmp_path / "auto")
    _assert_accounted(always)
    assert always["sentence_splitting"]["lines_split"] > auto["sentence_splitting"]["lines_split"]
    assert always["tokens_dropped"]["long_line_tails"] == 0


def test_cli_warns_with_advice_when_over_5_percent_is_dropped(demo, tmp_path):
    result = run_cli(MODULE, "--input", demo["documents"], "--vocab_file", demo["vocab"],
                     "--output_dir", tmp_path / "never", "--sentence_splitting", "never")
    assert result.returncode == 0, result.stderr
    summary = result.stdout.strip().splitlines()[-1]
    info = json.loads((tmp_path / "never" / "dataset_info.json").read_text())
    assert f"{info['written_fraction']:.1%} of {info['tokens_read']:,} tokens written" in summary
    warning = result.stderr.strip().splitlines()[-1]
    assert warning.startswith("warning: ") and "were dropped" in warning
    assert "--sentence_splitting=auto" in warning  # one line a document: no sentence crosses an end
    result = run_cli(MODULE, "--input", demo["documents"], "--vocab_file", demo["vocab"],
                     "--output_dir", tmp_path / "across", "--pack_across_documents")
    assert result.returncode == 0, result.stderr
    assert "warning" not in result.stderr and " 100.0% of " in result.stdout


def test_dropped_warning_names_each_cause():
    info = {"tokens_read": 1000, "tokens_dropped": {"long_line_tails": 0, "crossing_example_end": 50}}
    assert builder.dropped_warning(info) is None
    info["tokens_dropped"]["crossing_example_end"] = 51
    warning = builder.dropped_warning(info)
    assert "5.1%" in warning and "--pack_across_documents" in warning and "sentence_splitting" not in warning
    info["tokens_dropped"]["long_line_tails"] = 300
    assert "30.0% the tails of lines" in builder.dropped_warning(info)


def test_original_mode_counts_the_far_part_of_an_enormous_line(demo, tmp_path):
    path = tmp_path / "huge.txt"
    words = "the quick brown fox jumps over the lazy dog " * 1000
    with open(path, "w", encoding="utf-8") as f:
        f.write("first document line\n\n" + words * 10 + "\n\nlast document\n")  # a 450K-character line
    never = _build(path, demo["vocab"], tmp_path / "never", "never")
    auto = _build(path, demo["vocab"], tmp_path / "auto")
    assert never["repaired"]["long_lines_cut"] == 1
    for info in (never, auto):
        _assert_accounted(info)
    assert never["tokens_read"] == auto["tokens_read"] > 90000
    assert never["tokens_dropped"]["long_line_tails"] > 0.99 * never["tokens_read"] - 126
    assert auto["tokens_dropped"]["long_line_tails"] == 0
