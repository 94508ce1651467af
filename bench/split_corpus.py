r"""Splits a blank-line corpus in two, so swap_eval can score sentences a model never saw.

    .venv/bin/python bench/split_corpus.py --corpus demo_out/wiki.txt --heldout_documents 3000 \
        --heldout_output heldout.txt --train_output train.txt

`bench/swap_eval.py` samples its sentences from the first 3,000 documents of
`--corpus`. Scored on the corpus a model trained on, it rewards memorising
those sentences as well as detecting swaps (bench/RESULTS.md). Build the
training data from `train.txt` (the documents after the first N, with the
usual vocabulary) and score on `heldout.txt` to measure detection alone.
"""

import argparse

from electra_tf.utils.atomic import write_text_atomically  # noqa: E402


def _as_text(documents):
    return "".join(d.strip("\n") + "\n\n" for d in documents)


def split_documents(text, heldout_documents):
    """(first N documents, the rest), each as blank-line-separated text ending in a blank line."""
    documents = [d for d in text.split("\n\n") if d.strip()]
    if not 0 < heldout_documents < len(documents):
        raise ValueError(f"--heldout_documents must be between 1 and {len(documents) - 1}, "
                         f"got {heldout_documents}")
    return _as_text(documents[:heldout_documents]), _as_text(documents[heldout_documents:])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", required=True, help="Blank-line corpus (export_corpus output).")
    parser.add_argument("--heldout_documents", type=int, default=3000,
                        help="Documents held out; swap_eval samples the first 3,000.")
    parser.add_argument("--heldout_output", required=True)
    parser.add_argument("--train_output", required=True)
    args = parser.parse_args()
    try:
        with open(args.corpus, encoding="utf-8") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError) as e:
        parser.error(f"cannot read --corpus {args.corpus} as UTF-8 text ({e}); pass an export_corpus output")
    try:
        heldout, train = split_documents(text, args.heldout_documents)
    except ValueError as e:
        parser.error(str(e))
    for path, part in ((args.heldout_output, heldout), (args.train_output, train)):
        try:
            write_text_atomically(path, part)
        except OSError as e:
            parser.error(f"cannot write {path} ({e.strerror}); create its directory or choose another path")


if __name__ == "__main__":
    main()
