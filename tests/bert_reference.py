"""The `tokenizers` package's BERT WordPiece, the reference for parity checks.

Used by tests and benchmarks only; `tokenizers` is a dev requirement and the
pipeline itself never imports this module.
"""


def reference_tokenizer(vocab_tokens):
    """BertNormalizer + BertPreTokenizer + WordPiece with BERT's settings."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers  # pylint: disable=import-outside-toplevel
    tokenizer = Tokenizer(models.WordPiece(
        {token: i for i, token in enumerate(vocab_tokens)}, unk_token="[UNK]",
        max_input_chars_per_word=100))
    tokenizer.normalizer = normalizers.BertNormalizer(
        clean_text=True, handle_chinese_chars=True, strip_accents=True,
        lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    return tokenizer


def reference_ids(vocab_tokens, lines):
    return [e.ids for e in reference_tokenizer(vocab_tokens).encode_batch(
        lines, add_special_tokens=False)]
