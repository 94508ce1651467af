"""Shared helpers for the data tests (no tests here)."""

import collections
import os
import string
import subprocess
import sys

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
                          timeout=300)
