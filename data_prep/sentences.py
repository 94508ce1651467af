"""Cuts lines too long for one segment: into sentences, then at word boundaries.

The original recipe treats a line as a sentence and keeps at most one
example's worth of it, so a paragraph or a document on one line loses its
tail. Here such a line is split into sentences by sentencex (Wikimedia's
rule-based splitter: it was the fastest of the splitters measured on the
demo corpus and as accurate as the others; see bench/RESULTS.md), and a
sentence that is still too long is cut into near-equal pieces before a word
start (a token that does not begin with "##").

Sentences are cut only where the tokenizer splits anyway (at whitespace or
punctuation, BERT's definitions), so the sentences of a line tokenize to
exactly the ids of the whole line: a line can be split before tokenizing and
put back together after, at no cost, when it turns out to fit.
"""

import functools
import unicodedata

import numpy as np

from electra_tf.utils.errors import UserError

MODES = ("auto", "always", "never")
# In "auto" mode a line is split before tokenizing when it has more than this
# many characters per token of the limit: English text has ~4 characters per
# WordPiece token, so lines over the limit are found in the first pass; the
# few that are not (dense scripts) are split after tokenizing.
PRESPLIT_CHARS_PER_TOKEN = 2


def segment_limit(max_seq_length):
    """The most tokens of one line an example can hold: [CLS] line [SEP]."""
    return max_seq_length - 2


@functools.lru_cache(maxsize=4096)
def _splits_words(char):
    """Whether the tokenizer always splits next to `char`: whitespace or punctuation, as BERT defines them."""
    if char in " \t\n\r":
        return True
    category = unicodedata.category(char)
    if category == "Zs" or category.startswith("P"):
        return True
    code = ord(char)
    # BERT counts every non-alphanumeric ASCII character as punctuation ("$", "^", "`").
    return 33 <= code <= 47 or 58 <= code <= 64 or 91 <= code <= 96 or 123 <= code <= 126


class SentenceSplitter:
    """Splits text into sentences with sentencex, cutting only where the tokenizer splits words.

    Args:
        language: the language code sentencex uses for its rules ("en", "de", "ja", ...).

    Example:

    >>> SentenceSplitter("en").split("It rained. Dr. Smith stayed in.")
    ['It rained. ', 'Dr. Smith stayed in.']
    """

    def __init__(self, language="en"):
        try:
            import sentencex  # pylint: disable=g-import-not-at-top
        except ImportError:
            raise UserError("sentence splitting needs the sentencex package; `pip install sentencex` "
                            "(it is in requirements.txt) or pass --sentence_splitting=never") from None
        self._segment = sentencex.segment
        self.language = language

    def split(self, text):
        """The sentences of `text`; joined, they give `text` back."""
        pieces = self._segment(self.language, text)
        if len(pieces) < 2:
            return [text]
        out = [pieces[0]]
        for piece in pieces[1:]:
            if not piece:
                continue
            if out[-1] and (_splits_words(out[-1][-1]) or _splits_words(piece[0])):
                out.append(piece)
            else:
                out[-1] += piece  # a cut inside a word would change its tokens
        return out


def cut_at_words(is_continuation, ids, start, length, limit):
    """Cuts the tokens ids[start:start + length] into pieces of at most `limit`.

    Makes ceil(length / limit) pieces of near-equal size (equal parts avoid
    a one-token tail), each cut before a word start where one is near; a
    single word longer than `limit` is cut inside.

    Args:
        is_continuation: bool array over the vocabulary, True for "##" pieces.
        ids: the block's flat token ids.
        start, length: the sentence's place in `ids`.
        limit: the most tokens of a piece.

    Returns:
        A list of (start, length) pieces covering the sentence in order.

    Example:

    >>> cont = np.array([False, True])  # token 1 continues a word
    >>> cut_at_words(cont, np.array([0, 1, 0, 0, 1, 0]), 0, 6, 4)
    [(0, 3), (3, 3)]
    """
    word_start = ~is_continuation[ids[start:start + length]]
    pieces, offset = [], 0
    while length - offset > limit:
        rest = length - offset
        target = -(-rest // -(-rest // limit))  # ceil(rest / number of pieces left)
        # Cut positions offset+1 .. offset+limit; prefer the last word start up to the target.
        candidates = np.flatnonzero(word_start[offset + 1:offset + limit + 1]) + 1
        before = candidates[candidates <= target]
        if len(before):
            cut = int(before[-1])
        elif len(candidates):
            cut = int(candidates[0])
        else:
            cut = target
        pieces.append((start + offset, cut))
        offset += cut
    pieces.append((start + offset, length - offset))
    return pieces


class LineTokenizer:
    """Tokenizes a block's lines and, unless the mode is "never", cuts those too long for a segment.

    "auto" cuts only lines of more than `limit` tokens: into sentences, and
    a sentence still over the limit at word boundaries. "always" cuts every
    line into its sentences (and over-long sentences at word boundaries).
    "never" is the original recipe: a line stays whole, whatever its length.

    Args:
        tokenize: lines -> (ids, row_splits), e.g. WordpieceTokenizer.tokenize.
        mode: "auto", "always" or "never".
        limit: the most tokens of a piece (segment_limit(max_seq_length)).
        is_continuation: bool array over the vocabulary, True for "##" pieces.
        language: sentencex's language code.

    Example:

    >>> def tokenize(lines):  # one token per word, for the example
    ...     lengths = [len(line.split()) for line in lines]
    ...     return np.zeros(sum(lengths), np.int64), np.cumsum([0] + lengths)
    >>> cutter = LineTokenizer(tokenize, "auto", 4, np.array([False]))
    >>> ids, splits, pieces, counts = cutter(["Short one.", "A first sentence. And then a second one."])
    >>> pieces, counts
    ({1: [(2, 3), (5, 3), (8, 2)]}, {'lines_split': 1, 'sentences_cut': 1})
    """

    def __init__(self, tokenize, mode, limit, is_continuation, language="en"):
        if mode not in MODES:
            raise UserError(f"--sentence_splitting must be one of {', '.join(MODES)}, not {mode!r}")
        self._tokenize = tokenize
        self._mode = mode
        self._limit = limit
        self._is_continuation = is_continuation
        self._splitter = None if mode == "never" else SentenceSplitter(language)
        self._presplit_chars = 0 if mode == "always" else PRESPLIT_CHARS_PER_TOKEN * limit

    def __call__(self, lines):
        """Returns (ids, splits, pieces, counts).

        Line i has the tokens ids[splits[i]:splits[i + 1]], the same as the
        line tokenized whole. `pieces` maps each line that was cut to its
        (start, length) pieces of `ids` (empty sentences left out); `counts`
        has "lines_split" (lines cut into sentences) and "sentences_cut"
        (sentences cut at word boundaries).
        """
        counts = {"lines_split": 0, "sentences_cut": 0}
        if self._mode == "never":
            ids, splits = self._tokenize(lines)
            return ids, splits, {}, counts
        split = self._splitter.split
        limit = self._presplit_chars
        presplit = {i: split(line) for i, line in enumerate(lines) if len(line) > limit}
        sentences = {i: s for i, s in presplit.items() if len(s) > 1}
        if sentences:
            texts, first = [], []
            for i, line in enumerate(lines):
                first.append(len(texts))
                parts = sentences.get(i)
                if parts is None:
                    texts.append(line)
                else:
                    texts.extend(parts)
            first.append(len(texts))
            ids, text_splits = self._tokenize(texts)
            splits = text_splits[first]
        else:
            ids, text_splits = self._tokenize(lines)
            splits, first = text_splits, None
        lengths = np.diff(splits)
        pieces = {}
        if sentences:
            for i in sentences:
                if self._mode == "always" or lengths[i] > self._limit:
                    bounds = text_splits[first[i]:first[i + 1] + 1].tolist()
                    pieces[i] = [(a, b - a) for a, b in zip(bounds[:-1], bounds[1:]) if b > a]
        over = np.flatnonzero(lengths > self._limit).tolist()
        for i in over:
            if i in presplit and i not in sentences:  # one sentence: only the cut at words is left
                pieces[i] = [(int(splits[i]), int(lengths[i]))]
        missed = [i for i in over if i not in presplit]
        if missed:
            pieces.update(self._split_tokenized([lines[i] for i in missed], missed, splits))
        counts["lines_split"] = sum(len(p) > 1 for p in pieces.values())
        for i, line_pieces in pieces.items():
            if any(length > self._limit for _, length in line_pieces):
                cut = []
                for start, length in line_pieces:
                    if length > self._limit:
                        counts["sentences_cut"] += 1
                        cut += cut_at_words(self._is_continuation, ids, start, length, self._limit)
                    else:
                        cut.append((start, length))
                pieces[i] = cut
        return ids, splits, pieces, counts

    def _split_tokenized(self, texts, line_indices, splits):
        """Sentence pieces of lines found over the limit after tokenizing."""
        per_line = [self._splitter.split(text) for text in texts]
        _, sentence_splits = self._tokenize([s for parts in per_line for s in parts])
        sentence_lengths = np.diff(sentence_splits).tolist()
        pieces, k = {}, 0
        for i, parts in zip(line_indices, per_line):
            lengths = sentence_lengths[k:k + len(parts)]
            k += len(parts)
            start, total = int(splits[i]), int(splits[i + 1] - splits[i])
            if sum(lengths) != total:  # cannot happen with cuts at word breaks; keep the line whole then
                lengths = [total]
            line_pieces = []
            for length in lengths:
                if length:
                    line_pieces.append((start, length))
                start += length
            pieces[i] = line_pieces
        return pieces
