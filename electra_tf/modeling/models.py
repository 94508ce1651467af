"""The generator (masked LM) and the discriminator (replaced-token detector)."""

import keras

from electra_tf.modeling.config import BuiltFromConfig
from electra_tf.modeling.embeddings import ElectraEmbeddings, GdesEmbeddings
from electra_tf.modeling.encoder import ElectraEncoder
from electra_tf.modeling.heads import DiscriminatorHead, GeneratorHead


class _Tower(BuiltFromConfig, keras.Model):
    """What both towers share: an ElectraConfig, embeddings given or owned, and their (de)serialization.

    A tower saved alone (`.keras`) comes back with embeddings of its own; inside
    an `ElectraPretrainer` the towers are given theirs (one shared instance when tied).
    """

    def __init__(self, config, embeddings=None, embedding_tower="discriminator", rematerialize=False, **kwargs):
        super().__init__(**kwargs)
        self.config = config
        self.rematerialize = rematerialize
        self.embeddings = embeddings if embeddings is not None else ElectraEmbeddings(
            config, embedding_tower, dtype=self.dtype_policy)

    def get_config(self):
        return {**super().get_config(), "rematerialize": self.rematerialize}


@keras.saving.register_keras_serializable(package="electra_tf")
class ElectraDiscriminator(_Tower):
    """The model kept after pre-training: encoder + replaced-token head.

    Takes a dict of int32 `[batch, seq]` tensors `input_ids`, `input_mask`,
    `segment_ids`; returns `sequence_output` `[batch, seq, hidden]` and
    float32 `logits` `[batch, seq]` (positive = "replaced"). In training,
    `dropout_keys` (uint32 `[batch]`) key the dropout masks (`ElectraEncoder`).

    Args:
        config: the `ElectraConfig`.
        embeddings: the `ElectraEmbeddings` to read tokens with (the pretrainer
            passes the ones it shares with the generator); a new set if omitted.
        rematerialize: recompute each block in the backward pass (`ElectraEncoder`).
        **kwargs: `keras.Model` arguments (`name`, `dtype`).

    Example:

    >>> discriminator = ElectraDiscriminator(ElectraConfig.for_size("tiny"))
    >>> ids = np.ones((2, 16), "int32")
    >>> out = discriminator({"input_ids": ids, "input_mask": ids, "segment_ids": 0 * ids})
    >>> tuple(out["logits"].shape)
    (2, 16)
    """

    def __init__(self, config, embeddings=None, rematerialize=False, **kwargs):
        kwargs.setdefault("name", "discriminator")
        super().__init__(config, embeddings, rematerialize=rematerialize, **kwargs)
        self.encoder = ElectraEncoder(config, "discriminator", self.embeddings, rematerialize, dtype=self.dtype_policy)
        self.head = DiscriminatorHead(config, dtype=self.dtype_policy)

    def call(self, inputs, training=None, dropout_keys=None):
        hidden = self.encoder(inputs["input_ids"], inputs["segment_ids"], inputs["input_mask"], training=training,
                              dropout_keys=dropout_keys)
        return {"sequence_output": hidden, "logits": self.head(hidden)}


@keras.saving.register_keras_serializable(package="electra_tf")
class ElectraGenerator(_Tower):
    """A masked-LM: encoder + vocabulary head evaluated at given positions.

    Takes the dict of `ElectraDiscriminator` plus int32 `masked_lm_positions`
    `[batch, num_predictions]`; returns float32 logits
    `[batch, num_predictions, vocab_size]`. `dropout_keys` as for `ElectraDiscriminator`.

    Args:
        config: the `ElectraConfig`.
        embeddings: the shared `ElectraEmbeddings`; a new set if omitted.
        tower: `"generator"` (ELECTRA's small generator) or `"discriminator"`
            (a full-size BERT-style MLM, the `objective="mlm"` baseline).
        rematerialize: recompute each block in the backward pass (`ElectraEncoder`).
        **kwargs: `keras.Model` arguments (`name`, `dtype`).

    Example:

    >>> generator = ElectraGenerator(ElectraConfig.for_size("tiny"))
    >>> ids = np.ones((2, 16), "int32")
    >>> logits = generator({"input_ids": ids, "input_mask": ids, "segment_ids": 0 * ids,
    ...                     "masked_lm_positions": np.zeros((2, 3), "int32")})
    >>> tuple(logits.shape)
    (2, 3, 30522)
    """

    def __init__(self, config, embeddings=None, tower="generator", rematerialize=False, **kwargs):
        kwargs.setdefault("name", "generator")
        super().__init__(config, embeddings, tower, rematerialize, **kwargs)
        self.tower = tower
        self.encoder = ElectraEncoder(config, tower, self.embeddings, rematerialize, dtype=self.dtype_policy)
        self.head = GeneratorHead(config, self.embeddings.word_embeddings, dtype=self.dtype_policy)

    def call(self, inputs, training=None, dropout_keys=None):
        hidden = self.encoder(inputs["input_ids"], inputs["segment_ids"], inputs["input_mask"], training=training,
                              dropout_keys=dropout_keys)
        return self.head(hidden, inputs["masked_lm_positions"])

    def get_config(self):
        return {**super().get_config(), "tower": self.tower}


def build_tower(model, seq_length):
    """Creates the variables of an ElectraDiscriminator or ElectraGenerator without running it (once)."""
    if model.built:
        return
    model.encoder.build((None, seq_length))
    if isinstance(model, ElectraDiscriminator):
        model.head.build((None, seq_length, model.encoder.hidden_size))
    else:
        model.head.build((None, None, model.encoder.hidden_size))
    model.built = True


def standalone(model):
    """`model` with embeddings of its own holding the values it reads: GDES's residual folded in.

    Returns `model` itself unless its embeddings are `GdesEmbeddings`; the
    copy computes the same outputs with one plain embedding set, which is
    what exports and conversions hold.

    Args:
        model: an `ElectraDiscriminator` or `ElectraGenerator` (built).

    Example:

    >>> config = ElectraConfig.for_size("tiny", embedding_sharing="gdes")
    >>> discriminator = ElectraDiscriminator(config, GdesEmbeddings(config, ElectraEmbeddings(config)))
    >>> build_tower(discriminator, 16)
    >>> type(standalone(discriminator).embeddings).__name__
    'ElectraEmbeddings'
    """
    if not isinstance(model.embeddings, GdesEmbeddings):
        return model
    config = model.config
    extra = {} if isinstance(model, ElectraDiscriminator) else {"tower": model.tower}
    copy = type(model)(config, ElectraEmbeddings(config, dtype=model.dtype_policy), name=model.name,
                       dtype=model.dtype_policy, **extra)
    build_tower(copy, config.max_seq_length)
    for target, value in zip(copy.embeddings.tables(), model.embeddings.tables()):
        target.assign(value)
    pairs = list(zip(copy.encoder.blocks, model.encoder.blocks))
    if model.encoder.projection is not None:
        pairs.append((copy.encoder.projection, model.encoder.projection))
    if isinstance(model, ElectraDiscriminator):
        pairs += [(copy.head.dense, model.head.dense), (copy.head.dense_prediction, model.head.dense_prediction)]
    else:
        pairs += [(copy.head.dense, model.head.dense), (copy.head.layer_norm, model.head.layer_norm)]
        copy.head.output_bias.assign(model.head.output_bias)
    for target, source in pairs:
        for variable, value in zip(target.weights, source.weights, strict=True):
            variable.assign(value)
    return copy
