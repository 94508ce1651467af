"""run_finetuning end to end through the command line: a custom TSV, a GLUE directory, bad input, the export."""

import glob
import json
import os
import statistics
import subprocess
import sys

import pytest
import tensorflow as tf
from conftest import SUBPROCESS_TIMEOUT, USER_ENV, assert_finetuned_card, run_module
from test_finetuning_data import write_glue

from electra_tf.finetuning.tasks import glue_labels

GOOD = ["a great film", "a lovely movie", "it was good", "very fine and great", "good and lovely"]
BAD = ["a dull film", "an awful movie", "it was boring", "very bad and dull", "boring and awful"]


def _write_reviews(directory):
    os.makedirs(directory, exist_ok=True)
    rows = {"train": [(t, "pos") for t in GOOD * 3] + [(t, "neg") for t in BAD * 3] + [("  ", "pos")],
            "dev": [(t, "pos") for t in GOOD[:3]] + [(t, "neg") for t in BAD[:3]]}
    for split, examples in rows.items():
        with open(os.path.join(directory, f"{split}.tsv"), "w", encoding="utf-8") as f:
            f.write("review\tsentiment\n" + "".join(f"{t}\t{label}\n" for t, label in examples))
    with open(os.path.join(directory, "test.tsv"), "w", encoding="utf-8") as f:
        f.write("review\n" + "".join(f"{t}\n" for t in ["a great movie", "an awful film", "it was fine"]))
    return directory


def _tiny_flags(output_dir, *extra):
    return [f"--output_dir={output_dir}", "--max_seq_length=16", "--train_batch_size=8", "--eval_batch_size=4",
            "--log_every_steps=2", *extra]


def _error_lines(stderr):
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def _tags(directory):
    tags = set()
    for path in glob.glob(f"{directory}/events.out.tfevents.*"):
        for event in tf.compat.v1.train.summary_iterator(path):
            tags.update(value.tag for value in event.summary.value)
    return tags


PROBE = """
import json, sys
import tensorflow as tf, tensorflow_text  # noqa: F401  (the tokenizer's ops)
model = tf.saved_model.load(sys.argv[1])
texts = json.loads(sys.argv[2])
out = model.signatures["serve_text"](**{name: tf.constant(t) for name, t in texts.items()})
ids = tf.constant([[2, 30, 31, 3, 0, 0]], tf.int32)
raw = model.signatures["serving_default"](input_ids=ids, input_mask=tf.cast(ids > 0, tf.int32),
                                          segment_ids=tf.zeros_like(ids))
print(json.dumps({"electra_tf_imported": "electra_tf" in sys.modules,
                  "outputs": {k: v.numpy().tolist() for k, v in out.items() if v.dtype != tf.string},
                  "labels": [v.decode() for v in out["label"].numpy()] if "label" in out else None,
                  "raw": {k: v.numpy().tolist() for k, v in raw.items()}}))
"""


def _probe(export_dir, texts, cwd):
    result = subprocess.run([sys.executable, "-c", PROBE, str(export_dir), json.dumps(texts)], capture_output=True,
                            text=True, timeout=SUBPROCESS_TIMEOUT, cwd=str(cwd),
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_custom_tsv_two_trials_predictions_and_export(finetuning_model_dir, tmp_path):
    data = _write_reviews(tmp_path / "reviews")
    out = tmp_path / "out"
    result = run_module("electra_tf.run_finetuning", *_tiny_flags(
        out, f"--data_dir={data}", "--text_a_column=review", "--label_column=sentiment",
        f"--init_checkpoint={finetuning_model_dir}", "--num_trials=2", "--num_train_epochs=2",
        "--learning_rate=2e-3", "--max_train_examples=28"))
    assert "train: 28 examples" in result.stdout and "1 with an empty text skipped" in result.stdout
    assert "a fixed subset of the 30" in result.stdout
    results = json.loads((out / "eval_results.json").read_text())
    assert results["task"] == "custom" and results["num_trials"] == 2 and results["selected_by"] == "accuracy"
    trials = results["trials"]
    assert [t["seed"] for t in trials] == [0, 1]
    for trial in trials:
        assert [h["epoch"] for h in trial["history"]] == [1, 2]
        best = max(trial["history"], key=lambda h: h["accuracy"])
        assert trial["accuracy"] == best["accuracy"] and trial["epoch"] == best["epoch"]
    assert results["accuracy"] == statistics.median(t["accuracy"] for t in trials)
    assert results["median"] == {"accuracy": results["accuracy"]}
    assert results["examples"]["train"] == 28 and results["skipped"]["train"]["empty_texts"] == 1
    for k in (1, 2):
        assert glob.glob(f"{out}/trial_{k}/checkpoints/best-*.index")
        assert {"loss/train", "optimizer/learning_rate"} <= _tags(out / f"trial_{k}" / "train")
        assert _tags(out / f"trial_{k}" / "eval") == {"eval/accuracy"}
    config = json.loads((out / "finetuning_config.json").read_text())
    assert config["labels"] == ["neg", "pos"] and config["hyperparameters"]["learning_rate"] == 2e-3
    assert config["hyperparameters"]["layerwise_lr_decay"] == 0.8 and config["hyperparameters"]["num_trials"] == 2

    lines = (out / "predictions" / "test.tsv").read_text().splitlines()
    assert lines[0] == "index\tprediction" and [line.split("\t")[0] for line in lines[1:]] == ["0", "1", "2"]
    predicted = [line.split("\t")[1] for line in lines[1:]]
    assert set(predicted) <= {"neg", "pos"}

    # The export answers in a process that does not import electra_tf, as the run predicted.
    probe = _probe(out / "export", {"text": ["a great movie", "an awful film", "it was fine"]}, tmp_path)
    assert probe["electra_tf_imported"] is False
    assert probe["labels"] == predicted
    assert all(abs(sum(p) - 1) < 1e-5 for p in probe["outputs"]["probabilities"])
    assert len(probe["raw"]["probabilities"][0]) == 2 and len(probe["raw"]["logits"][0]) == 2
    assert (out / "export" / "labels.txt").read_text().split() == ["neg", "pos"]
    assert_finetuned_card(out, ["neg", "pos"])

    # make demo's last step, on this run: the dev accuracy and the labels of a few reviews.
    examples = tmp_path / "examples.tsv"
    examples.write_text("text\tlabel\na great movie\tpos\nan awful film\tneg\n", encoding="utf-8")
    demo = run_module("electra_tf.demo", f"--classifier_dir={out}", f"--examples_file={examples}", env=USER_ENV)
    assert demo.stderr == ""  # TensorFlow starts quietly
    shown = demo.stdout
    assert f"fine-tuned classifier: dev accuracy {results['accuracy']:.3f}" in shown
    rows = [line.split() for line in shown.splitlines()[-2:]]
    assert [row[1] for row in rows] == predicted[:2] and [row[2] for row in rows] == ["pos", "neg"]

    # Results already there: refused without --overwrite, and nothing is touched.
    before = (out / "eval_results.json").stat().st_mtime_ns
    again = run_module("electra_tf.run_finetuning", *_tiny_flags(out, f"--data_dir={data}",
                                                                 f"--init_checkpoint={finetuning_model_dir}"),
                       check=False)
    assert again.returncode == 2 and _error_lines(again.stderr) == [
        f"error: --output_dir {out} already holds the results of a finished run (eval_results.json, export, "
        "finetuning_config.json, predictions); pass --overwrite to replace them or choose another directory"]
    assert (out / "eval_results.json").stat().st_mtime_ns == before


def test_glue_directory_from_an_export_randomly_initialised(finetuning_model_dir, tmp_path):
    data = write_glue(tmp_path / "glue", "mnli")
    out = tmp_path / "mnli"
    run_module("electra_tf.run_finetuning", *_tiny_flags(
        out, "--task=mnli", f"--data_dir={data}", f"--init_checkpoint={finetuning_model_dir}/export/discriminator",
        "--random_init", "--num_train_epochs=1"))
    results = json.loads((out / "eval_results.json").read_text())
    assert set(results) >= {"matched_accuracy", "mismatched_accuracy", "epoch"}
    assert results["selected_by"] == "matched_accuracy"
    assert results["mismatched_accuracy"] in (0.0, 0.5, 1.0)  # two examples
    config = json.loads((out / "finetuning_config.json").read_text())
    assert config["model"].startswith("randomly initialised like")
    assert config["hyperparameters"]["num_train_epochs"] == 1
    for name in ("MNLI-m.tsv", "MNLI-mm.tsv", "AX.tsv"):
        lines = (out / "predictions" / name).read_text().splitlines()
        assert lines[0] == "index\tprediction" and lines[1].split("\t")[0] == "0"
        assert lines[1].split("\t")[1] in glue_labels("mnli")
    probe = _probe(out / "export", {"text_a": ["It rains."], "text_b": ["It is wet."]}, tmp_path)  # a pair task
    assert probe["labels"][0] in glue_labels("mnli") and len(probe["outputs"]["probabilities"][0]) == 3


@pytest.mark.parametrize("case", ["vocab", "size", "column", "overwrite_foreign", "epochs", "multi_worker"])
def test_bad_input_is_one_line_and_writes_nothing(finetuning_model_dir, tmp_path, case):
    data = _write_reviews(tmp_path / "reviews")
    other_vocab = tmp_path / "other_vocab.txt"
    other_vocab.write_text("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nword\n", encoding="utf-8")
    out = tmp_path / "out"
    common = [f"--data_dir={data}", "--text_a_column=review", "--label_column=sentiment",
              f"--init_checkpoint={finetuning_model_dir}"]
    flags, expected = {
        "vocab": ([*common, f"--vocab_file={other_vocab}"],
                  f"error: --vocab_file {other_vocab} is not the vocabulary of {finetuning_model_dir}"),
        "size": ([*common, "--hidden_size=128"],
                 f"error: --hidden_size=128 disagrees with {finetuning_model_dir}, whose model has hidden_size 64; "
                 "drop --hidden_size"),
        "column": ([f"--data_dir={data}", f"--init_checkpoint={finetuning_model_dir}"],
                   f"error: {data}/train.tsv has no column 'text' (columns: review, sentiment); set --text_a_column"),
        "overwrite_foreign": ([*common, "--overwrite"], f"error: --output_dir {out} is not empty and is not a "
                                                        "run_finetuning output"),
        "epochs": ([*common, "--num_train_epochs=1.5"], "error: --num_train_epochs must be a whole number"),
        "multi_worker": ([*common, "--distribution_strategy=multi_worker_mirrored"],
                         "error: fine-tuning trains with Keras fit, which fails under MultiWorkerMirroredStrategy"),
    }[case]
    if case == "overwrite_foreign":
        out.mkdir()
        (out / "notes.txt").write_text("mine")
    result = run_module("electra_tf.run_finetuning", *_tiny_flags(out, *flags), check=False)
    assert result.returncode == 2, result.stderr[-2000:]
    errors = _error_lines(result.stderr)
    assert len(errors) == 1 and errors[0].startswith(expected), errors
    assert os.listdir(out) == ["notes.txt"] if case == "overwrite_foreign" else not out.exists()
