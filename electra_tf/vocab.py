"""Reading a WordPiece `vocab.txt`: its tokens, hash and the ids of the special tokens."""

import hashlib

import tensorflow as tf

SPECIAL_TOKENS = {"pad_id": "[PAD]", "unk_id": "[UNK]", "cls_id": "[CLS]", "sep_id": "[SEP]", "mask_id": "[MASK]"}


def load_vocab(path):
    """The tokens of a one-token-per-line vocabulary file, in id order."""
    if not tf.io.gfile.exists(path):
        raise FileNotFoundError(f"vocabulary file {path} does not exist; pass --vocab_file pointing at a vocab.txt")
    with tf.io.gfile.GFile(path, "rb") as f:
        raw = f.read()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ValueError(f"vocabulary file {path} is not UTF-8 ({e}); give a WordPiece vocab.txt") from None
    # BERT's load_vocab rule: one token per line, surrounding whitespace stripped.
    return [line.strip() for line in text.rstrip("\n").split("\n")]


def file_sha256(path):
    """The hash dataset_info.json records, to tie data to its vocabulary."""
    with tf.io.gfile.GFile(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def special_token_ids(path):
    """`ElectraConfig` overrides for the vocabulary at `path`.

    Example:

    >>> config = ElectraConfig.for_size("small", **special_token_ids("vocab.txt"))
    """
    tokens = load_vocab(path)
    index = {}
    for i, token in enumerate(tokens):
        index.setdefault(token, i)
    missing = [tok for tok in SPECIAL_TOKENS.values() if tok not in index]
    if missing:
        raise ValueError(f"vocabulary {path} lacks the special tokens {', '.join(missing)}; "
                         "build it with data_prep.build_vocab or use a BERT vocab.txt")
    ids = {name: index[tok] for name, tok in SPECIAL_TOKENS.items()}
    return {"vocab_size": len(tokens), **ids}
