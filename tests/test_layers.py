import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from electra_tf import (
    DiscriminatorHead,
    ElectraConfig,
    ElectraEmbeddings,
    ElectraEncoder,
    ElectraPretrainer,
    create_optimizer,
)
from electra_tf.modeling.encoder import exact_gelu

TINY = ElectraConfig.for_size("tiny", vocab_size=500)


def test_shared_embedding_variables_are_one_set_counted_once():
    pretrainer = ElectraPretrainer(TINY)
    gen, disc = pretrainer.generator.encoder, pretrainer.discriminator.encoder
    assert gen.embeddings is disc.embeddings
    shared = pretrainer.embeddings
    for layer in (shared.word_embeddings, shared.position_embeddings, shared.segment_embeddings,
                  shared.layer_norm):
        for variable in layer.trainable_variables:
            assert any(variable is v for v in pretrainer.generator.trainable_variables)
            assert any(variable is v for v in pretrainer.discriminator.trainable_variables)
    # Only a tower whose hidden size differs from the embedding size projects (64 vs 32; the generator is 32).
    assert disc.projection is not None and gen.projection is None
    all_vars = pretrainer.trainable_variables
    assert len(all_vars) == len({id(v) for v in all_vars})
    optimizer = create_optimizer()
    optimizer.build(all_vars)
    assert len(optimizer._momentums) == len(all_vars)
    # Parameters of the whole = generator + discriminator - shared, so shared counted once.
    count = lambda vs: sum(int(np.prod(v.shape)) for v in vs)  # noqa: E731
    assert count(all_vars) == (count(pretrainer.generator.trainable_variables)
                               + count(pretrainer.discriminator.trainable_variables)
                               - count(shared.trainable_variables))


def test_projection_only_when_embedding_differs_from_hidden():
    config = ElectraConfig.for_size("tiny", embedding_size=64)
    pretrainer = ElectraPretrainer(config)
    assert pretrainer.discriminator.encoder.projection is None
    assert pretrainer.generator.encoder.projection is not None  # generator hidden is 32


def test_blocks_use_bert_numerics():
    pretrainer = ElectraPretrainer(TINY)
    block = pretrainer.discriminator.encoder.blocks[0]
    assert block._self_attention_layer_norm.epsilon == 1e-12
    assert block.normalize_first is False
    x = np.linspace(-4, 4, 101).astype("float32")
    erf_gelu = 0.5 * x * (1 + np.vectorize(math.erf)(x / math.sqrt(2)))
    np.testing.assert_allclose(block._feedforward_intermediate_dense.activation(x), erf_gelu, atol=1e-6)
    tanh_gelu = keras.activations.gelu(x, approximate=True)
    assert np.max(np.abs(np.asarray(exact_gelu(x)) - np.asarray(tanh_gelu))) > 1e-4


def test_truncated_normal_init():
    pretrainer = ElectraPretrainer(ElectraConfig.for_size("small"))
    words = pretrainer.embeddings.word_embeddings.embeddings.numpy()
    assert abs(words.std() - 0.02 * 0.88) < 0.002  # a 2-sigma truncated normal has std 0.88 sigma
    assert np.abs(words).max() <= 0.04 + 1e-6


def test_projection_and_replaced_logit_use_the_originals_glorot_init():
    pretrainer = ElectraPretrainer(ElectraConfig.for_size("small"))
    for layer in (pretrainer.discriminator.encoder.projection, pretrainer.discriminator.head.dense_prediction):
        kernel = layer.kernel.numpy()
        limit = math.sqrt(6 / sum(kernel.shape))  # glorot-uniform: U(-limit, limit), std limit / sqrt(3)
        assert np.abs(kernel).max() <= limit
        assert abs(kernel.std() - limit / math.sqrt(3)) < 0.1 * limit
    # The rest keeps the truncated normal (std 0.02 * 0.88).
    assert abs(pretrainer.discriminator.head.dense.kernel.numpy().std() - 0.0176) < 0.002


def test_padding_does_not_change_real_token_outputs():
    config = TINY.replace(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    encoder = ElectraEncoder(config, "discriminator", ElectraEmbeddings(config))
    ids = np.full((1, 16), 7, "int32")
    mask = np.ones_like(ids)
    mask[:, 10:] = 0
    a = encoder(ids, 0 * ids, mask)
    ids2 = ids.copy()
    ids2[:, 10:] = 42  # different content in the padded tail
    b = encoder(ids2, 0 * ids, mask)
    np.testing.assert_allclose(a[:, :10], b[:, :10], atol=1e-5)


def test_attention_dropout_rate_is_set_separately():
    config = TINY.replace(hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.3)
    encoder = ElectraEncoder(config, "discriminator", ElectraEmbeddings(config))
    encoder.build((None, 16))
    block = encoder.blocks[0]
    assert block._self_attention_layer._dropout_layer.rate == 0.3
    assert block._feedforward_dropout.rate == 0.1


@pytest.mark.parametrize("hidden_dropout, attention_dropout, changes",
                         [(0.0, 0.0, False), (0.0, 0.5, True), (0.5, 0.0, True)])
def test_each_dropout_applies_without_the_other(hidden_dropout, attention_dropout, changes):
    config = TINY.replace(hidden_dropout_prob=hidden_dropout, attention_probs_dropout_prob=attention_dropout)
    encoder = ElectraEncoder(config, "discriminator", ElectraEmbeddings(config))
    ids = np.random.RandomState(0).randint(5, 500, (2, 16)).astype("int32")
    inference = encoder(ids, 0 * ids, np.ones_like(ids), training=False)
    training = encoder(ids, 0 * ids, np.ones_like(ids), training=True)
    assert (np.max(np.abs(np.asarray(training) - np.asarray(inference))) > 1e-3) == changes


@pytest.mark.parametrize("make", [
    lambda: ElectraEmbeddings(TINY),
    lambda: DiscriminatorHead(TINY),
    lambda: ElectraEncoder(TINY, "generator", ElectraEmbeddings(TINY)),
])
def test_layers_round_trip_through_get_config(make):
    layer = make()
    clone = layer.__class__.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()


def test_pretrainer_round_trips_through_get_config():
    pretrainer = ElectraPretrainer(TINY)
    clone = ElectraPretrainer.from_config(pretrainer.get_config())
    assert clone.config == TINY
    assert len(clone.trainable_variables) == len(pretrainer.trainable_variables)
    tf.nest.map_structure(lambda a, b: np.testing.assert_equal(a.shape, b.shape),
                          clone.get_weights(), pretrainer.get_weights())
