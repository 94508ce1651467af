"""tf-text tokenization against the `tokenizers` package's BERT WordPiece."""

import pytest
from bert_reference import reference_ids

from data_prep import build_vocab, export_corpus
from electra_tf.text.tokenization import WordpieceTokenizer

TRICKY_LINES = [
    "Café déjà vu, naïve Ångström – Zürich's “quotes” … ½ km²",
    "日本語のテキスト 和 中文字符 mixed with English",
    "tab\tseparated\u00a0no-break\u2009thin\u3000ideographic spaces",
    "zero\u200bwidth\u200d joiner, soft\u00adhyphen, bell\x07 and \ufeffBOM",
    "İstanbul, ΑΘΗΝΑ, Straße, ﬁ ligature, emoji 🙂 and Ⅻ numerals",
    "don't stop-believing (e.g. 3.14) [SEP] [MASK] ##not_a_suffix",
    "a" * 150 + " long words become [UNK]",
]


@pytest.fixture(scope="module")
def learned_vocab():
    lines = [line for doc in export_corpus.demo_documents(300) for line in doc]
    return build_vocab.learn_vocabulary(lines, 2000, lowercase=True)


def test_ids_match_bert_reference_on_demo_sample(learned_vocab):
    docs = list(export_corpus.demo_documents())
    sample = [line for doc in docs[::5] for line in doc]  # ~2,000 documents
    ours = WordpieceTokenizer(learned_vocab).tokenize_to_lists(sample)
    reference = reference_ids(learned_vocab, sample)
    mismatches = [i for i, (a, b) in enumerate(zip(ours, reference)) if a != b]
    assert len(sample) > 2000
    assert len(mismatches) / len(sample) <= 0.001, mismatches[:5]
    # Not vacuous: real subword splitting happened.
    assert sum(len(ids) for ids in ours) > 1.1 * sum(
        len(line.split()) for line in sample)


def test_ids_match_bert_reference_on_tricky_text(learned_vocab):
    vocab = learned_vocab + sorted(
        {c for line in TRICKY_LINES for c in line.lower()
         if c.strip() and c not in learned_vocab})
    ours = WordpieceTokenizer(vocab).tokenize_to_lists(TRICKY_LINES)
    reference = reference_ids(vocab, TRICKY_LINES)
    for line, a, b in zip(TRICKY_LINES, ours, reference):
        assert a == b, (line, [vocab[i] for i in a], [vocab[i] for i in b])


def test_learned_vocab_has_reserved_tokens_first(learned_vocab):
    assert learned_vocab[:5] == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    assert len(set(learned_vocab)) == len(learned_vocab)
    assert any(token.startswith("##") for token in learned_vocab)
    assert all(token == token.strip() and token for token in learned_vocab)
