"""One Transformer tower (generator or discriminator) over shared embeddings."""

import functools

import keras
import keras_hub
import tensorflow as tf

from electra_tf.modeling import dropout
from electra_tf.modeling.config import TOWERS, ElectraConfig
from electra_tf.modeling.embeddings import EMBEDDINGS_DROPOUT_ID, ElectraEmbeddings, GdesEmbeddings, initializer
from electra_tf.utils import keyed_random


@keras.saving.register_keras_serializable(package="electra_tf")
def exact_gelu(x):
    # BERT's and the original ELECTRA's erf GELU. keras-hub's own ELECTRA
    # uses the tanh approximation, which breaks parity with checkpoints.
    # Computed in float32: TF's bfloat16 erf on CPU was ~12x slower (bench/RESULTS.md).
    return keras.ops.cast(keras.activations.gelu(keras.ops.cast(x, "float32"), approximate=False), x.dtype)


def _run_block(block, x, padding_mask, training, keys):
    # The keys are entered here, not around the loop, so that a recomputed block
    # (rematerialize) sees them again when the backward pass re-runs it.
    with dropout.dropout_keys(keys):
        return block(x, padding_mask=padding_mask, training=training)


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


def block_dropout_id(index):
    """The dropout id of the first of a tower's block `index`'s three dropout layers (ids are unique per tower)."""
    return EMBEDDINGS_DROPOUT_ID + 1 + 3 * index


def build_bert_block(block, shape, config, index):
    """Builds a `bert_block` for inputs of `shape`, gives its dropout layers BERT's two rates and makes
    them `KeyedDropout`s with the ids of block `index` of its tower."""
    block.build(shape)
    # TransformerEncoder has one dropout rate; BERT has a separate one for attention
    # probabilities, which lives in the attention layer. Keras' attention applies its
    # dropout layer only when its own `_dropout` is above 0, so both are set.
    attention = block._self_attention_layer
    attention._dropout = config.attention_probs_dropout_prob
    attention._dropout_layer.rate = config.attention_probs_dropout_prob
    block._self_attention_dropout.rate = config.hidden_dropout_prob
    block._feedforward_dropout.rate = config.hidden_dropout_prob
    first_id = block_dropout_id(index)
    dropout.KeyedDropout.adopt(attention._dropout_layer, first_id)
    dropout.KeyedDropout.adopt(block._self_attention_dropout, first_id + 1)
    dropout.KeyedDropout.adopt(block._feedforward_dropout, first_id + 2)


def tower_dropout_keys(dropout_keys, tower):
    """The keys a tower's dropout layers draw with, from the step's per-example `dropout_keys`."""
    return keyed_random.fold(dropout_keys, 1 + TOWERS.index(tower))


@keras.saving.register_keras_serializable(package="electra_tf")
class ElectraEncoder(keras.layers.Layer):
    """Shared embeddings -> per-tower projection -> post-LayerNorm BERT blocks.

    The blocks are keras-hub `TransformerEncoder`s configured to BERT's
    numerics: post-LayerNorm, epsilon from the config (1e-12), exact GELU.
    When the embeddings' width differs from the tower's hidden size the tower
    owns a dense projection (the original's `embeddings_project`).

    Every dropout is a `KeyedDropout`. Given `dropout_keys` (uint32
    `[batch]`, one per example), the masks are a function of those keys, the
    tower and the layer only; without them the tower draws per-call keys from
    a seed generator (Keras' global seed sets it, as it sets Keras' dropout).

    Args:
        config: the `ElectraConfig`.
        tower: `"discriminator"` or `"generator"`: which of the config's widths and depths to use.
        embeddings: the `ElectraEmbeddings` to read tokens with (by default shared by both towers).
        rematerialize: in training, keep only each block's input for the backward pass and
            recompute the rest (same masks, same gradients; less memory, ~1/3 more compute).
        **kwargs: `keras.layers.Layer` arguments (`name`, `dtype`).

    Example:

    >>> config = ElectraConfig.for_size("tiny")
    >>> shared = ElectraEmbeddings(config)
    >>> generator_tower = ElectraEncoder(config, "generator", shared)
    >>> ids = np.ones((2, 16), "int32")
    >>> tuple(generator_tower(ids, np.zeros_like(ids), np.ones_like(ids)).shape)
    (2, 16, 32)
    """

    def __init__(self, config, tower, embeddings, rematerialize=False, **kwargs):
        kwargs.setdefault("name", f"{tower}_encoder")
        super().__init__(**kwargs)
        self.config = config
        self.tower = tower
        self.embeddings = embeddings
        self.rematerialize = rematerialize
        self.drops = config.hidden_dropout_prob > 0 or config.attention_probs_dropout_prob > 0
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
        for i, block in enumerate(self.blocks):
            if not block.built:
                build_bert_block(block, shape, self.config, i)
        self.built = True

    def call(self, input_ids, segment_ids, input_mask, training=None, dropout_keys=None):
        return self.layer_outputs(input_ids, segment_ids, input_mask, training=training,
                                  dropout_keys=dropout_keys)[-1]

    def layer_outputs(self, input_ids, segment_ids, input_mask, training=None, dropout_keys=None):
        """Every block's output, bottom first (`call` returns the last)."""
        keys = None
        if training and self.drops:
            if dropout_keys is None:
                # The first block's generator (its dropouts are made with the larger rate, so they
                # have one): a generator of the encoder's own would take a draw from Keras' global
                # seed and so change every initial weight drawn after it.
                generator = self.blocks[0]._feedforward_dropout.seed_generator
                dropout_keys = dropout.keys_from_seed_generator(generator, tf.shape(input_ids)[0])
            keys = tower_dropout_keys(dropout_keys, self.tower)
        with dropout.dropout_keys(keys):
            x = self.embeddings(input_ids, segment_ids, training=training)
        if self.projection is not None:
            x = self.projection(x)
        padding_mask = keras.ops.cast(input_mask, "bool")
        outputs = []
        for block in self.blocks:
            run = functools.partial(_run_block, block, padding_mask=padding_mask, training=training, keys=keys)
            x = tf.recompute_grad(run)(x) if training and self.rematerialize else run(x)
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
            "rematerialize": self.rematerialize,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        electra_config = ElectraConfig.from_dict(config.pop("config"))
        embeddings = keras.layers.deserialize(
            config.pop("embeddings"), custom_objects={"ElectraEmbeddings": ElectraEmbeddings,
                                                      "GdesEmbeddings": GdesEmbeddings})
        return cls(electra_config, config.pop("tower"), embeddings, **config)
