"""Sentences of words -> the encoder's features, with each word's tag on its first word piece.

As the original (google-research/electra `finetune/tagging/tagging_tasks.py`):
`[CLS] pieces of word 1 ... [SEP]`, the tag of a word predicted at its first
piece, and segment id 1 on every real token (the original's layout for
tagging, kept so its recipe transfers). Words are tokenized one by one with
the project's one tokenizer; a word that yields no piece becomes [UNK].
A sentence longer than the sequence keeps the words whose pieces fit; the
rest are counted as cut and left out of scoring, as the original does.
"""

import dataclasses

import numpy as np


def word_pieces(preprocessor, sentences, batch_size=1024):
    """The WordPiece ids of every word: a list (sentences) of lists (words) of lists of ids."""
    out = []
    for start in range(0, len(sentences), batch_size):
        out += preprocessor.tokenize_words([list(words) for words in sentences[start:start + batch_size]]).to_list()
    return out


@dataclasses.dataclass
class TaggingFeatures:
    """Features of a batch of sentences, and where each word's first piece is.

    `features` holds int32 [n, sequence] `input_ids`, `input_mask`,
    `segment_ids`; `positions` int32 [n, sequence] the first piece of word
    i at [:, i]; `num_words` how many words of each sentence fit; with tag
    ids, `labels` (the tag at each word's first piece) and `weights` (1.0
    there, else 0).
    """

    features: dict
    positions: np.ndarray
    num_words: np.ndarray
    labels: np.ndarray = None
    weights: np.ndarray = None

    @property
    def cut_words(self):
        return int(self.total_words - self.num_words.sum())

    total_words: int = 0


def encode(pieces, sequence_length, cls_id, sep_id, tag_ids=None):
    """Packs sentences of word pieces (from `word_pieces`) into `TaggingFeatures`.

    Args:
        pieces: per sentence, per word, the WordPiece ids.
        sequence_length: tokens per sentence, [CLS] and [SEP] included.
        cls_id: the id of [CLS].
        sep_id: the id of [SEP].
        tag_ids: per sentence, the tag id of each word (None to predict).

    Example:

    >>> out = encode([[[7], [8, 9], [10]]], sequence_length=6, cls_id=2, sep_id=3, tag_ids=[[1, 2, 1]])
    >>> out.features["input_ids"].tolist(), out.positions[0, :3].tolist(), out.num_words.tolist()
    ([[2, 7, 8, 9, 10, 3]], [1, 2, 4], [3])
    >>> out.labels.tolist(), out.weights.tolist()
    ([[0, 1, 2, 0, 1, 0]], [[0.0, 1.0, 1.0, 0.0, 1.0, 0.0]])
    """
    n = len(pieces)
    ids = np.zeros([n, sequence_length], np.int32)
    mask = np.zeros_like(ids)
    positions = np.zeros_like(ids)
    num_words = np.zeros([n], np.int32)
    labels = np.zeros_like(ids) if tag_ids is not None else None
    weights = np.zeros([n, sequence_length], np.float32) if tag_ids is not None else None
    for row, words in enumerate(pieces):
        tokens = [cls_id]
        for k, word in enumerate(words):
            if len(tokens) + len(word) + 1 > sequence_length:
                break
            positions[row, k] = len(tokens)
            if tag_ids is not None:
                labels[row, len(tokens)] = tag_ids[row][k]
                weights[row, len(tokens)] = 1.0
            tokens += word
            num_words[row] = k + 1
        tokens.append(sep_id)
        ids[row, :len(tokens)] = tokens
        mask[row, :len(tokens)] = 1
    features = {"input_ids": ids, "input_mask": mask, "segment_ids": mask.copy()}
    return TaggingFeatures(features, positions, num_words, labels, weights,
                           total_words=sum(len(words) for words in pieces))


def word_predictions(logits, encoded):
    """Per sentence, the predicted tag id of each word that fit ([n, sequence, tags] logits)."""
    best = np.argmax(logits, axis=-1)
    return [best[row, encoded.positions[row, :count]].tolist() for row, count in enumerate(encoded.num_words)]
