"""The discriminator as a `keras_hub.models.ElectraBackbone` preset (backbone + tokenizer).

keras-hub's backbone has the same embeddings, projection and
TransformerEncoder blocks, so every weight has a place; two things differ:

- its blocks use the tanh approximation of GELU, not the original's exact
  erf GELU, so its outputs drift from ours (measured on a probe batch and
  reported: `gelu_difference`);
- it adds `pooled_dense` (tanh(dense([CLS]))), which ELECTRA does not have.
  It is set to the identity kernel and a zero bias, so `pooled_output`
  is tanh of the [CLS] state: deterministic, and a monotone function of
  our `pooled_output` rather than random noise.
"""

import numpy as np

from electra_tf.convert import pretrainer_weights
from electra_tf.utils.errors import UserError

# keras-hub's ElectraBackbone hard-codes this LayerNorm epsilon.
KERAS_HUB_EPSILON = 1e-12


def build_backbone(pretrainer):
    """A keras-hub ElectraBackbone holding `pretrainer`'s discriminator."""
    import keras_hub

    config = pretrainer.config
    if config.layer_norm_epsilon != KERAS_HUB_EPSILON:
        raise UserError(f"this model uses LayerNorm epsilon {config.layer_norm_epsilon} but keras-hub's "
                        f"ElectraBackbone fixes it at {KERAS_HUB_EPSILON}; it cannot be exported to keras-hub")
    backbone = keras_hub.models.ElectraBackbone(
        vocab_size=config.vocab_size, num_layers=config.num_layers, num_heads=config.num_heads,
        hidden_dim=config.hidden_size, embedding_dim=config.embedding_size,
        intermediate_dim=config.intermediate_size, dropout=config.hidden_dropout_prob,
        max_sequence_length=config.max_position_embeddings, num_segments=config.type_vocab_size)
    targets = [
        *pretrainer_weights.embedding_variables((backbone.token_embedding, backbone.position_embedding,
                                                 backbone.segment_embedding, backbone.embeddings_layer_norm)),
        *pretrainer_weights.encoder_variables("electra", getattr(backbone, "embeddings_projection", None),
                                              backbone.transformer_layers),
    ]
    tensors = pretrainer_weights.extract(pretrainer_weights.pretrainer_variables(pretrainer))
    pretrainer_weights.assign(targets, tensors)
    backbone.pooled_dense.kernel.assign(np.eye(config.hidden_size, dtype="float32"))
    backbone.pooled_dense.bias.assign(np.zeros(config.hidden_size, dtype="float32"))
    return backbone


def probe_batch(config, batch_size=4, seed=0):
    """Random ids with both segments and padding in every row but the first, as our models take them."""
    rng = np.random.default_rng(seed)
    length = min(64, config.max_position_embeddings)
    ids = rng.integers(0, config.vocab_size, (batch_size, length), dtype=np.int32)
    lengths = np.linspace(length, length // 2, batch_size).astype(int)
    mask = (np.arange(length)[None, :] < lengths[:, None]).astype(np.int32)
    segments = ((np.arange(length)[None, :] >= lengths[:, None] // 2) * mask).astype(np.int32)
    return {"input_ids": ids * mask, "input_mask": mask, "segment_ids": segments}


def gelu_difference(pretrainer, backbone, batch=None):
    """Largest |sequence_output difference| between ours and the backbone, over the probe's real tokens."""
    batch = batch or probe_batch(pretrainer.config)
    ours = pretrainer.encoder(batch["input_ids"], batch["segment_ids"], batch["input_mask"], training=False)
    theirs = backbone({"token_ids": batch["input_ids"], "segment_ids": batch["segment_ids"],
                       "padding_mask": batch["input_mask"]}, training=False)["sequence_output"]
    real = batch["input_mask"].astype(bool)
    return float(np.max(np.abs(np.asarray(ours) - np.asarray(theirs))[real]))


def write_preset(backbone, vocab_file, lowercase, directory):
    """Saves the backbone and an ElectraTokenizer over our vocabulary as a keras-hub preset directory."""
    import keras_hub

    backbone.save_to_preset(directory)
    keras_hub.models.ElectraTokenizer(vocabulary=vocab_file, lowercase=lowercase).save_to_preset(directory)
