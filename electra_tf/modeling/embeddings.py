"""The token, position and segment embeddings both towers share."""

import keras
import keras_hub

from electra_tf.modeling.config import BuiltFromConfig
from electra_tf.modeling.dropout import KeyedDropout

# The embeddings' dropout id within a tower's dropout keys (the blocks' ids follow it: encoder.py).
EMBEDDINGS_DROPOUT_ID = 0


def initializer(config):
    # BERT's truncated normal: Keras truncates at two standard deviations, as TF1 did.
    return keras.initializers.TruncatedNormal(stddev=config.initializer_range)


@keras.saving.register_keras_serializable(package="electra_tf")
class ElectraEmbeddings(BuiltFromConfig, keras.layers.Layer):
    """word + position + segment embeddings -> LayerNorm -> dropout.

    One instance is shared by the generator and the discriminator, so both
    read (and train) the same variables. The word embedding is a keras-hub
    `ReversibleEmbedding`, so the generator's output layer can use its
    transpose.

    Args:
        config: the `ElectraConfig` (vocabulary, embedding size, positions, segments, dropout).
        **kwargs: `keras.layers.Layer` arguments (`name`, `dtype`).

    Example:

    >>> embeddings = ElectraEmbeddings(ElectraConfig.for_size("tiny"))
    >>> ids = np.ones((2, 16), "int32")
    >>> tuple(embeddings(ids, np.zeros((2, 16), "int32")).shape)
    (2, 16, 32)
    """

    def __init__(self, config, **kwargs):
        kwargs.setdefault("name", "embeddings")
        super().__init__(**kwargs)
        self.config = config
        self.word_embeddings = keras_hub.layers.ReversibleEmbedding(
            config.vocab_size, config.embedding_size, tie_weights=True,
            embeddings_initializer=initializer(config), dtype=self.dtype_policy, name="word_embeddings")
        self.position_embeddings = keras_hub.layers.PositionEmbedding(
            config.max_position_embeddings, initializer=initializer(config),
            dtype=self.dtype_policy, name="position_embeddings")
        self.segment_embeddings = keras.layers.Embedding(
            config.type_vocab_size, config.embedding_size, embeddings_initializer=initializer(config),
            dtype=self.dtype_policy, name="segment_embeddings")
        self.layer_norm = keras.layers.LayerNormalization(
            epsilon=config.layer_norm_epsilon, dtype=self.dtype_policy, name="layer_norm")
        self.dropout = KeyedDropout(config.hidden_dropout_prob, key_id=EMBEDDINGS_DROPOUT_ID, dtype=self.dtype_policy,
                                    name="dropout")

    def build(self, input_ids_shape, segment_ids_shape=None):
        self.word_embeddings.build(input_ids_shape)
        embedded_shape = tuple(input_ids_shape) + (self.config.embedding_size,)
        self.position_embeddings.build(embedded_shape)
        self.segment_embeddings.build(input_ids_shape)
        self.layer_norm.build(embedded_shape)
        self.built = True

    def call(self, input_ids, segment_ids, training=None):
        words = self.word_embeddings(input_ids)
        x = words + self.position_embeddings(words) + self.segment_embeddings(segment_ids)
        return self.dropout(self.layer_norm(x), training=training)

    def compute_output_shape(self, input_ids_shape, segment_ids_shape=None):
        return tuple(input_ids_shape) + (self.config.embedding_size,)
