"""What the candidate-selection objectives (teams, mc_bert) share: candidate sets, their head, extra layers."""

import keras
import tensorflow as tf

from electra_tf.modeling import dropout
from electra_tf.modeling.config import BuiltFromConfig
from electra_tf.modeling.embeddings import initializer
from electra_tf.modeling.encoder import bert_block, build_bert_block, exact_gelu, tower_dropout_keys
from electra_tf.pretraining.objectives.base import GeneratorObjective
from electra_tf.pretraining.sampling import gumbel_top_k, temperature_at


class SelectionObjective(GeneratorObjective):
    """A generator objective whose main model chooses the original among candidates (teams, mc_bert).

    Its heads are not ELECTRA's detector on the last layer (`detection_head`
    False): exports hold the main model's encoder. `candidate_size` is
    `config.candidate_size`, or the subclass's `default_candidate_size` when 0.
    Subclasses return, besides their losses' inputs, `candidate_ids`,
    `candidate_positions`, `candidate_weights`, `candidate_logits` and
    `candidate_labels`, which the text example shows.

    Args:
        config: the `ElectraConfig`.
        num_train_steps: the run's length (for a temperature schedule).

    Example:

    >>> from electra_tf.pretraining.objectives import create
    >>> objective = create(ElectraConfig.for_size("tiny", objective="mc_bert", candidate_size=4))
    >>> isinstance(objective, SelectionObjective), objective.candidate_size
    (True, 4)
    """

    detection_head = False
    default_candidate_size = None

    def __init__(self, config, num_train_steps=None, rematerialize=False):
        super().__init__(config, num_train_steps, rematerialize)
        self.candidate_size = config.candidate_size or self.default_candidate_size


def special_ids(config):
    """The ids no candidate may be: [PAD], [UNK], [CLS], [SEP], [MASK]."""
    return [config.pad_id, config.unk_id, config.cls_id, config.sep_id, config.mask_id]


def draw_candidates(logits, originals, num_negatives, config, step, example_index, num_train_steps=None):
    """`[original, negatives...]` per position: `num_negatives` distinct tokens drawn from softmax(logits).

    The negatives are drawn without replacement (`sampling.gumbel_top_k`) at the
    sampling temperature, never the original and never a special token, so each
    set holds the original exactly once, at index 0.

    Args:
        logits: float32 `[B, P, V]`, the proposing model's logits at the positions.
        originals: int32 `[B, P]`, the original tokens there.
        num_negatives: how many others per set.
        config: the `ElectraConfig` (seed, temperature, special tokens).
        step, example_index: the keys of the draw.
        num_train_steps: the run's length, for a scheduled temperature.

    Example:

    >>> config = ElectraConfig.for_size("tiny", vocab_size=50, pad_id=0, unk_id=1, cls_id=2, sep_id=3, mask_id=4)
    >>> sets = draw_candidates(tf.zeros([1, 3, 50]), tf.constant([[7, 8, 9]]), 4, config, 0, tf.range(1)).numpy()
    >>> sets.shape, sets[0, :, 0].tolist(), int((sets[0, :, 1:] < 5).sum())
    ((1, 3, 5), [7, 8, 9], 0)
    """
    vocab_size = logits.shape[-1]
    special = tf.reduce_any(tf.one_hot(special_ids(config), vocab_size) > 0, axis=0)
    excluded = (tf.one_hot(originals, vocab_size) > 0) | special
    temperature = temperature_at(config, step, num_train_steps)
    negatives = gumbel_top_k(logits, num_negatives, temperature, config.seed, step, example_index, excluded)
    return tf.concat([originals[..., None], negatives], axis=-1)


@keras.saving.register_keras_serializable(package="electra_tf")
class SelectionHead(BuiltFromConfig, keras.layers.Layer):
    """dense(embedding_size, GELU) -> LayerNorm -> dot product with each candidate's word embedding (+ its bias).

    The scoring of TEAMS's multi-word selection (Model Garden's
    `MultiWordSelectionHead`, no bias) and of MC-BERT's multi-choice cloze
    (its head adds a per-token bias): one float32 logit per candidate.

    Args:
        config: the `ElectraConfig` (widths, LayerNorm epsilon, initializer range).
        **kwargs: `keras.layers.Layer` arguments (`name`, `dtype`).

    Example:

    >>> head = SelectionHead(ElectraConfig.for_size("tiny"))
    >>> tuple(head(np.zeros((2, 3, 64), "float32"), np.zeros((2, 3, 5, 32), "float32")).shape)
    (2, 3, 5)
    """

    def __init__(self, config, **kwargs):
        kwargs.setdefault("name", "selection_head")
        super().__init__(**kwargs)
        self.config = config
        self.dense = keras.layers.Dense(config.embedding_size, activation=exact_gelu,
                                        kernel_initializer=initializer(config), dtype=self.dtype_policy, name="dense")
        self.layer_norm = keras.layers.LayerNormalization(epsilon=config.layer_norm_epsilon, dtype=self.dtype_policy,
                                                          name="layer_norm")

    def build(self, hidden_shape, candidate_embeddings_shape=None, candidate_bias_shape=None):
        self.dense.build(hidden_shape)
        self.layer_norm.build(tuple(hidden_shape[:-1]) + (self.config.embedding_size,))
        self.built = True

    def call(self, hidden, candidate_embeddings, candidate_bias=None):
        """`hidden` `[B, P, H]` at the scored positions, `candidate_embeddings` `[B, P, K, E]`, bias `[B, P, K]`."""
        return candidate_logits(self.layer_norm(self.dense(hidden)), candidate_embeddings, candidate_bias)


def candidate_logits(transformed, candidate_embeddings, candidate_bias=None):
    """float32 `[B, P, K]`: each position's transformed state `[B, P, E]` . each candidate's embedding (+ bias)."""
    x = keras.ops.cast(transformed, "float32")
    logits = keras.ops.einsum("bpe,bpke->bpk", x, keras.ops.cast(candidate_embeddings, "float32"))
    if candidate_bias is not None:
        logits = logits + keras.ops.cast(candidate_bias, "float32")
    return logits


@keras.saving.register_keras_serializable(package="electra_tf")
class TaskLayers(BuiltFromConfig, keras.layers.Layer):
    """Discriminator-sized BERT layers of one task of its own, on top of shared ones (TEAMS's task-specific layers).

    Args:
        config: the `ElectraConfig`; there are `num_layers - task_agnostic_layers` layers.
        **kwargs: `keras.layers.Layer` arguments (`name`, `dtype`).

    Example:

    >>> layers = TaskLayers(ElectraConfig.for_size("tiny"))
    >>> tuple(layers(np.zeros((2, 8, 64), "float32"), np.ones((2, 8), "int32")).shape), len(layers.blocks)
    ((2, 8, 64), 1)
    """

    def __init__(self, config, **kwargs):
        kwargs.setdefault("name", "rtd_layers")
        super().__init__(**kwargs)
        self.config = config
        first = config.task_agnostic_layers
        self.blocks = [bert_block(config, "discriminator", f"layer_{i}_rtd", self.dtype_policy)
                       for i in range(first, config.num_layers)]

    def build(self, hidden_shape, input_mask_shape=None):
        for k, block in enumerate(self.blocks):
            # Dropout ids after the discriminator's own blocks': these layers run in its tower.
            build_bert_block(block, hidden_shape, self.config, self.config.num_layers + k)
        self.built = True

    def call(self, hidden, input_mask, training=None, dropout_keys=None):
        # Each layer reads the one below. (Model Garden's head feeds the shared states to every one
        # of them, so only its last counts; the same at its default of one layer.)
        padding_mask = keras.ops.cast(input_mask, "bool")
        keys = None
        if training and dropout_keys is not None:
            keys = tower_dropout_keys(dropout_keys, "discriminator")
        with dropout.dropout_keys(keys):
            for block in self.blocks:
                hidden = block(hidden, padding_mask=padding_mask, training=training)
        return hidden

    def compute_output_shape(self, hidden_shape, input_mask_shape=None):
        return hidden_shape

    def _trackable_children(self, save_type="checkpoint", **kwargs):
        # As ElectraEncoder's: tf.train.Checkpoint does not see layers kept in a list.
        children = super()._trackable_children(save_type, **kwargs)
        if save_type == "checkpoint":
            children.update({block.name: block for block in self.blocks})
        return children


def update_selection_metrics(metrics, group, logits, labels, losses, weights):
    """`<group>_loss` and `<group>_accuracy` of a choice among candidates, over the positions `weights` selects."""
    predicted = tf.argmax(logits, axis=-1, output_type=tf.int32)
    metrics[f"{group}_loss"].update_state(losses, sample_weight=weights)
    metrics[f"{group}_accuracy"].update_state(tf.cast(predicted == labels, tf.float32), sample_weight=weights)
