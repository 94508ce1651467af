"""The generator's masked-LM head and the discriminator's replaced-token head."""

import keras
import keras_hub

from electra_tf.modeling.config import BuiltFromConfig, ElectraConfig
from electra_tf.modeling.embeddings import initializer
from electra_tf.modeling.encoder import exact_gelu


@keras.saving.register_keras_serializable(package="electra_tf")
class GeneratorHead(keras_hub.layers.MaskedLMHead):
    """The generator's masked-LM head: keras-hub's `MaskedLMHead` with the original's numerics.

    Gathers the hidden states at the masked positions, then dense(embedding_size,
    exact GELU) -> LayerNorm -> `x @ word_embeddings^T + output_bias`, as the
    original's `_get_masked_lm_output`. Gathering first matters: the vocabulary
    projection is the largest matmul of the small model, and computing it at
    every position would cost ~7x more for nothing. Logits are float32 whatever
    the precision policy, so the softmax is stable.

    Args:
        config: the `ElectraConfig` (embedding size, LayerNorm epsilon, initializer range).
        word_embeddings: the shared `keras_hub.layers.ReversibleEmbedding`, whose
            transpose is the output layer.
        **kwargs: `keras.layers.Layer` arguments (`name`, `dtype`).

    Example:

    >>> config = ElectraConfig.for_size("tiny")
    >>> shared = ElectraEmbeddings(config)
    >>> shared.build((2, 16))
    >>> head = GeneratorHead(config, shared.word_embeddings)
    >>> tuple(head(np.zeros((2, 16, 32), "float32"), np.zeros((2, 5), "int32")).shape)
    (2, 5, 30522)
    """

    def __init__(self, config, word_embeddings, **kwargs):
        kwargs.setdefault("name", "generator_predictions")
        super().__init__(token_embedding=word_embeddings, intermediate_activation=exact_gelu,
                         layer_norm_epsilon=config.layer_norm_epsilon, kernel_initializer=initializer(config),
                         bias_initializer="zeros", **kwargs)
        self.config = config

    def call(self, inputs, mask_positions):
        # MaskedLMHead.call's steps, but the bias is added in float32: keras-hub adds it in the
        # compute dtype, where under mixed_float16 the bias gradient overflows the loss scale (and,
        # eagerly, float16 logits + the float32 bias fail).
        x = keras.ops.take_along_axis(inputs, keras.ops.expand_dims(mask_positions, -1), axis=1)
        x = self._intermediate_layer_norm(self._intermediate_dense(x))
        logits = self.token_embedding(x, reverse=True)
        return keras.ops.cast(logits, "float32") + keras.ops.cast(self._bias, "float32")

    # The original's names for the parts (generator_predictions/dense, .../LayerNorm, .../output_bias),
    # used by the checkpoint conversions.
    @property
    def dense(self):
        return self._intermediate_dense

    @property
    def layer_norm(self):
        return self._intermediate_layer_norm

    @property
    def output_bias(self):
        return self._bias

    def _trackable_children(self, save_type="checkpoint", **kwargs):
        # Checkpoints written before this head was keras-hub's name its parts "dense", "layer_norm",
        # "output_bias" and "word_embeddings"; both names lead to the same objects, so old and new
        # checkpoints restore.
        children = super()._trackable_children(save_type, **kwargs)
        if save_type == "checkpoint" and self.built:
            children.update(dense=self._intermediate_dense, layer_norm=self._intermediate_layer_norm,
                            output_bias=self._bias, word_embeddings=self.token_embedding)
        return children

    def get_config(self):
        # Only what __init__ takes; the word embeddings are serialized so the layer can be rebuilt
        # alone, and ElectraGenerator passes its shared ones instead.
        return {**keras.layers.Layer.get_config(self), "config": self.config.to_dict(),
                "word_embeddings": keras.layers.serialize(self.token_embedding)}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        electra_config = ElectraConfig.from_dict(config.pop("config"))
        return cls(electra_config, keras.layers.deserialize(config.pop("word_embeddings")), **config)


@keras.saving.register_keras_serializable(package="electra_tf")
class DiscriminatorHead(BuiltFromConfig, keras.layers.Layer):
    """dense(hidden, GELU) -> dense(1): one float32 replaced-logit per token.

    Args:
        config: the `ElectraConfig` (hidden size, initializer range).
        **kwargs: `keras.layers.Layer` arguments (`name`, `dtype`).

    Example:

    >>> head = DiscriminatorHead(ElectraConfig.for_size("tiny"))
    >>> tuple(head(np.zeros((2, 16, 64), "float32")).shape)
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
