"""A WordPiece `vocab.txt` as the model needs it: tokens, hash, special-token ids.

One reader serves the whole project: `data_prep.vocab_file.Vocab`.
"""

from data_prep.vocab_file import Vocab


def load_vocab(path):
    """The tokens of a one-token-per-line vocabulary file, in id order."""
    return Vocab(path).tokens


def file_sha256(path):
    """The hash dataset_info.json records, to tie data to its vocabulary."""
    return Vocab(path).sha256


def special_token_ids(path):
    """`ElectraConfig` overrides for the vocabulary at `path`.

    Example:

    >>> config = ElectraConfig.for_size("small", **special_token_ids("vocab.txt"))
    """
    vocab = Vocab(path)
    return {"vocab_size": len(vocab), "pad_id": vocab.pad_id, "unk_id": vocab.unk_id, "cls_id": vocab.cls_id,
            "sep_id": vocab.sep_id, "mask_id": vocab.mask_id}
