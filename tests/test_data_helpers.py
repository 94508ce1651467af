"""Shared helpers for the data tests (no tests here)."""

import collections
import glob
import os
import string
import subprocess
import sys

from conftest import SUBPROCESS_TIMEOUT

from data_prep import export_corpus
from electra_tf.text.vocab import RESERVED_TOKENS

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def write_demo_slice(path, num_documents=300):
    export_corpus.export_demo_corpus(str(path), num_documents)
    return str(path)


def quick_vocab(path, text, num_words=400):
    """A valid WordPiece vocab in milliseconds: characters, ##characters and
    the most frequent lower-cased words of `text` (no vocab learning)."""
    words = collections.Counter(
        w.strip(string.punctuation) for w in text.lower().split())
    chars = sorted(c for c in set(text.lower()) if c.strip() == c and c.strip())
    tokens = list(RESERVED_TOKENS) + chars + ["##" + c for c in chars]
    known = set(tokens)
    tokens += [w for w, _ in words.most_common(num_words)
               if w and w not in known]
    path.write_text("\n".join(tokens) + "\n", encoding="utf-8")
    return str(path)


def run_cli(module, *args):
    """Runs `python -m module args` and returns the CompletedProcess."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run([sys.executable, "-m", module, *map(str, args)],
                          cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=SUBPROCESS_TIMEOUT)


def packing_config(vocab, max_seq_length=128, across=False, seed=0, splitting="auto"):
    """The builder's settings, with the command line's defaults."""
    from data_prep import block_processing

    return block_processing.PackingConfig(
        vocab_path=str(vocab), lowercase=True, max_seq_length=max_seq_length,
        pack_across_documents=across, seed=seed, sentence_splitting=splitting)


def build_local(inputs, vocab, output_dir, shards=4, processes=1, text_field="text", overwrite=False,
                **settings):
    """Runs the local builder in this process on `inputs` (paths); returns its dataset_info."""
    from data_prep import build_pretraining_dataset, input_files

    resolved = input_files.resolve_inputs([str(p) for p in inputs], text_field)
    return build_pretraining_dataset.build(
        packing_config(vocab, **settings), resolved, str(output_dir), shards, processes,
        text_field=text_field, overwrite=overwrite, show_progress=False)


def shard_bytes(output_dir):
    """The bytes of every shard in `output_dir`, in name order."""
    return [open(p, "rb").read()
            for p in sorted(glob.glob(os.path.join(output_dir, "pretrain_*")))]


def demo_slice_with_vocab(root, num_documents):
    """The first documents of the demo corpus in root/corpus.txt: (its path, its text, a quick vocab of it)."""
    corpus = write_demo_slice(root / "corpus.txt", num_documents)
    with open(corpus, encoding="utf-8") as f:
        text = f.read()
    return corpus, text, quick_vocab(root / "vocab.txt", text)
