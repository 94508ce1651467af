"""Reading and writing an ElectraPretrainer's variables by the original's names (see original_layout)."""

import numpy as np

from electra_tf.convert.original_layout import DISCRIMINATOR_SCOPE, EMBEDDING_NAMES, GENERATOR_SCOPE


def _dense(name, layer):
    return [(f"{name}/kernel", layer.kernel), (f"{name}/bias", layer.bias)]


def _norm(name, layer):
    return [(f"{name}/gamma", layer.gamma), (f"{name}/beta", layer.beta)]


def embedding_variables(embeddings, scope=DISCRIMINATOR_SCOPE):
    """(original name, variable) for keras-hub's word, position, segment and LayerNorm layers."""
    word, position, segment, norm = embeddings
    return embedding_tables([word.embeddings, position.position_embeddings, segment.embeddings, norm.gamma,
                             norm.beta], scope)


def embedding_tables(tables, scope=DISCRIMINATOR_SCOPE):
    """(original name, value) for `ElectraEmbeddings.tables()` (GDES's are folded tensors, not variables)."""
    return list(zip([f"{scope}/embeddings/{name}" for name in EMBEDDING_NAMES], tables, strict=True))


def block_variables(prefix, block):
    """(original name, variable) for one keras-hub TransformerEncoder configured as a BERT layer."""
    attention = block._self_attention_layer
    return [*_dense(f"{prefix}/attention/self/query", attention._query_dense),
            *_dense(f"{prefix}/attention/self/key", attention._key_dense),
            *_dense(f"{prefix}/attention/self/value", attention._value_dense),
            *_dense(f"{prefix}/attention/output/dense", attention._output_dense),
            *_norm(f"{prefix}/attention/output/LayerNorm", block._self_attention_layer_norm),
            *_dense(f"{prefix}/intermediate/dense", block._feedforward_intermediate_dense),
            *_dense(f"{prefix}/output/dense", block._feedforward_output_dense),
            *_norm(f"{prefix}/output/LayerNorm", block._feedforward_layer_norm)]


def encoder_variables(scope, projection, blocks):
    pairs = _dense(f"{scope}/embeddings_project", projection) if projection is not None else []
    for i, block in enumerate(blocks):
        pairs += block_variables(f"{scope}/encoder/layer_{i}", block)
    return pairs


def pretrainer_variables(pretrainer):
    """Every variable of a pretrainer with a main model and a generator, with its original name.

    The main model is the kept one (the discriminator; mc_bert's main model),
    under the discriminator's names; its head only when it is ELECTRA's
    detector (`Objective.detection_head`). Its embeddings are what it reads:
    with GDES, the folded tensors (which cannot be assigned). The generator's
    appear under `generator/embeddings/` when they are not the main model's.
    """
    disc, gen = getattr(pretrainer, pretrainer.objective.kept), pretrainer.generator
    own = [] if gen.embeddings is disc.embeddings else embedding_tables(gen.embeddings.tables(), GENERATOR_SCOPE)
    head = [*_dense("discriminator_predictions/dense", disc.head.dense),
            *_dense("discriminator_predictions/dense_1", disc.head.dense_prediction)] \
        if pretrainer.objective.detection_head else []
    return [
        *embedding_tables(disc.embeddings.tables()),
        *own,
        *encoder_variables(DISCRIMINATOR_SCOPE, disc.encoder.projection, disc.encoder.blocks),
        *head,
        *encoder_variables(GENERATOR_SCOPE, gen.encoder.projection, gen.encoder.blocks),
        *_dense("generator_predictions/dense", gen.head.dense),
        *_norm("generator_predictions/LayerNorm", gen.head.layer_norm),
        ("generator_predictions/output_bias", gen.head.output_bias),
    ]


def assign(pairs, tensors):
    """Sets each variable from `tensors`; names absent from `tensors` keep their values.

    Attention kernels are `[hidden, hidden]` in the original and
    `[hidden, heads, head_size]` (output: `[heads, head_size, hidden]`) in
    Keras; heads are consecutive column blocks in both, so a row-major
    reshape is exact.
    """
    for name, variable in pairs:
        if name in tensors:
            variable.assign(np.reshape(tensors[name], variable.shape).astype(variable.dtype))


def extract(pairs):
    """`{original name: float32 array}` in the original's layout."""
    tensors = {}
    for name, variable in pairs:
        value = np.asarray(variable.numpy(), dtype=np.float32)
        if name.endswith("/kernel") and value.ndim == 3:
            value = value.reshape((value.shape[0], -1) if "/self/" in name else (-1, value.shape[-1]))
        elif name.endswith("/bias") and value.ndim == 2:
            value = value.reshape(-1)
        tensors[name] = value
    return tensors


def encoder_pairs(encoder):
    """(original name, variable) of an `ElectraEncoder`: its embeddings' tables, projection and blocks.

    Under the discriminator's names (`electra/...`), whichever tower it is:
    the names a fine-tuning model's encoder is read and written by.
    """
    return [*embedding_tables(encoder.embeddings.tables()),
            *encoder_variables(DISCRIMINATOR_SCOPE, encoder.projection, encoder.blocks)]
