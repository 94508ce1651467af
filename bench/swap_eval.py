r"""Swapped-word detection: how often an exported discriminator points at a swapped word.

    .venv/bin/python bench/swap_eval.py --export_dir demo_out/model/export/discriminator \
        --corpus demo_out/wiki.txt

The demo (electra_tf/demo.py) shows 16 hand-written sentences; this measures the
same skill on many: sentences from the corpus with one word replaced by another
corpus word of about the same frequency (the same log2 frequency bucket), so a
discriminator that only flags rare words gains nothing. A hit is a sentence whose
most suspicious token belongs to the swapped word. Chance is about 1 / tokens.
Prints the hit rate on the swapped sentences, on the demo's own sentences, and
the median P(replaced) of untouched tokens.
"""

import argparse
import collections
import math
import os
import random
import re

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

WORD = re.compile(r"^[a-z]{3,}$")


def corpus_sentences(path, limit_docs):
    """Lower-cased sentences of 8-30 words from the first documents of a blank-line corpus."""
    with open(path, encoding="utf-8") as f:
        docs = f.read().split("\n\n")[:limit_docs]
    sentences = []
    for doc in docs:
        for sentence in re.split(r"(?<=\.)\s+", doc.replace("\n", " ")):
            words = sentence.lower().split()
            if 8 <= len(words) <= 30:
                sentences.append(words)
    return sentences


def swapped_sentences(sentences, count, seed):
    """(sentence, swapped word) pairs; the new word has the old one's frequency bucket."""
    frequency = collections.Counter(w for s in sentences for w in s if WORD.match(w))
    buckets = collections.defaultdict(list)
    for word, n in frequency.items():
        if n >= 3:
            buckets[int(math.log2(n))].append(word)
    rng = random.Random(seed)
    pairs = []
    for words in rng.sample(sentences, len(sentences)):
        candidates = [i for i, w in enumerate(words) if WORD.match(w) and frequency[w] >= 3]
        if not candidates:
            continue
        i = rng.choice(candidates)
        pool = [w for w in buckets[int(math.log2(frequency[words[i]]))] if w != words[i]]
        if not pool:
            continue
        new = rng.choice(pool)
        pairs.append((" ".join(words[:i] + [new] + words[i + 1:]), new))
        if len(pairs) == count:
            break
    return pairs


def hit_rate(model, pairs, batch=64):
    import tensorflow as tf

    from electra_tf.demo import swapped_word_positions

    hits, untouched = 0, []
    for start in range(0, len(pairs), batch):
        chunk = pairs[start:start + batch]
        out = model.signatures["serve_text"](tf.constant([s for s, _ in chunk]))
        for (_, word), tokens, probs in zip(chunk, out["tokens"].numpy(), out["rtd_probabilities"].numpy()):
            tokens = [t.decode() for t in tokens if t]
            swapped = swapped_word_positions(tokens, word)
            inner = range(1, len(tokens) - 1)
            top = max(inner, key=lambda i: probs[i])
            hits += top in swapped
            untouched.extend(float(probs[i]) for i in inner if i not in swapped)
    untouched.sort()
    return hits / len(pairs), untouched[len(untouched) // 2]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--export_dir", required=True, nargs="+")
    parser.add_argument("--corpus", required=True)
    parser.add_argument("--count", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    import tensorflow as tf
    import tensorflow_text  # noqa: F401

    from electra_tf.demo import SWAPPED

    pairs = swapped_sentences(corpus_sentences(args.corpus, 3000), args.count, args.seed)
    for export_dir in args.export_dir:
        model = tf.saved_model.load(export_dir)
        rate, median = hit_rate(model, pairs)
        demo_rate, _ = hit_rate(model, SWAPPED)
        print(f"{export_dir}: swapped sentences {rate:.3f} ({len(pairs)}), demo sentences "
              f"{round(demo_rate * len(SWAPPED))}/{len(SWAPPED)}, median P(replaced) of untouched {median:.3f}")


if __name__ == "__main__":
    main()
