r"""Learns a WordPiece vocabulary from text files.

    python -m data_prep.build_vocab --input demo_out/corpus.txt \
        --vocab_size 8000 --output demo_out/vocab.txt

Text is normalized exactly as build_pretraining_dataset tokenizes it, so every
learned piece is reachable. The reserved tokens come first:
[PAD] [UNK] [CLS] [SEP] [MASK] (ids 0-4).
"""

import collections
import heapq
import random
import sys
import time
import unicodedata

from absl import app, flags

from data_prep import input_files, text_input
from electra_tf.text.vocab import RESERVED_TOKENS
from electra_tf.utils import cli
from electra_tf.utils.atomic import write_text_atomically
from electra_tf.utils.errors import UserError

FLAGS = flags.FLAGS


def define_flags():
    """Defined on demand, so several CLI modules can be imported together."""
    flags.DEFINE_list(
        "input", None, "Text files, directories or globs (comma-separated).")
    flags.DEFINE_integer(
        "vocab_size", 30522, "Target vocabulary size. The learner may return fewer "
        "(a few % fewer as a rule; far fewer from too little text, which is warned "
        "about under 90%).")
    flags.DEFINE_string("output", None, "vocab.txt to write.")
    flags.DEFINE_boolean(
        "lowercase", True, "Lower-case and strip accents, like BERT uncased.")
    flags.DEFINE_string(
        "text_field", "text", "Field (.jsonl) or column (.parquet) holding the text.")
    flags.DEFINE_integer(
        "max_lines", None, "Learn from at most this many lines (default: all).")
    flags.DEFINE_integer(
        "sample_bytes", None, "Learn from a random sample of the lines, about this "
        "many bytes of text drawn from the whole input (default: all of it). The "
        "same --seed and input give the same sample.")
    flags.DEFINE_integer("seed", 0, "Seed of the --sample_bytes draw.")


def read_lines(files, text_field, max_lines=None):
    lines = []
    for document in text_input.read_documents(files, text_field=text_field):
        lines.extend(document)
        if max_lines is not None and len(lines) >= max_lines:
            return lines[:max_lines]
    return lines


def sample_lines(lines, sample_bytes, seed):
    """A uniform random sample of `lines` holding at most `sample_bytes` bytes of UTF-8, in input order.

    Each line draws a key from random.Random(seed); the sample is the lines
    of smallest key that fit the budget (a bottom-k sample, one pass, memory
    bounded by the budget). The same seed and lines give the same sample.

    Args:
        lines: an iterable of strings (read once).
        sample_bytes: the budget.
        seed: the seed of the keys.

    Returns:
        A list of lines.

    Example:

    >>> sample_lines([f"line {i}" for i in range(1000)], 60, seed=0)
    ['line 40', 'line 186', 'line 225', 'line 402', 'line 583', 'line 906', 'line 993']
    """
    rng = random.Random(seed)
    kept, total = [], 0  # a max-heap of (-key, position, size, line)
    for position, line in enumerate(lines):
        key = rng.random()
        size = len(line.encode("utf-8"))
        if total + size > sample_bytes and (not kept or key > -kept[0][0]):
            continue  # it would be the first line to leave again
        heapq.heappush(kept, (-key, position, size, line))
        total += size
        while total > sample_bytes:
            total -= heapq.heappop(kept)[2]
    return [line for _, _, _, line in sorted(kept, key=lambda item: item[1])]


def _is_usable_piece(token):
    # The learner can emit pieces with whitespace or control characters (from
    # text BERT's cleanup would have removed); such a vocab line cannot be
    # read back as one token.
    return token and not any(
        unicodedata.category(c)[0] in "ZC" for c in token)


def count_words(lines, lowercase):
    """{word: count} of the lines, split as keras_hub's compute_word_piece_vocabulary splits."""
    import tensorflow as tf  # pylint: disable=g-import-not-at-top

    # keras_hub's own splitter (whitespace, punctuation, CJK), which its
    # vocabulary trainer applies; it has no public name.
    from keras_hub.src.tokenizers.word_piece_tokenizer import pretokenize  # pylint: disable=g-import-not-at-top

    from electra_tf.text import tokenization  # pylint: disable=g-import-not-at-top

    def split(batch):
        return pretokenize(tokenization.bert_preprocess(batch, lowercase), lowercase=False,
                           strip_accents=False, split=True, split_on_cjk=True).flat_values

    # Counted here rather than by tf-text's count_words, which fails on text
    # with no words at all instead of returning nothing.
    counts = collections.Counter()
    for words in tf.data.Dataset.from_tensor_slices(lines).batch(1024).map(split):
        counts.update(words.numpy().tolist())
    return {word.decode("utf-8"): count for word, count in counts.items()}


def learn_vocabulary(lines, vocab_size, lowercase, word_counts=None):
    """Returns the vocabulary as a list of tokens, reserved tokens first.

    The same vocabulary as keras_hub's compute_word_piece_vocabulary, which
    takes minutes where wordpiece_learner takes seconds. `word_counts`
    (`count_words(lines, lowercase)`) saves counting again.
    """
    from data_prep import wordpiece_learner  # pylint: disable=g-import-not-at-top

    word_counts = count_words(lines, lowercase) if word_counts is None else word_counts
    if not word_counts:
        raise UserError("inputs contain no words (only whitespace or control characters); check --input")
    vocab = wordpiece_learner.learn(word_counts, vocab_size, list(RESERVED_TOKENS))[:vocab_size]
    learned = [t for t in vocab[len(RESERVED_TOKENS):]
               if _is_usable_piece(t) and t not in RESERVED_TOKENS]
    return list(RESERVED_TOKENS) + learned


# Below this share of --vocab_size the learnt size is warned about: the learner's own slack is 5%.
SMALL_VOCAB_SHARE = 0.9


def size_report(learned, asked, distinct_words, text_bytes):
    """The line reporting the learnt size against the asked one, and a warning when it is under 90%, else None.

    The learner (tf-text's) keeps a piece only if it occurs often enough (its
    count threshold does not go below about 10), so a small text has fewer
    pieces to give than a large `--vocab_size` asks for.

    Args:
        learned: tokens in the vocabulary written (reserved tokens included).
        asked: `--vocab_size`.
        distinct_words: distinct words in the text learnt from.
        text_bytes: bytes of text learnt from.

    Example:

    >>> line, warning = size_report(1768, 4000, 9000, 540_000)
    >>> line
    '44% of the 4,000 tokens asked'
    >>> warning[:74]
    'warning: the vocabulary has 1,768 tokens, 44% of the 4,000 asked: 0.5 MB o'
    """
    line = f"{learned / asked:.0%} of the {asked:,} tokens asked"
    if learned >= SMALL_VOCAB_SHARE * asked:
        return line, None
    return line, (f"warning: the vocabulary has {learned:,} tokens, {learned / asked:.0%} of the {asked:,} asked: "
                  f"{text_bytes / 1e6:.1f} MB of text ({distinct_words:,} distinct words) is too little for that many "
                  "pieces (a piece is kept only if it occurs about 10 times or more); give more text, or pass "
                  f"--vocab_size={learned} to ask for what it holds")


def main(argv):
    del argv
    if not FLAGS.input or not FLAGS.output:
        raise UserError("--input and --output are required")
    if FLAGS.vocab_size <= len(RESERVED_TOKENS):
        raise UserError(f"--vocab_size must exceed {len(RESERVED_TOKENS)}")
    if FLAGS.sample_bytes is not None and (FLAGS.sample_bytes < 1 or FLAGS.max_lines is not None):
        raise UserError("--sample_bytes must be positive and cannot go with --max_lines; pass one of them")
    files = input_files.resolve_inputs(FLAGS.input, FLAGS.text_field)
    start = time.time()
    if FLAGS.sample_bytes:
        documents = text_input.read_documents(files.usable, text_field=FLAGS.text_field)
        lines = sample_lines((line for doc in documents for line in doc), FLAGS.sample_bytes, FLAGS.seed)
    else:
        lines = read_lines(files.usable, FLAGS.text_field, FLAGS.max_lines)
    if not lines:
        raise UserError("inputs contain no text; check --input")
    cli.start_tensorflow()
    word_counts = count_words(lines, FLAGS.lowercase)
    vocab = learn_vocabulary(lines, FLAGS.vocab_size, FLAGS.lowercase, word_counts)
    write_text_atomically(FLAGS.output, "\n".join(vocab) + "\n")
    line, warning = size_report(len(vocab), FLAGS.vocab_size, len(word_counts),
                                sum(len(text.encode("utf-8")) for text in lines))
    print(f"wrote {len(vocab)} tokens to {FLAGS.output} ({len(lines)} lines, {time.time() - start:.1f} s): {line}")
    if warning:
        print(warning, file=sys.stderr)


if __name__ == "__main__":
    define_flags()
    app.run(cli.run(main))
