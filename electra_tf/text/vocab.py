"""A WordPiece vocab.txt: tokens in id order, its hash, the special-token ids."""

import hashlib

from electra_tf.utils.errors import UserError

# The special tokens, by the ElectraConfig field that holds each one's id. Their ids are always
# read from the vocabulary, never assumed (BERT's vocab.txt has them at 0 and 100-103).
SPECIAL_TOKENS = {"pad_id": "[PAD]", "unk_id": "[UNK]", "cls_id": "[CLS]", "sep_id": "[SEP]", "mask_id": "[MASK]"}
# What build_vocab puts first, in this order.
RESERVED_TOKENS = tuple(SPECIAL_TOKENS.values())


def _read_bytes(path):
    if "://" not in str(path):
        # Plain open for local files: the data CLIs then reject bad inputs
        # before TensorFlow starts (and prints its start-up lines).
        with open(path, "rb") as f:
            return f.read()
    import tensorflow as tf  # pylint: disable=import-outside-toplevel

    try:  # gs:// and other remote file systems (TPU runs keep data in buckets)
        with tf.io.gfile.GFile(path, "rb") as f:
            return f.read()
    except tf.errors.OpError as e:
        raise OSError(e.message) from None


class Vocab:
    """Tokens in id order plus the ids the packer needs."""

    def __init__(self, path):
        self.path = path
        try:
            raw = _read_bytes(path)
        except OSError as e:
            raise UserError(f"cannot read vocab file {path} ({e.strerror or e}); "
                            "check --vocab_file") from None
        self.sha256 = hashlib.sha256(raw).hexdigest()
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise UserError(f"vocab file {path} is not UTF-8 ({e.reason} at byte {e.start}); "
                            "give a WordPiece vocab.txt") from None
        # Same rule as BERT's load_vocab: one token per "\n"-terminated line
        # (not str.splitlines, which also splits on U+2028 and friends),
        # surrounding whitespace stripped, so a standard vocab.txt loads unchanged.
        self.tokens = [line.strip() for line in text.rstrip("\n").split("\n")]
        self.ids = {}
        for i, token in enumerate(self.tokens):
            if token in self.ids:
                raise UserError(
                    f"vocab file {path} lists {token!r} twice (lines "
                    f"{self.ids[token] + 1} and {i + 1}); tokens must be unique")
            self.ids[token] = i
        missing = [t for t in RESERVED_TOKENS if t not in self.ids]
        if missing:
            raise UserError(f"vocab file {path} lacks {', '.join(missing)}; "
                            "use a BERT vocab.txt or one made by build_vocab")
        if not any(t and not (t.startswith("[") and t.endswith("]")) for t in self.tokens):
            # tf-text's WordPiece would fail later, deep in an export, with a traceback.
            raise UserError(f"vocab file {path} holds only special tokens, no word pieces; "
                            "learn one with build_vocab")
        for field, token in SPECIAL_TOKENS.items():
            setattr(self, field, self.ids[token])

    def special_token_ids(self):
        """`{"pad_id": ..., "mask_id": ...}`: the ids ElectraConfig takes from this vocabulary."""
        return {field: self.ids[token] for field, token in SPECIAL_TOKENS.items()}

    def __len__(self):
        return len(self.tokens)



def load_vocab(path):
    """The tokens of a one-token-per-line vocabulary file, in id order."""
    return Vocab(path).tokens


def file_sha256(path):
    """The hash dataset_info.json records, to tie data to its vocabulary."""
    return Vocab(path).sha256


def special_token_ids(path):
    """`ElectraConfig` overrides for the vocabulary at `path`: its size and special-token ids.

    Args:
        path: a WordPiece vocab.txt (BERT's, or one made by build_vocab).

    Example:

    >>> path = os.path.join(tempfile.mkdtemp(), "vocab.txt")
    >>> _ = open(path, "w").write("\\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "##s"]))
    >>> special_token_ids(path)
    {'vocab_size': 7, 'pad_id': 0, 'unk_id': 1, 'cls_id': 2, 'sep_id': 3, 'mask_id': 4}
    >>> ElectraConfig.for_size("tiny", **special_token_ids(path)).mask_id
    4
    """
    vocab = Vocab(path)
    return {"vocab_size": len(vocab), **vocab.special_token_ids()}
