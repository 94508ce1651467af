"""The token, position and segment embeddings both towers share."""

import keras
import keras_hub

from electra_tf.modeling.config import BuiltFromConfig
from electra_tf.modeling.dropout import KeyedDropout

# The embeddings' dropout id within a tower's dropout keys (the blocks' ids follow it: encoder.py).
EMBEDDINGS_DROPOUT_ID = 0


def _dropout(config, dtype):
    return KeyedDropout(config.hidden_dropout_prob, key_id=EMBEDDINGS_DROPOUT_ID, dtype=dtype, name="dropout")


def initializer(config):
    # BERT's truncated normal: Keras truncates at two standard deviations, as TF1 did.
    return keras.initializers.TruncatedNormal(stddev=config.initializer_range)


@keras.saving.register_keras_serializable(package="electra_tf")
class ElectraEmbeddings(BuiltFromConfig, keras.layers.Layer):
    """word + position + segment embeddings -> LayerNorm -> dropout.

    With tied embeddings (the default) one instance is shared by the
    generator and the discriminator, so both read (and train) the same
    variables. The word embedding is a keras-hub `ReversibleEmbedding`, so
    the generator's output layer can use its transpose.

    Args:
        config: the `ElectraConfig` (vocabulary, embedding size, positions, segments, dropout).
        tower: whose width the tables have (`config.tower_embedding_size`): the generator's own
            embeddings, when untied, are as wide as its hidden states.
        **kwargs: `keras.layers.Layer` arguments (`name`, `dtype`).

    Example:

    >>> embeddings = ElectraEmbeddings(ElectraConfig.for_size("tiny"))
    >>> ids = np.ones((2, 16), "int32")
    >>> tuple(embeddings(ids, np.zeros((2, 16), "int32")).shape)
    (2, 16, 32)
    """

    def __init__(self, config, tower="discriminator", **kwargs):
        kwargs.setdefault("name", "embeddings")
        super().__init__(**kwargs)
        self.config = config
        self.tower = tower
        self.width = config.tower_embedding_size(tower)
        self._make_layers(config)

    def _make_layers(self, config):
        self.word_embeddings = keras_hub.layers.ReversibleEmbedding(
            config.vocab_size, self.width, tie_weights=True,
            embeddings_initializer=initializer(config), dtype=self.dtype_policy, name="word_embeddings")
        self.position_embeddings = keras_hub.layers.PositionEmbedding(
            config.max_position_embeddings, initializer=initializer(config),
            dtype=self.dtype_policy, name="position_embeddings")
        self.segment_embeddings = keras.layers.Embedding(
            config.type_vocab_size, self.width, embeddings_initializer=initializer(config),
            dtype=self.dtype_policy, name="segment_embeddings")
        self.layer_norm = keras.layers.LayerNormalization(
            epsilon=config.layer_norm_epsilon, dtype=self.dtype_policy, name="layer_norm")
        self.dropout = _dropout(config, self.dtype_policy)

    def build(self, input_ids_shape, segment_ids_shape=None):
        self.word_embeddings.build(input_ids_shape)
        embedded_shape = tuple(input_ids_shape) + (self.width,)
        self.position_embeddings.build(embedded_shape)
        self.segment_embeddings.build(input_ids_shape)
        self.layer_norm.build(embedded_shape)
        self.built = True

    def call(self, input_ids, segment_ids, training=None):
        words = self.word_embeddings(input_ids)
        x = words + self.position_embeddings(words) + self.segment_embeddings(segment_ids)
        return self.dropout(self.layer_norm(x), training=training)

    def compute_output_shape(self, input_ids_shape, segment_ids_shape=None):
        return tuple(input_ids_shape) + (self.width,)

    def word_table(self):
        """The word embeddings this tower reads, [vocab, width] (with gdes: the generator's + the residual)."""
        words = self.word_embeddings
        if isinstance(words, _ResidualWords):
            return _summed(words.base.embeddings, words.embeddings)
        return words.embeddings

    def tables(self):
        """The five variables in the original's order: word, position, segment, LayerNorm gamma and beta."""
        return [self.word_embeddings.embeddings, self.position_embeddings.position_embeddings,
                self.segment_embeddings.embeddings, self.layer_norm.gamma, self.layer_norm.beta]

    def get_config(self):
        return {**super().get_config(), "tower": self.tower}


def _summed(base, residual):
    return keras.ops.add(keras.ops.stop_gradient(base), residual)


class _ResidualWords(keras_hub.layers.ReversibleEmbedding):
    # ReversibleEmbedding.call on the summed table (its variable, which checkpoints and .keras files
    # hold, stays the residual alone).
    def call(self, inputs, reverse=False):
        table = _summed(self.base.embeddings, super().embeddings)
        if reverse:
            return keras.ops.matmul(inputs, keras.ops.transpose(table))
        return keras.ops.cast(keras.ops.take(table, keras.ops.cast(inputs, "int32"), axis=0), self.compute_dtype)


class _ResidualSegments(keras.layers.Embedding):
    def call(self, inputs):
        table = _summed(self.base.embeddings, super().embeddings)
        return keras.ops.cast(keras.ops.take(table, keras.ops.cast(inputs, "int32"), axis=0), self.compute_dtype)


class _ResidualPositions(keras_hub.layers.PositionEmbedding):
    def call(self, inputs, start_index=0):
        # keras-hub's PositionEmbedding.call on the summed table.
        table = _summed(self.base.position_embeddings, self.position_embeddings)
        shape = keras.ops.shape(inputs)
        return keras.ops.broadcast_to(keras.ops.slice(table, (start_index, 0), (shape[-2], shape[-1])), shape)


class _ResidualLayerNorm(keras.layers.LayerNormalization):
    def call(self, inputs):
        gamma, beta = _summed(self.base.gamma, self.gamma), _summed(self.base.beta, self.beta)
        outputs = keras.ops.layer_normalization(inputs, gamma, beta, self.axis, self.epsilon)
        return keras.ops.cast(outputs, self.compute_dtype)


@keras.saving.register_keras_serializable(package="electra_tf")
class GdesEmbeddings(ElectraEmbeddings):
    """Gradient-disentangled embedding sharing (DeBERTaV3, He et al. 2021): the discriminator's embeddings.

    Every table (word, position, segment) and the LayerNorm's gamma and beta
    read `stop_gradient(source's) + residual`, the residual starting at zero:
    the discriminator starts with the generator's embeddings, its loss trains
    only the residual, and the generator's MLM alone trains the source.
    (DeBERTaV3 applies it to the word and position tables, and has no
    segments; here the whole set the original ties is disentangled.)
    `tables()` gives the folded values, `source + residual`, which a plain
    `ElectraEmbeddings` reproduces exactly: that is what exports hold.

    Args:
        config: the `ElectraConfig`.
        source: the generator's `ElectraEmbeddings`.
        **kwargs: `keras.layers.Layer` arguments (`name`, `dtype`).

    Example:

    >>> config = ElectraConfig.for_size("tiny")
    >>> generator_embeddings = ElectraEmbeddings(config)
    >>> gdes = GdesEmbeddings(config, generator_embeddings)
    >>> ids = np.ones((2, 16), "int32")
    >>> same = np.allclose(gdes(ids, 0 * ids), generator_embeddings(ids, 0 * ids))  # the residual starts at zero
    >>> bool(same)
    True
    """

    def __init__(self, config, source, **kwargs):
        kwargs.setdefault("name", "embeddings")
        # ElectraEmbeddings.__init__ makes the layers, which need the source: set it first.
        keras.layers.Layer.__init__(self, **kwargs)
        self.config = config
        self.tower = "discriminator"
        self.width = config.embedding_size
        if source.width != self.width:
            raise ValueError(f"GDES needs equal embedding widths, got {source.width} and {self.width}")
        self.source = source
        self._make_layers(config)

    def _make_layers(self, config):
        zeros = dict(dtype=self.dtype_policy)
        self.word_embeddings = _ResidualWords(config.vocab_size, self.width, tie_weights=True,
                                              embeddings_initializer="zeros", name="word_embeddings", **zeros)
        self.position_embeddings = _ResidualPositions(config.max_position_embeddings, initializer="zeros",
                                                      name="position_embeddings", **zeros)
        self.segment_embeddings = _ResidualSegments(config.type_vocab_size, self.width,
                                                    embeddings_initializer="zeros", name="segment_embeddings", **zeros)
        self.layer_norm = _ResidualLayerNorm(epsilon=config.layer_norm_epsilon, gamma_initializer="zeros",
                                             name="layer_norm", **zeros)
        self.dropout = _dropout(config, self.dtype_policy)
        for residual, base in ((self.word_embeddings, self.source.word_embeddings),
                               (self.position_embeddings, self.source.position_embeddings),
                               (self.segment_embeddings, self.source.segment_embeddings),
                               (self.layer_norm, self.source.layer_norm)):
            residual.base = base

    def build(self, input_ids_shape, segment_ids_shape=None):
        if not self.source.built:
            self.source.build(input_ids_shape)
        super().build(input_ids_shape, segment_ids_shape)

    def residuals(self):
        """The residual variables, in the order of `tables()`."""
        return super().tables()

    def tables(self):
        """The folded tables, source + residual, in `ElectraEmbeddings.tables()` order."""
        return [keras.ops.add(s, r) for s, r in zip(self.source.tables(), self.residuals(), strict=True)]

    def get_config(self):
        config = super().get_config()
        config.pop("tower")
        return {**config, "source": keras.layers.serialize(self.source)}

    @classmethod
    def from_config(cls, config):
        from electra_tf.modeling.config import ElectraConfig

        config = dict(config)
        electra_config = ElectraConfig.from_dict(config.pop("config"))
        source = keras.layers.deserialize(config.pop("source"), custom_objects={"ElectraEmbeddings": ElectraEmbeddings})
        return cls(electra_config, source, **config)
