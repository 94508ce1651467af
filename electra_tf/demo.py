r"""Shows a trained discriminator pointing at swapped words, and a fine-tuned classifier at work.

    python -m electra_tf.demo --export_dir=demo_out/model/export/discriminator
    python -m electra_tf.demo --classifier_dir=demo_out/finetune --examples_file=demo_out/rotten_tomatoes/test.tsv

The first loads the exported discriminator (as any user would, through
`serve_text`), feeds sentences in which one word was swapped for an
implausible one, and prints each token with the probability that it was
replaced. The second prints a fine-tuning run's dev accuracy and the labels
its exported classifier gives a few reviews of the test file.
"""

import csv
import json
import os

from absl import app, flags

from electra_tf.utils import cli
from electra_tf.utils.errors import UserError

# (sentence, the word swapped in). Every word, the swapped one included, occurs at
# least MIN_CORPUS_COUNT times in the demo corpus (checked by a test): a word the
# model has barely seen looks suspicious wherever it stands, which would measure
# rarity, not whether the word fits. The swap is a noun of another kind. Each half was
# written under these rules before any model was scored on it; there are 16 because
# with 8 the count swung from 2 to 8 between equally good models (bench/RESULTS.md).
MIN_CORPUS_COUNT = 40
SWAPPED = [
    ("the river flows through the city and into the philosophy .", "philosophy"),
    ("he was born in london and studied law at the fish .", "fish"),
    ("the species is found in the forests of south america and lives on small novels .", "novels"),
    ("the film was directed by a famous director and won several rivers .", "rivers"),
    ("the church was built in the third century and is the oldest planet in the city .", "planet"),
    ("she became the first woman to be elected species of the country .", "species"),
    ("the company is based in germany and produces electric poems .", "poems"),
    ("the poet wrote many books and is regarded as one of the greatest mountains of the century .",
     "mountains"),
    ("the team played its home games at a large theory in the north of the city .", "theory"),
    ("the road was built along the river and connects the two parts of the protein .", "protein"),
    ("the island has a tropical climate and most of it is covered by dense languages .", "languages"),
    ("the museum holds paintings by the most famous islands of the period .", "islands"),
    ("the city has a population of over one million stars .", "stars"),
    ("the war ended with a peace treaty between the two trees .", "trees"),
    ("the bird is known for its long tail and its blue songs .", "songs"),
    ("the king was the son of a royal family and his body was placed in the minerals of the capital .",
     "minerals"),
]

flags.DEFINE_string("export_dir", None, "An exported discriminator (<model_dir>/export/discriminator).")
flags.DEFINE_string("classifier_dir", None, "A run_finetuning --output_dir: show its dev metrics and its exported "
                                            "classifier's labels for --examples_file.")
flags.DEFINE_string("examples_file", None, "A TSV with a header and text and label columns (a test file).")
flags.DEFINE_integer("num_examples", 8, "Reviews of --examples_file to label.")
FLAGS = flags.FLAGS


def swapped_word_positions(tokens, word):
    """Indices of the WordPiece tokens that make up `word` (its first occurrence)."""
    for start, token in enumerate(tokens):
        if token != word[: len(token)]:
            continue
        text, end = token, start + 1
        while end < len(tokens) and tokens[end].startswith("##") and len(text) < len(word):
            text += tokens[end][2:]
            end += 1
        if text == word:
            return list(range(start, end))
    return []


def report(tokens_batch, probabilities_batch):
    """Prints one line per sentence; returns how many had their top token in the swapped word."""
    hits = 0
    for (_, word), tokens, probabilities in zip(SWAPPED, tokens_batch, probabilities_batch):
        tokens = [t.decode() for t in tokens if t]
        probabilities = probabilities[: len(tokens)]
        swapped = swapped_word_positions(tokens, word)
        inner = range(1, len(tokens) - 1)  # skip [CLS] and [SEP]
        top = max(inner, key=lambda i: probabilities[i])
        hit = top in swapped
        hits += hit
        shown = [f"{'*' if i in swapped else ''}{tokens[i]}({probabilities[i]:.2f})" for i in inner]
        print(f"{'HIT ' if hit else 'miss'} {' '.join(shown)}")
    return hits


def read_examples(path, count):
    """The first `count` (text, label) rows of a TSV with `text` and `label` columns (no quoting)."""
    with open(path, encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    if not rows or "text" not in rows[0]:
        raise UserError(f"--examples_file {path} needs a header with a text column (and label); give a test.tsv "
                        "of data_prep.export_rotten_tomatoes")
    return [(row["text"], row.get("label", "")) for row in rows[:count]]


def show_classifier(tf, classifier_dir, examples_file, count):
    """Prints the run's dev metrics and its exported classifier's labels for the first reviews."""
    results_path = os.path.join(classifier_dir, "eval_results.json")
    export_dir = os.path.join(classifier_dir, "export")
    if not os.path.exists(results_path) or not os.path.isdir(export_dir):
        raise UserError(f"--classifier_dir {classifier_dir} holds no finished fine-tuning run (eval_results.json and "
                        "export/); run python -m electra_tf.run_finetuning first")
    with open(results_path, encoding="utf-8") as f:
        results = json.load(f)
    metric = results["selected_by"]
    epoch = f" (best epoch: {results['epoch']})" if "epoch" in results else ""
    print(f"fine-tuned classifier: dev {metric} {results[metric]:.3f}{epoch}")
    examples = read_examples(examples_file, count)
    model = tf.saved_model.load(export_dir)
    out = model.signatures["serve_text"](text=tf.constant([text for text, _ in examples]))
    print("P(predicted)  predicted  true      review")
    for (text, label), predicted, probabilities in zip(examples, out["label"].numpy(), out["probabilities"].numpy()):
        shown = text if len(text) <= 90 else text[:87] + "..."
        print(f"{probabilities.max():12.2f}  {predicted.decode():9s}  {label:8s}  {shown}")


def main(argv):
    del argv
    cli.start_tensorflow()
    import tensorflow as tf
    import tensorflow_text  # noqa: F401  (registers the tokenizer ops the SavedModel uses)

    if FLAGS.classifier_dir:
        if not FLAGS.examples_file:
            raise UserError("--classifier_dir needs --examples_file (a TSV of reviews to label)")
        show_classifier(tf, FLAGS.classifier_dir, FLAGS.examples_file, FLAGS.num_examples)
        return
    if not FLAGS.export_dir or not os.path.isdir(FLAGS.export_dir):
        raise UserError(f"--export_dir {FLAGS.export_dir} is not an exported model; run make demo or "
                        "python -m electra_tf.export first")
    model = tf.saved_model.load(FLAGS.export_dir)
    out = model.signatures["serve_text"](tf.constant([sentence for sentence, _ in SWAPPED]))
    print("P(replaced) per token; * marks the swapped word:")
    hits = report(out["tokens"].numpy(), out["rtd_probabilities"].numpy())
    print(f"the most suspicious token was the swapped word in {hits} of {len(SWAPPED)} sentences")


if __name__ == "__main__":
    app.run(cli.run(main))
