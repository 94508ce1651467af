"""tf-text's WordPiece vocabulary learner, computed faster: the same vocabulary.

`learn` returns exactly what tensorflow_text's
`wordpiece_tokenizer_learner_lib.learn` returns with its default settings
(tests/test_wordpiece_learner.py compares the two). That learner
binary-searches a count threshold. Each probe runs four rounds; a round counts
every substring that starts at a wordpiece boundary of a word, then, longest
first, subtracts each substring's remaining count from all of its prefixes
(whether or not it was kept), keeps the substrings left with at least
`threshold`, and re-splits the words with what it kept. In pure Python that
took 4 of the demo's 26 minutes on a slow CPU.

The subtraction leaves each substring with the number of times it occurs as
a whole suffix of a word starting at a boundary: occurrences inside a longer
substring are subtracted with that substring. So a round here counts those
suffixes directly, and the first round, which does not depend on the
threshold, runs once instead of once per probe. The input filtering, the
split into wordpieces and the ordering of the final vocabulary are tf-text's
own functions.

Example:

>>> learn({"low": 5, "lower": 2, "newest": 6, "widest": 3}, 40, ["[UNK]"])[:4]
['[UNK]', 'd', 'e', 'i']
"""

import collections

from tensorflow_text.tools.wordpiece_vocab import wordpiece_tokenizer_learner_lib as tf_text_learner

JOINER = "##"
# tf-text's defaults, which keras_hub's compute_word_piece_vocabulary uses.
_UPPER_THRESHOLD = int(1e7)
_LOWER_THRESHOLD = 10
_NUM_ITERATIONS = 4
_MAX_INPUT_TOKENS = int(5e6)
_MAX_TOKEN_LENGTH = 50
_MAX_UNIQUE_CHARS = 1000
_SLACK_RATIO = 0.05


def _suffix_counts(word_counts, curr_tokens):
    """How often each suffix that starts at a wordpiece boundary occurs, keyed as a token.

    With `curr_tokens` None (the first round) every position is a boundary.
    A suffix that does not start the word is a continuation piece: "##" + suffix.
    """
    counts = collections.Counter()
    for word, count in word_counts:
        if curr_tokens is None:
            starts = range(len(word))
        else:
            ends = tf_text_learner.get_split_indices(word, curr_tokens, True, JOINER)
            if not ends:
                continue  # the word cannot be split into current pieces
            starts = [0] + ends[:-1]
        for start in starts:
            counts[JOINER + word[start:] if start else word] += count
    return counts


def _learn_with_threshold(word_counts, threshold, first_round, char_tokens, reserved_tokens):
    """tf-text's learn_with_thresh, given the first round's counts and the words' characters."""
    curr_tokens = tf_text_learner.ensure_all_tokens_exist(char_tokens, {}, True, JOINER)
    for iteration in range(_NUM_ITERATIONS):
        counts = first_round if iteration == 0 else _suffix_counts(word_counts, curr_tokens)
        next_tokens = {token: count for token, count in counts.items() if count >= threshold}
        curr_tokens = tf_text_learner.ensure_all_tokens_exist(char_tokens, next_tokens, True, JOINER)
    return tf_text_learner.generate_final_vocabulary(reserved_tokens, char_tokens, curr_tokens)


def learn(word_counts, vocab_size, reserved_tokens):
    """The vocabulary tf-text's `learn(word_counts, vocab_size, reserved_tokens)` returns.

    `word_counts` maps each word to how often it occurs; the result lists the
    reserved tokens, then single characters, then pieces (suffix pieces
    start with "##"), at most `vocab_size` of them when the search succeeds.
    """
    items = list(word_counts.items())
    upper, lower = tf_text_learner.get_search_threshs(items, _UPPER_THRESHOLD, _LOWER_THRESHOLD)
    words = tf_text_learner.get_input_words(items, reserved_tokens, _MAX_TOKEN_LENGTH)
    allowed_chars = tf_text_learner.get_allowed_chars(words, _MAX_UNIQUE_CHARS)
    words = tf_text_learner.filter_input_words(words, allowed_chars, _MAX_INPUT_TOKENS)
    if any(word.startswith(JOINER) for word, _ in words):
        # A word "##x" and the piece "##x" would be one key here but two in
        # tf-text's counts. BERT's splitting never makes such a word.
        return tf_text_learner.learn(word_counts, vocab_size, reserved_tokens)
    first_round = _suffix_counts(words, None)
    char_tokens = tf_text_learner.extract_char_tokens(words)
    slack = max(_SLACK_RATIO * vocab_size, 0)
    # tf-text's learn_binary_search, as a loop.
    while True:
        threshold = (upper + lower) // 2
        vocab = _learn_with_threshold(words, threshold, first_round, char_tokens, reserved_tokens)
        fits = len(vocab) <= vocab_size and vocab_size - len(vocab) <= slack
        if fits or lower >= upper or threshold <= 1:
            return vocab
        if len(vocab) > vocab_size:
            lower = threshold + 1
        else:
            upper = threshold - 1
