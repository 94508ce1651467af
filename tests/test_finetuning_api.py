"""The fine-tuning models' Python API as keras-hub and transformers users expect it: label names, classify,
one-line input errors before any graph runs, export, presets, summary."""

import io
import json
import os
import re
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import ROOT, SUBPROCESS_TIMEOUT

from electra_tf import ElectraClassifier, ElectraQuestionAnswerer, ElectraTagger, QAConfig
from electra_tf.finetuning.base import FinetuningModel
from electra_tf.finetuning.optimization import create_finetuning_optimizer
from electra_tf.utils.errors import UserError

GOOD = ["a great film", "a lovely movie", "it was good", "very fine and great"]
BAD = ["a dull film", "an awful movie", "it was boring", "very bad and dull"]


def _reviews():
    return GOOD * 4 + BAD * 4, ["positive"] * 16 + ["negative"] * 16


@pytest.fixture(scope="module")
def trained(finetuning_model_dir):
    """A classifier fit on string labels (learnt, sorted), with a rate that learns in a few epochs."""
    classifier = ElectraClassifier.from_pretrained(finetuning_model_dir, sequence_length=16)
    texts, labels = _reviews()
    classifier.compile(optimizer=create_finetuning_optimizer(classifier, 40, learning_rate=2e-3))
    classifier.fit(texts, labels, epochs=10, batch_size=8, verbose=0)
    return classifier


def test_classify_gives_label_names_and_probabilities(trained):
    assert trained.labels == ["negative", "positive"] and trained.pair is False
    texts = ["a great movie", "a boring film", "it was lovely"]
    results = trained.classify(texts)
    assert [r["label"] for r in results] == ["positive", "negative", "positive"]
    probabilities = tf.nn.softmax(trained.predict(texts, verbose=0)).numpy()
    assert [r["score"] for r in results] == pytest.approx(probabilities.max(axis=1).tolist(), abs=1e-6)
    assert trained.classify("a great movie") == results[:1]  # one string: a list of one, as a pipeline
    ranked = trained.classify(texts, top_k=None)
    assert [[r["label"] for r in row] for row in ranked][1] == ["negative", "positive"]
    assert [sum(r["score"] for r in row) for row in ranked] == pytest.approx([1.0] * 3)
    # String labels go through the names: evaluated by name or by id, the same accuracy.
    texts, labels = _reviews()
    by_name = trained.evaluate(texts, labels, verbose=0)[1]
    by_id = trained.evaluate(texts, [trained.labels.index(label) for label in labels], verbose=0)[1]
    assert by_name == by_id > 0.9


def test_given_labels_and_integer_labels(finetuning_model_dir):
    named = ElectraClassifier.from_pretrained(finetuning_model_dir, sequence_length=16, labels=["b", "a", "c"])
    assert named.num_classes == 3 and named.label_names == ["b", "a", "c"]
    named.compile()
    named.fit(["a film", "a movie"], ["c", "a"], epochs=1, verbose=0)
    assert named.labels == ["b", "a", "c"]  # given names keep their order
    ids = ElectraClassifier.from_pretrained(finetuning_model_dir, sequence_length=16, num_classes=3)
    ids.compile()
    ids.fit(["a film", "a movie"], np.array([2, 0]), epochs=1, verbose=0)
    assert ids.labels == ["0", "1", "2"] and {r["label"] for r in ids.classify(["a film"] * 2)} <= {"0", "1", "2"}
    numeric = ElectraClassifier.from_pretrained(finetuning_model_dir, sequence_length=16, num_classes=3)
    numeric.compile()
    numeric.fit(["a", "b", "c"], ["10", "2", "1"], epochs=1, verbose=0)
    assert numeric.labels == ["1", "2", "10"]  # integers in numeric order, as run_finetuning reads a file's


def _tiny(finetuning_model_dir, cls=ElectraClassifier, **kwargs):
    return cls.from_pretrained(finetuning_model_dir, sequence_length=24, **kwargs)


# name: (model kind, the call, what the one line says)
BAD_INPUTS = {
    "one string to predict": ("named", lambda m: m.predict("a great film"), r'one string, not a batch: .*\["a great'),
    "empty batch": ("named", lambda m: m.predict([]), "empty batch"),
    "empty classify": ("named", lambda m: m.classify([]), "empty batch"),
    "numbers as texts": ("named", lambda m: m.predict([1, 2]), "item 0 is an int"),
    "None among texts": ("named", lambda m: m.classify(["a film", None]), "item 1 is a NoneType"),
    "pair lengths": ("named", lambda m: m.predict((["a film"], ["a", "b"]))
                     , "1 first texts, 2 second texts"),
    "labels length": ("named", lambda m: m.fit(["a film", "a movie"], ["pos"]), "1 values for 2 examples"),
    "unknown label name": ("named", lambda m: m.fit(["a film"], ["neutral"]),
                           "'neutral' in y is not one of the classifier's labels"),
    "label outside the classes": ("plain", lambda m: m.fit(["a film", "a movie"], [0, 5]),
                                  "label 5 in y is outside the classes 0..1"),
    "negative label": ("plain", lambda m: m.evaluate(["a film"], [-1]), "outside the classes"),
    "fractional label": ("plain", lambda m: m.fit(["a film"], [0.5]), "must be class ids"),
    "too many label names": ("plain", lambda m: m.fit(["a", "b", "c"], ["x", "y", "z"]),
                             "names 3 classes .* num_classes=2"),
    "names before any": ("plain", lambda m: m.evaluate(["a film"], ["pos"]), "has none yet"),
    "no labels to fit": ("plain", lambda m: m.fit(["a film"]), "fit needs the labels"),
    "string regression target": ("regression", lambda m: m.fit(["a film"], ["high"]), "must be numbers"),
    "not a batch": ("plain", lambda m: m.predict(3), "got an int"),
    "bad top_k": ("named", lambda m: m.classify(["a film"], top_k=0), "top_k must be"),
    "tagger: a text": ("tagger", lambda m: m.predict(["the cat sat"]), "split each text into words"),
    "tagger: empty": ("tagger", lambda m: m.predict([]), "empty batch"),
    "tagger: tag count": ("tagger", lambda m: m.fit([["the", "cat"]], [["B"]]), "2 words but 1 tags"),
    "tagger: unknown tag": ("tagger", lambda m: m.fit([["the", "cat"]], [["B", "X"]]),
                            "'X' of sentence 0 is not one of the tagger's tags"),
    "tagger: a number word": ("tagger", lambda m: m.predict([["the", 3]]), "holds an int"),
    "qa: one list": ("qa", lambda m: m.predict(["who sat ?"]), r"tuple of two lists: \(questions, contexts\)"),
    "qa: lengths": ("qa", lambda m: m.predict((["who ?"], ["the cat", "sat"])), "1 first texts, 2 second texts"),
    "qa: answer count": ("qa", lambda m: m.fit((["who ?"], ["the cat sat"]), []), "one answer per question"),
    "qa: answer not a dict": ("qa", lambda m: m.fit((["who ?"], ["the cat sat"]), ["cat"]), "answer 0 is 'cat'"),
    "qa: answer offset": ("qa", lambda m: m.fit((["who ?"], ["the cat sat"]), [{"text": "cat", "answer_start": 0}]),
                          "does not occur at character 0"),
}


@pytest.fixture(scope="module")
def models(finetuning_model_dir):
    made = {"named": _tiny(finetuning_model_dir, labels=["neg", "pos"]), "plain": _tiny(finetuning_model_dir),
            "regression": _tiny(finetuning_model_dir, regression=True),
            "tagger": _tiny(finetuning_model_dir, cls=ElectraTagger, tags=["B", "I", "O"]),
            "qa": ElectraQuestionAnswerer.from_pretrained(finetuning_model_dir, sequence_length=24,
                                                          qa=QAConfig(max_query_length=8, doc_stride=8,
                                                                       na_threshold=1e9))}
    for model in made.values():
        model.compile()
    return made


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_is_one_line_before_any_graph_runs(case, models, monkeypatch):
    kind, call, expected = BAD_INPUTS[case]

    def graph_ran(*args, **kwargs):
        raise AssertionError("Keras ran before the input was checked")

    for name in ("fit", "predict", "evaluate"):
        monkeypatch.setattr(keras.Model, name, graph_ran)
    with pytest.raises(UserError) as error:
        call(models[kind])
    message = str(error.value)
    assert re.search(expected, message) and "\n" not in message, message
    assert models["plain"].labels is None  # a refused fit learns nothing


PROBE = """
import json, sys
import tensorflow as tf, tensorflow_text  # noqa: F401  (the tokenizer's ops)
model = tf.saved_model.load(sys.argv[1])
out = model.signatures["serve_text"](**{k: tf.constant(v) for k, v in json.loads(sys.argv[2]).items()})
print(json.dumps({"electra_tf_imported": "electra_tf" in sys.modules, "outputs": sorted(out),
                  "labels": [v.decode() for v in out["label"].numpy()],
                  "probabilities": out["probabilities"].numpy().tolist()}))
"""


def _serve(export_dir, inputs, cwd):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run([sys.executable, "-c", PROBE, str(export_dir), json.dumps(inputs)], capture_output=True,
                            text=True, timeout=SUBPROCESS_TIMEOUT, cwd=str(cwd),
                            env={**env, "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_export_serves_text_in_a_process_without_electra_tf(trained, finetuning_model_dir, tmp_path):
    texts = ["a great movie", "a boring film", "it was lovely"]
    expected = trained.classify(texts)
    export_dir = trained.export(str(tmp_path / "export"))
    served = _serve(export_dir, {"text": texts}, tmp_path)
    assert served["electra_tf_imported"] is False
    assert served["outputs"] == ["label", "label_id", "logits", "probabilities"]  # as run_finetuning's export
    assert served["labels"] == [r["label"] for r in expected] == ["positive", "negative", "positive"]
    assert np.max(served["probabilities"], axis=1) == pytest.approx([r["score"] for r in expected], abs=1e-5)
    assert (tmp_path / "export" / "labels.txt").read_text().split() == ["negative", "positive"]
    # Right after from_pretrained, never called, and for sentence pairs: serve_text takes text_a and text_b.
    pairs = ElectraClassifier.from_pretrained(finetuning_model_dir, sequence_length=16, labels=["no", "yes"], pair=True)
    served = _serve(pairs.export(str(tmp_path / "pairs")), {"text_a": ["the cat sat"], "text_b": ["on the mat"]},
                    tmp_path)
    assert served["labels"] == [pairs.classify((["the cat sat"], ["on the mat"]))[0]["label"]]


def test_tagger_and_answerer_export_after_from_pretrained(models, tmp_path):
    tagger, answerer = models["tagger"], models["qa"]
    served = tf.saved_model.load(tagger.export(str(tmp_path / "tagger"))).signatures["serve_text"](
        tf.constant(["the cat sat"]))
    assert [t.decode() for t in served["tags"].numpy()[0]] == tagger.predict([["the", "cat", "sat"]])[0]
    assert (tmp_path / "tagger" / "tags.txt").read_text().split() == ["B", "I", "O"]
    served = tf.saved_model.load(answerer.export(str(tmp_path / "qa"), no_answer=False)).signatures["serve_text"](
        questions=tf.constant(["who sat ?"]), contexts=tf.constant(["the cat sat on the mat"]))
    predicted = answerer.predict((["who sat ?"], ["the cat sat on the mat"]))[0]  # no "no answer" (threshold 1e9)
    assert served["answer"].numpy()[0].decode() == predicted["answer"] != ""


def test_presets_round_trip_with_identical_predictions(trained, models, tmp_path):
    texts = ["a great movie", "a boring film"]
    preset = tmp_path / "classifier"
    trained.save_to_preset(str(preset))
    assert sorted(os.listdir(preset)) == ["assets", "config.json", "metadata.json", "model.weights.h5",
                                          "tokenizer.json"]
    assert (preset / "assets" / "tokenizer" / "vocabulary.txt").read_text().split() == trained.preprocessor.vocabulary
    assert json.loads((preset / "metadata.json").read_text())["parameter_count"] == trained.count_params()
    assert json.loads((preset / "tokenizer.json").read_text())["config"]["vocabulary"] is None
    restored = ElectraClassifier.from_preset(str(preset))
    assert restored.labels == trained.labels and restored.pair is False
    for before, after in zip(trained.weights, restored.weights, strict=True):
        assert before.path == after.path
        np.testing.assert_array_equal(before.numpy(), after.numpy())
    # Identical outputs op by op; predict's graphs, traced apart, may round the last bit differently.
    features = trained.preprocessor(texts)
    np.testing.assert_array_equal(restored(features, training=False), trained(features, training=False))
    np.testing.assert_allclose(restored.predict(texts, verbose=0), trained.predict(texts, verbose=0), rtol=1e-6)
    assert [r["label"] for r in restored.classify(texts)] == [r["label"] for r in trained.classify(texts)]

    tagger = models["tagger"]
    tagger.save_to_preset(str(tmp_path / "tagger"))
    restored_tagger = ElectraTagger.from_preset(str(tmp_path / "tagger"))
    features = tagger.preprocessor(["the cat sat on the mat"])
    np.testing.assert_array_equal(restored_tagger(features, training=False), tagger(features, training=False))
    assert restored_tagger.predict([["the", "cat", "sat"]]) == tagger.predict([["the", "cat", "sat"]])
    answerer = models["qa"]
    answerer.save_to_preset(str(tmp_path / "qa"))
    restored_answerer = FinetuningModel.from_preset(str(tmp_path / "qa"))
    assert type(restored_answerer) is ElectraQuestionAnswerer and restored_answerer.qa == answerer.qa
    question = (["who sat ?"], ["the cat sat on the mat"])
    assert restored_answerer.predict(question) == answerer.predict(question)

    with pytest.raises(UserError, match="holds an ElectraTagger; load it with ElectraTagger.from_preset"):
        ElectraClassifier.from_preset(str(tmp_path / "tagger"))
    with pytest.raises(UserError, match="is not a preset of an electra-tf fine-tuned model; .* use "
                                        "ElectraClassifier.from_pretrained"):
        ElectraClassifier.from_preset(os.path.join(ROOT, "electra_tf", "configs"))
    with pytest.raises(UserError, match="exists and is not a preset"):
        trained.save_to_preset(os.path.join(tmp_path, "tagger", "assets"))


@pytest.mark.parametrize("kind", ["named", "tagger", "qa"])
def test_summary_counts_every_weight_once(kind, models):
    model = models[kind]
    lines = io.StringIO()
    model.summary(print_fn=lambda line, **kwargs: lines.write(line + "\n"))
    text = lines.getvalue()
    rows = [int(n.replace(",", "")) for n in re.findall(r"│\s+([\d,]+) │", text)]
    total = int(re.search(r"Total params: ([\d,]+)", text).group(1).replace(",", ""))
    unique = sum(int(np.prod(v.shape)) for v in {id(v): v for v in model.weights}.values())
    assert sum(rows) == total == model.count_params() == unique, text
