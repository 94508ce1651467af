"""The generator (masked LM) and the discriminator (replaced-token detector)."""

import keras

from electra_tf.modeling.encoder import ElectraEncoder
from electra_tf.modeling.heads import DiscriminatorHead, GeneratorHead


class ElectraDiscriminator(keras.Model):
    """The model kept after pre-training: encoder + replaced-token head.

    Takes a dict of int32 `[batch, seq]` tensors `input_ids`, `input_mask`,
    `segment_ids`; returns `sequence_output` `[batch, seq, hidden]` and
    float32 `logits` `[batch, seq]` (positive = "replaced").

    Example:

    >>> config = ElectraConfig.for_size("tiny")
    >>> discriminator = ElectraDiscriminator(config, ElectraEmbeddings(config))
    >>> ids = np.ones((2, 16), "int32")
    >>> out = discriminator({"input_ids": ids, "input_mask": ids, "segment_ids": 0 * ids})
    >>> out["logits"].shape
    (2, 16)
    """

    def __init__(self, config, embeddings, **kwargs):
        kwargs.setdefault("name", "discriminator")
        super().__init__(**kwargs)
        self.config = config
        self.encoder = ElectraEncoder(config, "discriminator", embeddings, dtype=self.dtype_policy)
        self.head = DiscriminatorHead(config, dtype=self.dtype_policy)

    def call(self, inputs, training=None):
        hidden = self.encoder(inputs["input_ids"], inputs["segment_ids"], inputs["input_mask"], training=training)
        return {"sequence_output": hidden, "logits": self.head(hidden)}


class ElectraGenerator(keras.Model):
    """A masked-LM: encoder + vocabulary head evaluated at given positions.

    `tower="generator"` (ELECTRA's small generator) or `"discriminator"`
    (a full-size BERT-style MLM, the `objective="mlm"` baseline). Takes the
    dict of `ElectraDiscriminator` plus int32 `masked_lm_positions`
    `[batch, num_predictions]`; returns float32 logits
    `[batch, num_predictions, vocab_size]`.

    Example:

    >>> config = ElectraConfig.for_size("tiny")
    >>> generator = ElectraGenerator(config, ElectraEmbeddings(config))
    >>> ids = np.ones((2, 16), "int32")
    >>> generator({"input_ids": ids, "input_mask": ids, "segment_ids": 0 * ids,
    ...            "masked_lm_positions": np.zeros((2, 3), "int32")}).shape
    (2, 3, 30522)
    """

    def __init__(self, config, embeddings, tower="generator", **kwargs):
        kwargs.setdefault("name", "generator")
        super().__init__(**kwargs)
        self.config = config
        self.encoder = ElectraEncoder(config, tower, embeddings, dtype=self.dtype_policy)
        self.head = GeneratorHead(config, embeddings.word_embeddings, dtype=self.dtype_policy)

    def call(self, inputs, training=None):
        hidden = self.encoder(inputs["input_ids"], inputs["segment_ids"], inputs["input_mask"], training=training)
        at_masked = keras.ops.take_along_axis(hidden, inputs["masked_lm_positions"][:, :, None], axis=1)
        return self.head(at_masked)
