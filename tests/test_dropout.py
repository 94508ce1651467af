"""Keyed dropout: inverted dropout whose masks are a function of the keys, with or without XLA or remat."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import random_batch

from electra_tf import (
    ElectraConfig,
    ElectraEmbeddings,
    ElectraEncoder,
    ElectraPretrainer,
    KeyedDropout,
    OptimizerConfig,
    create_optimizer,
)
from electra_tf.modeling.dropout import dropout_keys, keyed_dropout
from electra_tf.utils import keyed_random

TINY = ElectraConfig.for_size("tiny", vocab_size=300, pad_id=0, unk_id=1, cls_id=2, sep_id=3, mask_id=4,
                              hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1)


def _keys(n, step=1, first=0):
    return keyed_random.example_keys(0, step, tf.range(first, first + n), keyed_random.DROPOUT)


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
@pytest.mark.parametrize("rate", [0.1, 0.5])
def test_drops_at_the_rate_and_scales_the_rest(rate, dtype):
    x = tf.cast(tf.random.stateless_normal([64, 32, 48], seed=[1, 2]), dtype)
    y = keyed_dropout(x, _keys(64), rate).numpy().astype("float32")
    x = x.numpy().astype("float32")
    kept = y != 0
    assert abs(1 - kept.mean() - rate) < 0.005
    # Scaled by 1 / (1 - rate) in float32, then rounded to the input's dtype.
    expected = tf.cast(x[kept] * np.float32(1 / (1 - rate)), dtype).numpy().astype("float32")
    np.testing.assert_array_equal(y[kept], expected)
    per_row = kept.reshape(64, -1).mean(axis=1)  # every example drops, none in step with another
    assert per_row.min() > 1 - rate - 0.05 and per_row.max() < 1 - rate + 0.05
    assert len({tuple(row) for row in kept.reshape(64, -1)[:, :64]}) == 64


def test_mask_depends_only_on_each_examples_key():
    x = tf.ones([16, 8, 8])
    whole = keyed_dropout(x, _keys(16), 0.3).numpy()
    second_half = keyed_dropout(x[8:], _keys(8, first=8), 0.3).numpy()
    np.testing.assert_array_equal(second_half, whole[8:])  # a replica holding examples 8..15 drops the same
    assert (keyed_dropout(x, _keys(16, step=2), 0.3).numpy() != whole).any()
    xla = tf.function(lambda v, k: keyed_dropout(v, k, 0.3), jit_compile=True)(x, _keys(16))
    np.testing.assert_array_equal(xla.numpy(), whole)


def test_gradient_is_the_same_mask_applied_to_the_incoming_gradient():
    x = tf.random.stateless_normal([4, 6, 10], seed=[3, 4])
    upstream = tf.random.stateless_normal([4, 6, 10], seed=[5, 6])
    keys = _keys(4)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = keyed_dropout(x, keys, 0.4)
    grad = tape.gradient(y, x, output_gradients=upstream)
    scale = (y / x).numpy()  # 0 where dropped, 1 / 0.6 where kept
    np.testing.assert_allclose(grad.numpy(), upstream.numpy() * scale, rtol=1e-6)


def test_layer_uses_the_scopes_keys_and_its_id_and_falls_back_to_its_seed_generator():
    x = tf.ones([4, 64])
    first, second, same_id = KeyedDropout(0.5, key_id=1), KeyedDropout(0.5, key_id=2), KeyedDropout(0.5, key_id=1)
    with dropout_keys(_keys(4)):
        a, b, c = (layer(x, training=True).numpy() for layer in (first, second, same_id))
    np.testing.assert_array_equal(a, c)
    assert (a != b).any()
    np.testing.assert_array_equal(first(x, training=False), x)
    # Outside a scope each call takes the next seed of the layer's generator.
    assert (first(x, training=True).numpy() != first(x, training=True).numpy()).any()
    with pytest.raises(ValueError, match="rate 0"):
        _zero_rate_layer_raised_to(0.5)(x, training=True)


def _zero_rate_layer_raised_to(rate):
    layer = KeyedDropout(0.0)
    layer.rate = rate
    return layer


def test_encoder_masks_are_keyed_per_example_and_tower_and_reproducible_without_keys():
    embeddings = ElectraEmbeddings(TINY)
    discriminator = ElectraEncoder(TINY, "discriminator", embeddings)
    generator = ElectraEncoder(TINY.replace(generator_hidden_size=1.0), "generator", embeddings)
    batch = random_batch(TINY, 8, seed=2, min_len=32)
    ids, segments, mask = (tf.constant(batch[k]) for k in ("input_ids", "segment_ids", "input_mask"))
    keys = _keys(8)
    whole = discriminator(ids, segments, mask, training=True, dropout_keys=keys).numpy()
    half = discriminator(ids[4:], segments[4:], mask[4:], training=True, dropout_keys=keys[4:]).numpy()
    np.testing.assert_allclose(half, whole[4:], atol=1e-5)
    # Same weights, same keys, other tower: other masks.
    generator(ids, segments, mask)
    generator.set_weights(discriminator.get_weights())
    other_tower = generator(ids, segments, mask, training=True, dropout_keys=keys).numpy()
    assert np.abs(other_tower - whole).max() > 1e-2
    # Without keys: the masks follow Keras' global seed, like Keras' Dropout.
    runs = []
    for _ in range(2):
        keras.utils.set_random_seed(5)
        encoder = ElectraEncoder(TINY, "discriminator", ElectraEmbeddings(TINY))
        runs.append([encoder(ids, segments, mask, training=True).numpy() for _ in range(2)])
    np.testing.assert_array_equal(runs[0][0], runs[1][0])
    np.testing.assert_array_equal(runs[0][1], runs[1][1])
    assert np.abs(runs[0][0] - runs[0][1]).max() > 1e-2


def _step_results(jit_compile=False, rematerialize=False, steps=3):
    keras.utils.set_random_seed(7)
    # One block per tower: enough to check masks and updates, and XLA compiles it in half the time.
    pretrainer = ElectraPretrainer(TINY.replace(num_layers=1), rematerialize=rematerialize)
    pretrainer.compile(optimizer=create_optimizer(
        OptimizerConfig(learning_rate=1e-3, num_train_steps=100, num_warmup_steps=0)))
    step = tf.function(pretrainer.train_step, jit_compile=jit_compile)
    batch = {k: tf.constant(v) for k, v in random_batch(TINY, 8, seed=1).items()}
    losses = []
    for _ in range(steps):
        pretrainer.reset_metrics()
        losses.append(float(step(batch)["loss"]))
    return losses, [v.numpy() for v in pretrainer.trainable_variables]


def test_xla_step_draws_the_same_masks_and_gives_the_same_losses():
    plain, plain_weights = _step_results(steps=2)
    xla, xla_weights = _step_results(jit_compile=True, steps=2)
    # Keras' Philox dropout gives other masks under XLA, and losses that differ by ~1%.
    np.testing.assert_allclose(xla, plain, rtol=2e-6)
    for a, b in zip(plain_weights, xla_weights):
        np.testing.assert_allclose(a, b, atol=2e-6)


def test_rematerialized_blocks_give_the_same_update():
    plain, plain_weights = _step_results(steps=1)
    remat, remat_weights = _step_results(rematerialize=True, steps=1)
    assert remat == plain
    for a, b in zip(plain_weights, remat_weights):
        np.testing.assert_array_equal(a, b)
