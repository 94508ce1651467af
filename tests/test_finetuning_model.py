"""ElectraPreprocessor, ElectraClassifier, layer-wise learning rates and loading pre-trained weights."""

import json
import math
import os
import re
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import FINETUNING_WORDS, SUBPROCESS_TIMEOUT
from test_optimization import _adam_reference

from electra_tf import ElectraAdamW
from electra_tf.finetuning.classifier import ElectraClassifier
from electra_tf.finetuning.optimization import create_finetuning_optimizer, layerwise_lr_multipliers
from electra_tf.finetuning.preprocessing import ElectraPreprocessor
from electra_tf.text.vocab import Vocab
from electra_tf.training import run_state
from electra_tf.utils.errors import UserError


def _truncate_seq_pair(a, b, max_length):
    """google-research/electra's rule, as a loop: pop from the end of the longer list, b on a tie."""
    a, b = list(a), list(b)
    while len(a) + len(b) > max_length:
        (a if len(a) > len(b) else b).pop()
    return a, b


@pytest.mark.parametrize("sequence_length", [9, 10])
def test_pair_and_single_truncation_and_layout(finetuning_model_dir, sequence_length):
    vocab = Vocab(f"{finetuning_model_dir}/vocab.txt")
    preprocessor = ElectraPreprocessor(vocab.path, sequence_length=sequence_length)
    words = FINETUNING_WORDS
    lengths = [(la, lb) for la in range(1, 11) for lb in range(1, 11)]
    text_a = [" ".join(words[:la]) for la, _ in lengths]
    text_b = [" ".join(words[10:10 + lb]) for _, lb in lengths]
    pair = {k: v.numpy() for k, v in preprocessor((text_a, text_b)).items()}
    single = {k: v.numpy() for k, v in preprocessor(text_a).items()}
    for row, (la, lb) in enumerate(lengths):
        a, b = _truncate_seq_pair([vocab.ids[w] for w in words[:la]], [vocab.ids[w] for w in words[10:10 + lb]],
                                  sequence_length - 3)
        ids = [vocab.cls_id, *a, vocab.sep_id, *b, vocab.sep_id]
        padding = sequence_length - len(ids)
        assert pair["input_ids"][row].tolist() == ids + [vocab.pad_id] * padding, (la, lb)
        assert pair["segment_ids"][row].tolist() == [0] * (len(a) + 2) + [1] * (len(b) + 1) + [0] * padding
        assert pair["input_mask"][row].tolist() == [1] * len(ids) + [0] * padding
        kept = [vocab.ids[w] for w in words[:la]][: sequence_length - 2]
        ids = [vocab.cls_id, *kept, vocab.sep_id]
        assert single["input_ids"][row].tolist() == ids + [vocab.pad_id] * (sequence_length - len(ids))
        assert not single["segment_ids"][row].any()


def test_preprocessor_tokenizes_like_pre_training(finetuning_model_dir):
    preprocessor = ElectraPreprocessor(f"{finetuning_model_dir}/vocab.txt", sequence_length=12)
    vocab = Vocab(f"{finetuning_model_dir}/vocab.txt")
    # BERT uncased: lower-cased, accents stripped, punctuation split, unknown words as pieces.
    ids = preprocessor(["The FILM was Good!", "ｘ"])["input_ids"].numpy()
    assert [vocab.tokens[i] for i in ids[0] if i] == ["[CLS]", "the", "film", "was", "good", "!", "[SEP]"]
    assert [vocab.tokens[i] for i in ids[1] if i] == ["[CLS]", "[UNK]", "[SEP]"]
    config = ElectraPreprocessor.from_config(preprocessor.get_config()).get_config()
    assert config == preprocessor.get_config()


def _tiny_classifier(finetuning_model_dir, **kwargs):
    return ElectraClassifier.from_pretrained(finetuning_model_dir, sequence_length=16, **kwargs)


@pytest.mark.parametrize("head", ["original", "transformers"])
def test_layerwise_multipliers_follow_the_formula_for_every_group(finetuning_model_dir, head):
    classifier = _tiny_classifier(finetuning_model_dir, num_classes=3, classifier_head=head)
    num_layers = classifier.config.num_layers
    decay = 0.8
    multipliers = layerwise_lr_multipliers(classifier, decay)
    groups = {}
    for variable in classifier.trainable_weights:
        path = variable.path
        if "/embeddings/" in path or "/embeddings_project/" in path:
            depth, group = 0, "embeddings"
        elif match := re.search(r"/layer_(\d+)/", path):
            depth, group = int(match.group(1)) + 1, f"layer_{match.group(1)}"
        else:
            assert "classifier_head" in path, path
            depth, group = num_layers + 2, "head"
        # The original's mapping: the top layer gets decay ** 2 (google-research/electra#51).
        assert multipliers[path] == pytest.approx(decay ** (num_layers + 2 - depth)), path
        groups.setdefault(group, set()).add(round(multipliers[path], 6))
    assert groups == {"embeddings": {0.4096}, "layer_0": {0.512}, "layer_1": {0.64}, "head": {1.0}}
    # The transformers head's inner dense layer learns at the head's rate too.
    assert sum("classifier_head" in p for p in multipliers) == (2 if head == "original" else 4)
    assert len(multipliers) == len(classifier.trainable_weights)
    assert any("embeddings_project" in p for p in multipliers)  # tiny has a projection (32 -> 64)
    assert layerwise_lr_multipliers(classifier, 0.0) == {}

    optimizer = create_finetuning_optimizer(classifier, num_train_steps=100, learning_rate=2e-4)
    assert optimizer.learning_rate_multipliers == multipliers
    assert float(optimizer._learning_rate(10)) == pytest.approx(2e-4 * 0.9)  # the warmup's peak
    assert float(optimizer._learning_rate(5)) == pytest.approx(2e-4 * 0.95 * 0.5)


def test_multipliers_scale_the_update_and_the_decay():
    rng = np.random.RandomState(0)
    w0 = rng.randn(3, 2).astype("float32")
    grads = [0.1 * rng.randn(3, 2).astype("float32") for _ in range(3)]
    scaled = keras.Variable(w0, name="scaled")
    plain = keras.Variable(w0, name="plain")
    optimizer = ElectraAdamW(1e-2, weight_decay=0.1, global_clipnorm=None,
                             learning_rate_multipliers={scaled.path: 0.25})
    for g in grads:
        optimizer.apply_gradients([(tf.constant(g), scaled), (tf.constant(g), plain)])
    np.testing.assert_allclose(scaled.numpy(), _adam_reference(w0, grads, 0.25e-2, 0.1, False), rtol=1e-5)
    np.testing.assert_allclose(plain.numpy(), _adam_reference(w0, grads, 1e-2, 0.1, False), rtol=1e-5)
    assert ElectraAdamW.from_config(optimizer.get_config()).learning_rate_multipliers == {scaled.path: 0.25}


def test_sparse_gradients_are_summed_before_clipping_and_the_update():
    # Token 1 occurs twice: IndexedSlices rows 1 and 1 must act as one gradient row of their sum.
    slices = tf.IndexedSlices(tf.constant([[1.0, 2.0], [3.0, -1.0], [0.5, 0.5]]), tf.constant([1, 1, 0]),
                              tf.constant([3, 2]))
    dense = tf.convert_to_tensor(slices)
    results = []
    for gradient in (slices, dense):
        variable = keras.Variable(np.ones((3, 2), "float32"))
        optimizer = ElectraAdamW(1e-2, weight_decay=0.0, global_clipnorm=1.0)
        optimizer.apply_gradients([(gradient, variable)])
        results.append((variable.numpy(), optimizer._velocities[0].numpy()))
    np.testing.assert_allclose(results[0][0], results[1][0], rtol=1e-6)
    np.testing.assert_allclose(results[0][1], results[1][1], rtol=1e-6)


def test_from_pretrained_takes_the_discriminator_weights(finetuning_model_dir):
    state = run_state.load(finetuning_model_dir)
    expected = [v.numpy() for v in run_state.restore_pretrainer(state).discriminator.encoder.weights]
    for path in (finetuning_model_dir, f"{finetuning_model_dir}/checkpoints/ckpt-7",
                 f"{finetuning_model_dir}/export/discriminator"):
        classifier = _tiny_classifier(path, num_classes=2)
        got = [v.numpy() for v in classifier.encoder.weights]
        assert len(got) == len(expected)
        for a, b in zip(got, expected):
            np.testing.assert_array_equal(a, b)
        assert classifier.config.hidden_dropout_prob == 0.1 and classifier.config.max_seq_length == 16
    random = _tiny_classifier(finetuning_model_dir, num_classes=2, load_weights=False)
    assert not np.array_equal(random.encoder.blocks[0].weights[0].numpy(), classifier.encoder.blocks[0].weights[0])
    with pytest.raises(UserError, match="is inside a model_dir; give the model_dir itself"):
        ElectraClassifier.from_pretrained(f"{finetuning_model_dir}/checkpoints")
    with pytest.raises(UserError, match="max_seq_length 512 exceeds the 128 positions"):
        ElectraClassifier.from_pretrained(finetuning_model_dir, sequence_length=512)
    with pytest.raises(UserError, match="pre-trained with lowercase=True"):
        ElectraClassifier.from_pretrained(finetuning_model_dir, lowercase=False)


def _reviews():
    good = ["a great film", "a lovely movie", "it was good", "very fine and great"]
    bad = ["a dull film", "an awful movie", "it was boring", "very bad and dull"]
    return good * 4 + bad * 4, [0] * 16 + [1] * 16


def test_classifier_fits_and_predicts_raw_strings(finetuning_model_dir):
    classifier = _tiny_classifier(finetuning_model_dir, num_classes=2)
    classifier.compile()  # the recipe, sized at fit for its updates
    texts, labels = _reviews()
    history = classifier.fit(texts, labels, epochs=2, batch_size=8, verbose=0, validation_data=(texts[:4], labels[:4]))
    assert all(np.isfinite(history.history["loss"])) and len(history.history["val_accuracy"]) == 2
    schedule = classifier.optimizer._learning_rate
    assert schedule.num_train_steps == math.ceil(32 / 8) * 2 and schedule.num_warmup_steps == pytest.approx(0.8)
    assert int(classifier.optimizer.iterations) == 8
    assert len(classifier.optimizer.learning_rate_multipliers) == len(classifier.trainable_weights)
    # The recipe's 1e-4 needs more than a few dozen updates from random weights; a larger rate shows it learns.
    classifier.compile(optimizer=create_finetuning_optimizer(classifier, 40, learning_rate=2e-3))
    history = classifier.fit(texts, labels, epochs=10, batch_size=8, verbose=0)
    losses = history.history["loss"]
    assert losses[-1] < 0.5 * losses[0], losses  # summed over each batch of 8
    assert history.history["accuracy"][-1] > 0.9
    logits = classifier.predict(["a great movie", "a boring film"], verbose=0)
    assert logits.shape == (2, 2) and np.argmax(logits, -1).tolist() == [0, 1]
    loss, accuracy = classifier.evaluate(texts, labels, verbose=0)
    assert accuracy > 0.9

    pairs = ElectraClassifier.from_pretrained(finetuning_model_dir, regression=True, sequence_length=16)
    pairs.compile()
    pairs.fit((["the cat sat", "he left"] * 4, ["on the mat", "went away"] * 4), [1.0, 3.0] * 4, epochs=1,
              batch_size=4, verbose=0)
    assert pairs.predict((["the cat sat"], ["on the mat"]), verbose=0).shape == (1, 1)

    rebuilt = ElectraClassifier.from_config(classifier.get_config())
    assert [v.shape for v in rebuilt.weights] == [v.shape for v in classifier.weights]
    assert rebuilt.preprocessor.get_config() == classifier.preprocessor.get_config()


def test_mirrored_fine_tuning_updates_like_one_device(finetuning_model_dir):
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "finetune_replicas_run.py")
    result = subprocess.run([sys.executable, script, finetuning_model_dir], capture_output=True, text=True,
                            timeout=SUBPROCESS_TIMEOUT)
    assert result.returncode == 0, result.stderr[-2000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    # The gradient (norm ~100) is clipped to 1 on both: clipping each replica's share differed by 3.5e-3.
    assert out["moved"] > 1e-2 and out["difference"] < 1e-5, out
