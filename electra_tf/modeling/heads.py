"""The generator's masked-LM head and the discriminator's replaced-token head."""

import keras

from electra_tf.modeling.config import BuiltFromConfig
from electra_tf.modeling.embeddings import initializer
from electra_tf.modeling.encoder import exact_gelu


class GeneratorHead(keras.layers.Layer):
    """dense(embedding_size, GELU) -> LayerNorm -> x @ word_embeddings^T + bias.

    Called on the hidden states gathered at the masked positions only: the
    vocabulary projection is the largest matmul of the small model, and
    computing it everywhere would cost ~7x more for nothing. Logits are
    float32 whatever the precision policy, so the softmax is stable.

    Example:

    >>> config = ElectraConfig.for_size("tiny")
    >>> shared = ElectraEmbeddings(config)
    >>> shared.build((2, 16))
    >>> head = GeneratorHead(config, shared.word_embeddings)
    >>> head(np.zeros((2, 5, 32), "float32")).shape
    (2, 5, 30522)
    """

    def __init__(self, config, word_embeddings, **kwargs):
        kwargs.setdefault("name", "generator_predictions")
        super().__init__(**kwargs)
        self.config = config
        self.word_embeddings = word_embeddings
        self.dense = keras.layers.Dense(
            config.embedding_size, activation=exact_gelu, kernel_initializer=initializer(config),
            dtype=self.dtype_policy, name="dense")
        self.layer_norm = keras.layers.LayerNormalization(
            epsilon=config.layer_norm_epsilon, dtype=self.dtype_policy, name="layer_norm")

    def build(self, hidden_shape):
        self.dense.build(hidden_shape)
        self.layer_norm.build(tuple(hidden_shape[:-1]) + (self.config.embedding_size,))
        self.output_bias = self.add_weight(
            shape=(self.config.vocab_size,), initializer="zeros", name="output_bias")
        self.built = True

    def call(self, hidden):
        x = self.layer_norm(self.dense(hidden))
        logits = self.word_embeddings(x, reverse=True)
        # Under a mixed policy an eager read of the bias is autocast to the compute dtype.
        return keras.ops.cast(logits, "float32") + keras.ops.cast(self.output_bias, "float32")

    def compute_output_shape(self, hidden_shape):
        return tuple(hidden_shape[:-1]) + (self.config.vocab_size,)

    def get_config(self):
        # The word embeddings are shared with the encoder; whoever rebuilds
        # the model passes them in again (see ElectraGenerator).
        return {**super().get_config(), "config": self.config.to_dict()}


class DiscriminatorHead(BuiltFromConfig, keras.layers.Layer):
    """dense(hidden, GELU) -> dense(1): one float32 replaced-logit per token.

    Example:

    >>> head = DiscriminatorHead(ElectraConfig.for_size("tiny"))
    >>> head(np.zeros((2, 16, 64), "float32")).shape
    (2, 16)
    """

    def __init__(self, config, **kwargs):
        kwargs.setdefault("name", "discriminator_predictions")
        super().__init__(**kwargs)
        self.config = config
        self.dense = keras.layers.Dense(
            config.hidden_size, activation=exact_gelu, kernel_initializer=initializer(config),
            dtype=self.dtype_policy, name="dense")
        # Glorot-uniform, as the original's tf.layers.dense(hidden, units=1) with no initializer
        # (run_pretraining.py, _get_discriminator_output).
        self.dense_prediction = keras.layers.Dense(
            1, kernel_initializer="glorot_uniform", dtype=self.dtype_policy, name="dense_prediction")

    def build(self, hidden_shape):
        self.dense.build(hidden_shape)
        self.dense_prediction.build(tuple(hidden_shape[:-1]) + (self.config.hidden_size,))
        self.built = True

    def call(self, hidden):
        logits = self.dense_prediction(self.dense(hidden))
        return keras.ops.cast(keras.ops.squeeze(logits, -1), "float32")

    def compute_output_shape(self, hidden_shape):
        return tuple(hidden_shape[:-1])
