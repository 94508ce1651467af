"""One Transformer tower (generator or discriminator) over shared embeddings."""

import keras
import keras_hub

from electra_tf.modeling.config import ElectraConfig
from electra_tf.modeling.embeddings import ElectraEmbeddings, GdesEmbeddings, initializer


@keras.saving.register_keras_serializable(package="electra_tf")
def exact_gelu(x):
    # BERT's and the original ELECTRA's erf GELU. keras-hub's own ELECTRA
    # uses the tanh approximation, which breaks parity with checkpoints.
    # Computed in float32: TF's bfloat16 erf on CPU was ~12x slower (bench/RESULTS.md).
    return keras.ops.cast(keras.activations.gelu(keras.ops.cast(x, "float32"), approximate=False), x.dtype)


def bert_block(config, tower, name, dtype=None):
    """One keras-hub `TransformerEncoder` of the tower's width, configured as a BERT layer (build it with
    `build_bert_block`)."""
    _, num_heads, intermediate_size = config.tower_dims(tower)
    return keras_hub.layers.TransformerEncoder(
        intermediate_dim=intermediate_size,
        num_heads=num_heads,
        # The largest rate, so that every dropout layer is created able to drop (a Keras
        # Dropout made with rate 0 has no random state); build_bert_block sets each one's own rate.
        dropout=max(config.hidden_dropout_prob, config.attention_probs_dropout_prob),
        activation=exact_gelu,
        layer_norm_epsilon=config.layer_norm_epsilon,
        kernel_initializer=initializer(config),
        dtype=dtype,
        name=name,
    )


def build_bert_block(block, shape, config):
    """Builds a `bert_block` for inputs of `shape` and gives its dropout layers BERT's two rates."""
    block.build(shape)
    # TransformerEncoder has one dropout rate; BERT has a separate one for attention
    # probabilities, which lives in the attention layer. Keras' attention applies its
    # dropout layer only when its own `_dropout` is above 0, so both are set.
    attention = block._self_attention_layer
    attention._dropout = config.attention_probs_dropout_prob
    attention._dropout_layer.rate = config.attention_probs_dropout_prob
    block._self_attention_dropout.rate = config.hidden_dropout_prob
    block._feedforward_dropout.rate = config.hidden_dropout_prob


@keras.saving.register_keras_serializable(package="electra_tf")
class ElectraEncoder(keras.layers.Layer):
    """Shared embeddings -> per-tower projection -> post-LayerNorm BERT blocks.

    The blocks are keras-hub `TransformerEncoder`s configured to BERT's
    numerics: post-LayerNorm, epsilon from the config (1e-12), exact GELU.
    When the embeddings' width differs from the tower's hidden size the tower
    owns a dense projection (the original's `embeddings_project`).

    Args:
        config: the `ElectraConfig`.
        tower: `"discriminator"` or `"generator"`: which of the config's widths and depths to use.
        embeddings: the `ElectraEmbeddings` to read tokens with (by default shared by both towers).
        **kwargs: `keras.layers.Layer` arguments (`name`, `dtype`).

    Example:

    >>> config = ElectraConfig.for_size("tiny")
    >>> shared = ElectraEmbeddings(config)
    >>> generator_tower = ElectraEncoder(config, "generator", shared)
    >>> ids = np.ones((2, 16), "int32")
    >>> tuple(generator_tower(ids, np.zeros_like(ids), np.ones_like(ids)).shape)
    (2, 16, 32)
    """

    def __init__(self, config, tower, embeddings, **kwargs):
        kwargs.setdefault("name", f"{tower}_encoder")
        super().__init__(**kwargs)
        self.config = config
        self.tower = tower
        self.embeddings = embeddings
        self.hidden_size, self.num_heads, self.intermediate_size = config.tower_dims(tower)
        self.projection = None
        if embeddings.width != self.hidden_size:
            # Glorot-uniform, as the original's tf.layers.dense(..., name="embeddings_project")
            # with no initializer (model/modeling.py), not the truncated normal of the rest.
            self.projection = keras.layers.Dense(
                self.hidden_size, kernel_initializer="glorot_uniform",
                dtype=self.dtype_policy, name="embeddings_project")
        self.blocks = [bert_block(config, tower, f"layer_{i}", self.dtype_policy)
                       for i in range(config.tower_layers(tower))]

    def share_bottom(self, other, num_blocks, projection=True):
        """Makes this encoder's first `num_blocks` blocks (and its projection) `other`'s: the same layers.

        TEAMS's partial layer sharing (Shen et al. 2021): the generator runs the
        discriminator's bottom layers. Call before building; the widths must agree.
        """
        if self.built or (self.hidden_size, self.num_heads) != (other.hidden_size, other.num_heads):
            raise ValueError("share_bottom needs an unbuilt encoder as wide as the other")
        for i in range(num_blocks):
            self.blocks.pop(i)
            self.blocks.insert(i, other.blocks[i])
        if projection and other.projection is not None:
            self.projection = other.projection

    def build(self, input_ids_shape, segment_ids_shape=None, input_mask_shape=None):
        if not self.embeddings.built:
            self.embeddings.build(input_ids_shape)
        shape = tuple(input_ids_shape) + (self.embeddings.width,)
        # (Blocks or a projection shared with another encoder may be built already.)
        if self.projection is not None and not self.projection.built:
            self.projection.build(shape)
        shape = tuple(input_ids_shape) + (self.hidden_size,)
        for block in self.blocks:
            if not block.built:
                build_bert_block(block, shape, self.config)
        self.built = True

    def call(self, input_ids, segment_ids, input_mask, training=None):
        return self.layer_outputs(input_ids, segment_ids, input_mask, training=training)[-1]

    def layer_outputs(self, input_ids, segment_ids, input_mask, training=None):
        """Every block's output, bottom first (`call` returns the last)."""
        x = self.embeddings(input_ids, segment_ids, training=training)
        if self.projection is not None:
            x = self.projection(x)
        padding_mask = keras.ops.cast(input_mask, "bool")
        outputs = []
        for block in self.blocks:
            x = block(x, padding_mask=padding_mask, training=training)
            outputs.append(x)
        return outputs

    def compute_output_shape(self, input_ids_shape, segment_ids_shape=None, input_mask_shape=None):
        return tuple(input_ids_shape) + (self.hidden_size,)

    def _trackable_children(self, save_type="checkpoint", **kwargs):
        # Keras 3 gives tf.train.Checkpoint the layers held in attributes but
        # not those in a list, so without this the blocks were not saved.
        children = super()._trackable_children(save_type, **kwargs)
        if save_type == "checkpoint":
            children.update({f"layer_{i}": block for i, block in enumerate(self.blocks)})
        return children

    def get_config(self):
        return {
            **super().get_config(),
            "config": self.config.to_dict(),
            "tower": self.tower,
            "embeddings": keras.layers.serialize(self.embeddings),
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        electra_config = ElectraConfig.from_dict(config.pop("config"))
        embeddings = keras.layers.deserialize(
            config.pop("embeddings"), custom_objects={"ElectraEmbeddings": ElectraEmbeddings,
                                                      "GdesEmbeddings": GdesEmbeddings})
        return cls(electra_config, config.pop("tower"), embeddings, **config)
