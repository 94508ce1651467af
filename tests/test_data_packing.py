"""Packing: the original recipe's layout and rates, and the across-documents mode."""

import random

import numpy as np

from data_prep import packing

CLS, SEP, PAD = 2, 3, 0
L = 128


def _pack(documents, across=False, seed=0, max_seq_length=L):
    """Packs documents given as lists of token lists, as a block is packed:
    the tokens laid end to end, each line a piece of them."""
    flat = [token for doc in documents for line in doc for token in line]
    splits = np.cumsum([0] + [len(line) for doc in documents for line in doc])
    buffer = packing.ExampleBuffer(max_seq_length)
    rng = random.Random(seed)
    packer = (packing.StreamPacker(buffer, rng) if across
              else packing.DocumentPacker(buffer, rng))
    line = 0
    for doc in documents:
        packer.add_document(packing.sentence_pieces(
            splits.tolist(), line, line + len(doc)))
        line += len(doc)
    packer.finish()
    return packer, buffer.to_arrays(np.array(flat, np.int64), CLS, SEP, PAD)


def _documents(num_docs, rng, word_of_doc=None):
    """Documents of 1-12 lines of 3-60 tokens; doc i uses only token 10 + i
    when word_of_doc is set, so an example's tokens reveal their document."""
    docs = []
    for i in range(num_docs):
        lines = []
        for _ in range(rng.randint(1, 12)):
            n = rng.randint(3, 60)
            lines.append([10 + i] * n if word_of_doc else
                         [rng.randint(10, 999) for _ in range(n)])
        docs.append(lines)
    return docs


def _check_layout(ids, mask, segments):
    for row_ids, row_mask, row_seg in zip(ids, mask, segments):
        length = int(row_mask.sum())
        assert row_mask[:length].all() and not row_mask[length:].any()
        assert row_ids[0] == CLS and row_ids[length - 1] == SEP
        assert (row_ids[length:] == PAD).all()
        assert not row_seg[length:].any()
        seps = np.flatnonzero(row_ids[:length] == SEP)
        ones = np.flatnonzero(row_seg)
        if ones.size:  # two segments: [CLS] A [SEP] B [SEP]
            assert len(seps) == 2
            assert ones[0] == seps[0] + 1 and ones[-1] == length - 1
            assert (row_seg[ones[0]:length] == 1).all()
        else:
            assert len(seps) == 1


def test_default_layout_and_no_document_crossing():
    rng = random.Random(1)
    docs = _documents(400, rng, word_of_doc=True)
    _, (ids, mask, segments) = _pack(docs)
    _check_layout(ids, mask, segments)
    for row_ids, row_mask in zip(ids, mask):
        words = set(row_ids[row_mask == 1].tolist()) - {CLS, SEP}
        assert len(words) == 1, "an example mixes two documents"
    # Every document yields at least one example.
    assert len({int(r[1]) for r in ids}) == 400


def test_single_segment_and_short_target_rates():
    # One long document of short lines: every example would fill to L unless
    # it drew a short target, and would have two segments unless it drew the
    # single-segment option.
    rng = random.Random(2)
    doc = [[rng.randint(10, 999) for _ in range(rng.randint(3, 9))]
           for _ in range(60000)]
    packer, (ids, mask, segments) = _pack([doc], seed=3)
    n = len(ids)
    assert n > 2500
    _check_layout(ids, mask, segments)
    single = float((segments.sum(axis=1) == 0).mean())
    lengths = mask.sum(axis=1)
    # A short target shortens the *next* example; its length is at least
    # the target, so a short example has fewer than L - 9 tokens.
    short = float((lengths[:-1] < L - 9).mean())
    assert abs(single - 0.10) < 0.02, single
    assert 0.03 < short < 0.07, short
    assert abs(packer.single_segment_draws / n - 0.10) < 0.02
    assert abs(packer.short_target_draws / n - 0.05) < 0.015


def test_first_segment_targets_half_the_length():
    rng = random.Random(4)
    doc = [[rng.randint(10, 999) for _ in range(5)] for _ in range(20000)]
    _, (ids, mask, segments) = _pack([doc], seed=5)
    # Only full-length examples: a short target also shortens A.
    two = (segments.sum(axis=1) > 0) & (mask.sum(axis=1) >= L - 5)
    first_len = np.argmax(segments[two] == 1, axis=1) - 2  # minus [CLS], [SEP]
    # A aims at (L - 3) // 2 = 62 tokens; with 5-token sentences it lands
    # within one sentence of that.
    off = np.abs(first_len - (L - 3) // 2)
    assert np.mean(off <= 5) > 0.99 and off.max() <= 10


def test_same_seed_same_examples_other_seed_differs():
    docs = _documents(300, random.Random(6))
    a = _pack(docs, seed=7)[1][0]
    b = _pack(docs, seed=7)[1][0]
    c = _pack(docs, seed=8)[1][0]
    assert np.array_equal(a, b)
    assert a.shape != c.shape or not np.array_equal(a, c)


def test_across_documents_fills_examples_and_keeps_every_token():
    docs = _documents(400, random.Random(9))
    total = sum(len(line) for doc in docs for line in doc)
    _, (ids, mask, segments) = _pack(docs, across=False)
    _, (ids_x, mask_x, segments_x) = _pack(docs, across=True)
    padding = 1 - mask.mean()
    padding_x = 1 - mask_x.mean()
    assert padding_x < padding / 3
    text_tokens = ((ids_x >= 10) & (mask_x == 1)).sum()
    assert text_tokens == total  # nothing dropped, nothing duplicated
    # Documents inside a segment are joined by [SEP]; examples still start
    # with [CLS] and end with [SEP].
    lengths = mask_x.sum(axis=1)
    assert (ids_x[:, 0] == CLS).all()
    assert (ids_x[np.arange(len(ids_x)), lengths - 1] == SEP).all()
    assert ((ids_x == SEP) & (mask_x == 1)).sum(axis=1).max() > 2


def _reference_examples(documents, seed, across, max_len=L):
    """The recipe on token lists, as the original script (and, across
    documents, this project's first version) ran it: [(A, B)] per example."""
    rng, examples = random.Random(seed), []
    state = {"sentences": [], "length": 0, "target": max_len}

    def emit():
        target = state["target"]
        first_target = (100000 if rng.random() < 0.1 else (target - 3) // 2)
        first, second = [], []
        for sentence in state["sentences"]:
            if (not first or len(first) + len(sentence) < first_target or
                    (not second and len(first) < first_target and
                     rng.random() < 0.5)):
                first += sentence
            else:
                second += sentence
        limit = target if across else max_len
        if across:
            first, second = (s[1:] if s[:1] == [SEP] else s
                             for s in (first, second))
        kept = first[:limit - 2]
        room = max(0, limit - len(kept) - 3)
        leftover = first[limit - 2:] + second[room:] if across else []
        examples.append((kept, second[:room]))
        state["sentences"] = [leftover] if leftover else []
        state["length"] = len(leftover)
        state["target"] = (rng.randint(5, max_len) if rng.random() < 0.05
                           else max_len)

    for doc in documents:
        for i, sentence in enumerate(doc):
            if across and i == 0 and state["length"]:
                sentence = [SEP] + sentence
            state["sentences"].append(sentence)
            state["length"] += len(sentence)
            while state["length"] >= state["target"]:
                emit()
                if not across:
                    break
        if state["length"] and not across:
            emit()
    while across and state["length"]:
        emit()
    return examples


def _examples(ids, mask, segments):
    out = []
    for row_ids, row_mask, row_seg in zip(ids, mask, segments):
        real = row_ids[row_mask == 1].tolist()
        b_start = int(np.argmax(row_seg)) if row_seg.any() else len(real)
        out.append((real[1:b_start - 1], real[b_start:-1]))
    return out


def test_packers_match_the_recipe_on_token_lists():
    rng = random.Random(10)
    docs = _documents(300, rng)
    for doc in docs[::7]:  # empty lines, and lines longer than an example
        doc.insert(rng.randint(0, len(doc)), [])
        doc.append([rng.randint(10, 999) for _ in range(rng.randint(100, 300))])
    docs.insert(5, [[], []])
    for across in (False, True):
        for max_len in (L, 16):
            _, arrays = _pack(docs, across=across, seed=11, max_seq_length=max_len)
            assert _examples(*arrays) == _reference_examples(
                docs, 11, across, max_len)
