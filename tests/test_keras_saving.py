"""Keras conventions: every layer and model rebuilds from get_config and round-trips through .keras files."""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import random_batch

from electra_tf import (
    DiscriminatorHead,
    ElectraConfig,
    ElectraDiscriminator,
    ElectraEmbeddings,
    ElectraEncoder,
    ElectraGenerator,
    ElectraPretrainer,
    GdesEmbeddings,
    GeneratorHead,
    create_optimizer,
)
from electra_tf.finetuning.classifier import TransformersClassificationHead
from electra_tf.finetuning.qa.head import LinearQAHead

TINY = ElectraConfig.for_size("tiny", vocab_size=300, pad_id=0, unk_id=1, cls_id=2, sep_id=3, mask_id=4)


def _batch(size=4):
    return {k: tf.constant(v) for k, v in random_batch(TINY, size, seed=3).items()}


def _positions(size=4):
    return tf.constant(np.tile(np.arange(1, 6, dtype="int32"), (size, 1)))


def _round_trip(model, tmp_path):
    path = str(tmp_path / f"{model.name}.keras")
    model.save(path)
    return keras.saving.load_model(path)


def test_discriminator_round_trips_through_a_keras_file(tmp_path):
    model = ElectraDiscriminator(TINY)
    before = model(_batch(), training=False)
    loaded = _round_trip(model, tmp_path)
    assert isinstance(loaded, ElectraDiscriminator) and loaded.config == TINY
    after = loaded(_batch(), training=False)
    for key in ("sequence_output", "logits"):
        np.testing.assert_array_equal(after[key], before[key])


def test_generator_round_trips_through_a_keras_file(tmp_path):
    model = ElectraGenerator(TINY)
    inputs = {**_batch(), "masked_lm_positions": _positions()}
    before = model(inputs, training=False)
    loaded = _round_trip(model, tmp_path)
    assert isinstance(loaded, ElectraGenerator) and loaded.tower == "generator"
    np.testing.assert_array_equal(loaded(inputs, training=False), before)


def test_pretrainer_round_trips_with_its_optimizer(tmp_path):
    model = ElectraPretrainer(TINY)
    model.compile(optimizer=create_optimizer())
    model.train_step(_batch(8))  # so the optimizer has state to save
    before = model(_batch(), training=False, step=3)
    loaded = _round_trip(model, tmp_path)
    assert int(loaded.optimizer.iterations) == 1
    after = loaded(_batch(), training=False, step=3)
    for key in ("mlm_logits", "rtd_logits", "corrupted_ids"):
        np.testing.assert_array_equal(after[key], before[key])
    # The towers still share one embedding table after loading.
    assert loaded.generator.encoder.embeddings is loaded.discriminator.encoder.embeddings


@pytest.mark.parametrize("changes", [dict(objective="replace_mlm"), dict(objective="all_tokens_mlm"),
                                     dict(embedding_sharing="gdes"), dict(embedding_sharing="untied"),
                                     dict(final_temperature=0.5)])
def test_every_objective_and_sharing_round_trips(changes, tmp_path):
    model = ElectraPretrainer(TINY.replace(**changes), num_train_steps=10)
    model.compile(optimizer=create_optimizer())
    model.train_step(_batch(8))
    before = model(_batch(), training=False, step=3)
    loaded = _round_trip(model, tmp_path)
    assert loaded.num_train_steps == 10
    after = loaded(_batch(), training=False, step=3)
    for key, value in before.items():
        np.testing.assert_array_equal(after[key], value, err_msg=key)


@pytest.mark.parametrize("make", [
    lambda: ElectraEmbeddings(TINY),
    lambda: GdesEmbeddings(TINY, ElectraEmbeddings(TINY)),
    lambda: ElectraEmbeddings(TINY, "generator"),
    lambda: DiscriminatorHead(TINY),
    lambda: ElectraEncoder(TINY, "generator", ElectraEmbeddings(TINY)),
    lambda: GeneratorHead(TINY, ElectraEmbeddings(TINY).word_embeddings),
    lambda: ElectraDiscriminator(TINY),
    lambda: ElectraGenerator(TINY, tower="discriminator"),
    lambda: TransformersClassificationHead(TINY.hidden_size, 3, dropout=0.2, initializer_range=0.05),
    lambda: LinearQAHead(TINY.hidden_size, beam_size=4, initializer_range=0.05),
])
def test_each_layer_is_registered_and_rebuilds_from_its_config(make):
    layer = make()
    clone = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert type(clone) is type(layer)
    assert clone.get_config() == layer.get_config()


def _reference_generator_logits(head, hidden, positions):
    """The original's generator head in NumPy: gather -> dense + erf GELU -> LayerNorm -> x E^T + b."""
    x = np.take_along_axis(hidden, positions[:, :, None], axis=1)
    x = x @ head.dense.kernel.numpy() + head.dense.bias.numpy()
    x = 0.5 * x * (1 + np.vectorize(math.erf)(x / math.sqrt(2)))
    mean, var = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
    x = (x - mean) / np.sqrt(var + TINY.layer_norm_epsilon)
    x = x * head.layer_norm.gamma.numpy() + head.layer_norm.beta.numpy()
    return x @ head.token_embedding.embeddings.numpy().T + head.output_bias.numpy()


def test_generator_head_computes_the_originals_logits():
    embeddings = ElectraEmbeddings(TINY)
    embeddings.build((None, 16))
    head = GeneratorHead(TINY, embeddings.word_embeddings)
    hidden = np.random.RandomState(0).normal(size=(2, 16, 32)).astype("float32")
    positions = np.array([[1, 4, 9], [0, 15, 2]], "int32")
    head(hidden, positions)
    head.output_bias.assign(np.random.RandomState(1).normal(size=TINY.vocab_size))
    logits = head(hidden, positions)
    assert logits.dtype == "float32"
    np.testing.assert_allclose(logits, _reference_generator_logits(head, hidden, positions), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
def test_generator_head_returns_float32_logits_eagerly_under_mixed_precision(policy):
    keras.mixed_precision.set_dtype_policy(policy)
    embeddings = ElectraEmbeddings(TINY)
    embeddings.build((None, 16))
    head = GeneratorHead(TINY, embeddings.word_embeddings)
    logits = head(tf.zeros((2, 16, 32), policy.split("_")[1]), tf.zeros((2, 3), "int32"))
    assert logits.dtype == "float32" and logits.shape == (2, 3, TINY.vocab_size)


def _object_paths(checkpoint_path):
    """Every path of child names from the root of a checkpoint's object graph."""
    from tensorflow.core.protobuf import trackable_object_graph_pb2

    graph = trackable_object_graph_pb2.TrackableObjectGraph()
    graph.ParseFromString(tf.train.load_checkpoint(checkpoint_path).get_tensor("_CHECKPOINTABLE_OBJECT_GRAPH"))
    paths, stack = set(), [(0, "")]
    while stack:
        node, prefix = stack.pop()
        for child in graph.nodes[node].children:
            path = f"{prefix}/{child.local_name}".lstrip("/")
            if path not in paths and path.count("/") < 8:
                paths.add(path)
                stack.append((child.node_id, path))
    return paths


def test_checkpoints_keep_the_generator_heads_original_names(tmp_path):
    """Checkpoints written before the head was keras-hub's name its parts dense, layer_norm and output_bias;
    new checkpoints keep those names beside keras-hub's, so both restore (old ones checked by hand:
    docs/release-notes.md)."""
    path = tf.train.Checkpoint(model=ElectraPretrainer(TINY)).write(str(tmp_path / "ckpt"))
    paths = _object_paths(path)
    for old in ("dense/_kernel", "layer_norm/gamma", "output_bias", "word_embeddings/_embeddings"):
        assert f"model/generator/head/{old}" in paths, old
