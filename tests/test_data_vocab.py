"""build_vocab CLI, and a BERT-layout vocab.txt working like a learned one."""


import numpy as np
import pytest
import tensorflow as tf
from test_data_helpers import quick_vocab, run_cli, write_demo_slice

from data_prep import block_processing, build_vocab, input_files
from data_prep import build_pretraining_dataset as builder
from electra_tf.text.vocab import Vocab
from electra_tf.utils.errors import UserError


def test_build_vocab_cli_learns_reserved_first_vocab(tmp_path):
    corpus = write_demo_slice(tmp_path / "corpus.txt", 60)
    out = tmp_path / "vocab.txt"
    result = run_cli("data_prep.build_vocab", "--input", corpus,
                     "--vocab_size", 400, "--output", out)
    assert result.returncode == 0, result.stderr
    tokens = out.read_text(encoding="utf-8").splitlines()
    assert tokens[:5] == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    assert 200 < len(tokens) <= 400 and len(set(tokens)) == len(tokens)
    assert "the" in tokens and any(t.startswith("##") for t in tokens)
    assert all(t == t.lower() for t in tokens[5:])  # --lowercase default
    assert len(Vocab(str(out))) == len(tokens)


def test_build_vocab_reports_the_learnt_size_and_warns_when_the_text_is_too_small(tmp_path):
    corpus = write_demo_slice(tmp_path / "corpus.txt", 60)
    out = tmp_path / "vocab.txt"
    small = run_cli("data_prep.build_vocab", "--input", corpus, "--vocab_size", 4000, "--output", out)
    assert small.returncode == 0, small.stderr
    learnt = len(out.read_text(encoding="utf-8").splitlines())
    assert learnt < 0.9 * 4000
    assert f"wrote {learnt} tokens to {out} " in small.stdout
    assert small.stdout.strip().endswith(f": {learnt / 4000:.0%} of the 4,000 tokens asked")
    warnings = [line for line in small.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and f"has {learnt:,} tokens" in warnings[0] and "too little" in warnings[0]
    assert f"--vocab_size={learnt}" in warnings[0]
    # Asking for what the text holds: reported, no warning.
    fits = run_cli("data_prep.build_vocab", "--input", corpus, "--vocab_size", learnt, "--output", out)
    assert fits.returncode == 0 and fits.stdout.strip().endswith(f"of the {learnt:,} tokens asked")
    assert "warning:" not in fits.stderr


def test_build_vocab_cli_errors_are_one_line(tmp_path):
    result = run_cli("data_prep.build_vocab", "--input", tmp_path / "none",
                     "--output", tmp_path / "v.txt")
    assert result.returncode != 0
    assert result.stderr.strip().startswith("error: ")
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "v.txt").exists()


def test_build_vocab_cli_refuses_text_without_words_in_one_line(tmp_path):
    corpus = tmp_path / "controls.txt"
    corpus.write_text("\x01\x02\x03\n\x7f\u200b\n", encoding="utf-8")  # all deleted by BERT's cleanup
    result = run_cli("data_prep.build_vocab", "--input", corpus, "--output", tmp_path / "v.txt")
    assert result.returncode != 0
    # TF's C++ start-up messages reach stderr whatever the log level; ours is the last line.
    assert result.stderr.strip().splitlines()[-1] == (
        "error: inputs contain no words (only whitespace or control characters); check --input")
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "v.txt").exists()


def _bert_layout(path, learned):
    """BERT's vocab.txt layout: [PAD], [unused0..98], [UNK], [CLS], [SEP],
    [MASK], more unused, then the wordpieces (ids 0, 100, 101, 102, 103)."""
    tokens = (["[PAD]"] + [f"[unused{i}]" for i in range(99)] +
              ["[UNK]", "[CLS]", "[SEP]", "[MASK]"] +
              [f"[unused{i}]" for i in range(99, 103)] + learned)
    path.write_text("\n".join(tokens) + "\n", encoding="utf-8")
    return str(path)


def test_bert_layout_vocab_builds_the_same_examples(tmp_path):
    corpus = write_demo_slice(tmp_path / "corpus.txt", 40)
    learned = quick_vocab(tmp_path / "learned.txt",
                          open(corpus, encoding="utf-8").read())
    pieces = open(learned, encoding="utf-8").read().splitlines()[5:]
    bert = _bert_layout(tmp_path / "bert_vocab.txt", pieces)
    vocab = Vocab(bert)
    assert (vocab.pad_id, vocab.unk_id, vocab.cls_id, vocab.sep_id,
            vocab.mask_id) == (0, 100, 101, 102, 103)
    examples = {}
    for name, path in (("learned", learned), ("bert", bert)):
        config = block_processing.PackingConfig(path, True, 64, False, 0)
        inputs = input_files.resolve_inputs([corpus])
        info = builder.build(config, inputs, str(tmp_path / name), 1, 1,
                             show_progress=False)
        assert info["vocab_size"] == len(Vocab(path))
        records = tf.data.TFRecordDataset(str(tmp_path / name /
                                              info["shards"][0]))
        examples[name] = [tf.train.Example.FromString(r.numpy())
                          for r in records]
    assert len(examples["learned"]) == len(examples["bert"]) > 0
    offset = 103  # piece i of the learned vocab is i + 103 in the BERT one
    for a, b in zip(examples["learned"], examples["bert"]):
        ids_a = a.features.feature["input_ids"].int64_list.value
        ids_b = b.features.feature["input_ids"].int64_list.value
        specials = {0: 0, 1: 100, 2: 101, 3: 102, 4: 103}
        assert [specials.get(i, i + offset) for i in ids_a] == list(ids_b)


def test_vocab_without_word_pieces_is_refused_in_one_line(tmp_path):
    specials = tmp_path / "specials.txt"
    specials.write_text("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n", encoding="utf-8")
    with pytest.raises(UserError, match="only special tokens.*build_vocab"):
        Vocab(str(specials))
    # One word piece is enough, and it builds the tokenizer the export uses.
    one_word = tmp_path / "one_word.txt"
    one_word.write_text("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nriver\n", encoding="utf-8")
    from electra_tf.text.tokenization import fast_bert_tokenizer
    fast_bert_tokenizer(Vocab(str(one_word)).tokens)
    # Every command reads vocabularies through Vocab; the dataset builder, for one, says it in one line.
    result = run_cli("data_prep.build_pretraining_dataset", "--input", specials,
                     "--vocab_file", specials, "--output_dir", tmp_path / "out")
    assert result.returncode != 0
    assert "only special tokens" in result.stderr.strip().splitlines()[-1]
    assert not (tmp_path / "out").exists()


def test_sample_lines_is_a_seeded_uniform_sample_within_the_budget():
    lines = [f"{i} " + "x" * (i % 97) for i in range(20000)]
    sample = build_vocab.sample_lines(iter(lines), 100_000, seed=1)
    size = sum(len(line.encode()) for line in sample)
    assert 99_000 < size <= 100_000
    assert sample == build_vocab.sample_lines(lines, 100_000, seed=1)
    assert sample != build_vocab.sample_lines(lines, 100_000, seed=2)
    positions = [int(line.split()[0]) for line in sample]
    assert positions == sorted(positions)  # input order
    # From the whole input, not its start: each quarter holds about a quarter of the sample.
    quarters = np.bincount(np.array(positions) * 4 // len(lines), minlength=4)
    assert quarters.min() > 0.2 * len(sample)
    assert sum(len(line.encode()) for line in lines) < 2_000_000
    assert build_vocab.sample_lines(lines, 10**9, seed=1) == lines  # a budget over the input keeps it all


def test_build_vocab_cli_learns_from_a_sample(tmp_path):
    corpus = write_demo_slice(tmp_path / "corpus.txt", 200)
    out = tmp_path / "vocab.txt"
    result = run_cli("data_prep.build_vocab", "--input", corpus, "--vocab_size", 300, "--output", out,
                     "--sample_bytes", 30000, "--seed", 7)
    assert result.returncode == 0, result.stderr
    files = input_files.resolve_inputs([corpus]).usable
    lines = build_vocab.sample_lines(build_vocab.read_lines(files, "text"), 30000, 7)
    assert out.read_text(encoding="utf-8").splitlines() == build_vocab.learn_vocabulary(lines, 300, True)
    assert f"({len(lines)} lines" in result.stdout
    result = run_cli("data_prep.build_vocab", "--input", corpus, "--output", tmp_path / "v2.txt",
                     "--sample_bytes", 30000, "--max_lines", 10)
    assert result.returncode != 0 and "--sample_bytes" in result.stderr.strip().splitlines()[-1]
