"""The demo's sentences and how it scores them."""

import collections
import re

from data_prep import export_corpus
from electra_tf import demo


def test_every_demo_word_is_common_in_the_demo_corpus():
    counts = collections.Counter(
        word for doc in export_corpus.demo_documents() for line in doc
        for word in re.findall(r"[a-z0-9]+", line.lower()))
    for sentence, swapped in demo.SWAPPED:
        words = [w for w in sentence.split() if w != "."]
        assert swapped in words, sentence
        rare = {w: counts[w] for w in words if counts[w] < demo.MIN_CORPUS_COUNT}
        assert not rare, (sentence, rare)


def test_swapped_word_positions_cover_every_piece_of_the_word():
    tokens = ["[CLS]", "the", "el", "##ection", "of", "el", "##ect", "[SEP]"]
    assert demo.swapped_word_positions(tokens, "election") == [2, 3]
    assert demo.swapped_word_positions(tokens, "elect") == [5, 6]
    assert demo.swapped_word_positions(tokens, "river") == []


def test_report_counts_a_hit_only_when_the_top_token_is_the_swapped_word(capsys):
    tokens, probabilities = [], []
    for i, (sentence, swapped) in enumerate(demo.SWAPPED):
        words = ["[CLS]"] + sentence.split() + ["[SEP]"]
        target = words.index(swapped)
        p = [0.1] * len(words)
        # Even sentences: the swapped word is on top; odd: the word before it is.
        p[target if i % 2 == 0 else target - 1] = 0.9
        tokens.append([w.encode() for w in words] + [b""])
        probabilities.append(p + [0.0])
    hits = demo.report(tokens, probabilities)
    assert hits == (len(demo.SWAPPED) + 1) // 2
    lines = capsys.readouterr().out.splitlines()
    assert [line[:4] for line in lines] == ["HIT " if i % 2 == 0 else "miss" for i in range(len(lines))]
    assert all("[CLS]" not in line and "[SEP]" not in line for line in lines)
