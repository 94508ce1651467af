"""Turns one block of documents into serialized examples (runs in workers).

Blocks are cut from the input in a fixed way and each gets its own random
stream derived from (seed, block index), so the output depends on the seed
and the input only, not on how many processes share the work. A block may
also name each of its documents (the Beam pipeline does): then every
document is packed with a random stream of its own, derived from (seed, its
name).
"""

import collections
import dataclasses
import os
import random

import numpy as np

from data_prep import example_encoding, packing, sentences

# Target characters per block: big enough to amortize a TF call, small
# enough that two processes get an even share of a small corpus.
BLOCK_CHARS = 1 << 18


@dataclasses.dataclass(frozen=True)
class PackingConfig:
    vocab_path: str
    lowercase: bool
    max_seq_length: int
    pack_across_documents: bool
    seed: int
    sentence_splitting: str = "auto"
    sentence_language: str = "en"


def make_blocks(documents, block_chars=None):
    """Groups a document stream into (index, [documents]) blocks."""
    block_chars = block_chars or BLOCK_CHARS
    block, chars, index = [], 0, 0
    for doc in documents:
        block.append(doc)
        chars += sum(map(len, doc))
        if chars >= block_chars:
            yield index, block
            block, chars, index = [], 0, index + 1
    if block:
        yield index, block


class BlockProcessor:
    """Holds one process's tokenizer and packs blocks with it."""

    def __init__(self, config):
        # Imported here so the parent can build blocks without loading TF twice.
        from electra_tf.text import tokenization  # pylint: disable=g-import-not-at-top
        from electra_tf.text.vocab import Vocab  # pylint: disable=g-import-not-at-top

        self._config = config
        self._vocab = Vocab(config.vocab_path)
        self._tokenizer = tokenization.WordpieceTokenizer(
            self._vocab.tokens, lowercase=config.lowercase)
        self._serializer = example_encoding.ExampleSerializer(
            config.max_seq_length, self._vocab.pad_id)
        self._limit = sentences.segment_limit(config.max_seq_length)
        is_continuation = np.array([t.startswith("##") for t in self._vocab.tokens])
        self._lines = sentences.LineTokenizer(
            self._tokenizer.tokenize, config.sentence_splitting, self._limit,
            is_continuation, config.sentence_language)

    def _packer(self, buffer, block_index):
        rng = random.Random(f"{self._config.seed}/{block_index}")
        if self._config.pack_across_documents:
            return packing.StreamPacker(buffer, rng)
        return packing.DocumentPacker(buffer, rng)

    def __call__(self, block):
        return self.pack(self.tokenize(block))

    def count_tokens(self, text):
        """The number of tokens of `text`."""
        return int(self._tokenizer.tokenize([text])[0].size)

    def tokenize(self, block):
        """The TF half of the work; it releases the GIL, so it can overlap pack().

        `block` is (index, documents) or (index, documents, document names).
        """
        index, documents = block[:2]
        lines = [line for doc in documents for line in doc]
        ids, splits, pieces, counts = self._lines(lines)
        return index, documents, block[2] if len(block) > 2 else None, ids, splits, pieces, counts

    def _document_packer(self, buffer, name):
        return packing.DocumentPacker(buffer, random.Random(f"{self._config.seed}/{name}"),
                                      draw_first_target=True)

    def pack(self, tokenized):
        """The Python half: packing, statistics and serialization."""
        index, documents, names, ids, splits, pieces, counts = tokenized
        if self._config.pack_across_documents:
            names = None  # one stream a block: the packer carries text from one document to the next
        stats = collections.Counter(counts)
        stats["tokens_read"] = int(len(ids))
        if not self._config.pack_across_documents:
            # The original recipe keeps at most `limit` tokens of a line.
            stats["dropped_long_line_tails"] = self._long_line_tails(splits, pieces)
        splits = splits.tolist()
        buffer = packing.ExampleBuffer(self._config.max_seq_length)
        packer = self._packer(buffer, index)
        packer_add = packer.add_document
        draws = [0, 0]
        cut_lines = sorted(pieces)
        next_cut = 0
        line = 0
        for d, doc in enumerate(documents):
            end = line + len(doc)
            if next_cut < len(cut_lines) and cut_lines[next_cut] < end:
                doc_pieces = []
                for i in range(line, end):
                    if next_cut < len(cut_lines) and cut_lines[next_cut] == i:
                        doc_pieces += pieces[i]
                        next_cut += 1
                    else:
                        doc_pieces.append((splits[i], splits[i + 1] - splits[i]))
            else:
                doc_pieces = packing.sentence_pieces(splits, line, end)
            if splits[end] == splits[line]:
                stats["empty_documents"] += 1
            else:
                stats["documents"] += 1
                if names is None:
                    packer_add(doc_pieces)
                else:
                    own = self._document_packer(buffer, names[d])
                    own.add_document(doc_pieces)
                    draws[0] += own.single_segment_draws
                    draws[1] += own.short_target_draws
            line = end
        packer.finish()
        stats["single_segment_draws"] = packer.single_segment_draws + draws[0]
        stats["short_target_draws"] = packer.short_target_draws + draws[1]
        tokens = buffer.tokens(ids, self._vocab.cls_id, self._vocab.sep_id)
        lengths, first_lengths = buffer.lengths()
        stats.update(self._example_stats(tokens, lengths, first_lengths))
        stats["dropped_crossing_example_end"] = (
            stats["tokens_read"] - stats["tokens_written"] - stats["dropped_long_line_tails"])
        return index, self._serializer.serialize(tokens, lengths,
                                                 first_lengths), stats

    def _long_line_tails(self, splits, pieces):
        """Tokens past `limit` in a line or piece: the recipe can never place them."""
        lengths = np.diff(splits)
        tails = np.maximum(lengths - self._limit, 0)
        for i, line_pieces in pieces.items():
            tails[i] = sum(max(0, length - self._limit) for _, length in line_pieces)
        return int(tails.sum())

    def _example_stats(self, tokens, lengths, first_lengths):
        special = (np.count_nonzero(tokens == self._vocab.cls_id) +
                   np.count_nonzero(tokens == self._vocab.sep_id))
        return {
            "examples": len(lengths),
            "positions": len(lengths) * self._config.max_seq_length,
            "real_positions": int(lengths.sum()),
            "tokens_written": int(len(tokens) - special),
            "unk_tokens": int(np.count_nonzero(tokens == self._vocab.unk_id)),
            "single_segment_examples": int(np.count_nonzero(
                first_lengths == lengths)),
        }


_PROCESSOR = None


def init_worker(config, threads_per_process):
    """Pool initializer: each worker builds its own tokenizer once."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads_per_process)
        tf.config.threading.set_inter_op_parallelism_threads(threads_per_process)
    except RuntimeError:
        pass  # TF already ran in this process (e.g. the spawning script's import)
    global _PROCESSOR
    _PROCESSOR = BlockProcessor(config)


def process_in_worker(block):
    return _PROCESSOR(block)
