"""wordpiece_learner learns exactly the vocabulary tf-text's learner learns."""

import random

import pytest
from tensorflow_text.tools.wordpiece_vocab import wordpiece_tokenizer_learner_lib as tf_text_learner
from test_data_helpers import write_demo_slice

from data_prep import build_vocab, wordpiece_learner
from electra_tf.text.vocab import RESERVED_TOKENS

RESERVED = list(RESERVED_TOKENS)


@pytest.fixture(scope="module")
def demo_word_counts(tmp_path_factory):
    path = write_demo_slice(tmp_path_factory.mktemp("corpus") / "corpus.txt", 150)
    with open(path, encoding="utf-8") as f:
        return build_vocab.count_words(f.read().splitlines(), lowercase=True)


def test_same_vocabulary_as_tf_text_on_demo_text(demo_word_counts):
    ours = wordpiece_learner.learn(demo_word_counts, 300, RESERVED)
    assert ours == tf_text_learner.learn(dict(demo_word_counts), 300, RESERVED)
    assert ours[:5] == RESERVED and 280 <= len(ours) <= 300
    assert any(t.startswith("##") and len(t) > 3 for t in ours)  # learned pieces, not only characters


def test_same_vocabulary_as_tf_text_on_random_words():
    rng = random.Random(0)
    for _ in range(100):
        words = {"".join(rng.choice("abcdef") for _ in range(rng.randint(1, 7))): rng.randint(1, 60)
                 for _ in range(60)}
        size = rng.randint(10, 60)
        assert wordpiece_learner.learn(words, size, ["[UNK]"]) == tf_text_learner.learn(dict(words), size, ["[UNK]"])


def test_words_that_start_with_the_joiner_still_match_tf_text():
    # Here "##ab" the word and "##ab" the piece after "d" would be counted as one.
    words = {"b##ba": 87, "bc": 68, "aed": 86, "ad": 88, "eec#": 46, "#cbe": 89, "d": 87, "c": 90,
             "e": 36, "bd": 46, "c#ce#": 80, "#c": 50, "d#aaeb": 90, "bbb": 82, "d##e": 54, "d##ab": 58,
             "de": 63, "eaadc": 40, "adbe": 82, "#": 90, "caba": 92, "abae#": 26, "c#b": 13, "d#aa": 36,
             "acb#": 67, "#cabca": 6, "b": 88, "ecc": 73, "#d##d": 82, "cebb": 49, "cabbc": 43, "c#a": 44,
             "aacbb": 75, "cde": 17, "ad#": 31, "##ab": 60}
    assert wordpiece_learner.learn(words, 16, ["[UNK]"]) == tf_text_learner.learn(dict(words), 16, ["[UNK]"])
