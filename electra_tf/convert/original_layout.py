"""The original google-research/electra variable names and shapes: the hub every conversion passes through.

Each importer turns its format into a dict `{original name: numpy array}`
laid out as the TF1 code stores it (dense kernels `[in, out]`, attention
projections `[hidden, hidden]`), and each exporter starts from one. The
names are those of `model/modeling.py` and `run_pretraining.py`:

    electra/embeddings/{word,position,token_type}_embeddings, electra/embeddings/LayerNorm/{gamma,beta}
    electra/embeddings_project/{kernel,bias}            (only when embedding size != hidden size)
    electra/encoder/layer_<i>/attention/self/{query,key,value}/{kernel,bias}
    electra/encoder/layer_<i>/attention/output/dense/{kernel,bias}, .../attention/output/LayerNorm/{gamma,beta}
    electra/encoder/layer_<i>/intermediate/dense/{kernel,bias}
    electra/encoder/layer_<i>/output/dense/{kernel,bias}, .../output/LayerNorm/{gamma,beta}
    generator/...                                        (the generator tower, same layout)
    generator/embeddings/...                             (only with untied generator embeddings)
    generator_predictions/dense/{kernel,bias}, generator_predictions/LayerNorm/{gamma,beta},
    generator_predictions/output_bias
    discriminator_predictions/dense/{kernel,bias}, discriminator_predictions/dense_1/{kernel,bias}
"""

import dataclasses

import numpy as np

from electra_tf.utils.errors import UserError

DISCRIMINATOR_SCOPE = "electra"
GENERATOR_SCOPE = "generator"
EMBEDDING_TABLES = ("word_embeddings", "position_embeddings", "token_type_embeddings")
EMBEDDING_NAMES = EMBEDDING_TABLES + ("LayerNorm/gamma", "LayerNorm/beta")


@dataclasses.dataclass(frozen=True)
class TowerDims:
    """What fixes the shapes of one tower (embeddings + encoder)."""

    vocab_size: int
    embedding_size: int
    max_position_embeddings: int
    type_vocab_size: int
    num_layers: int
    hidden_size: int
    intermediate_size: int

    @classmethod
    def of(cls, config, tower):
        """The dims of `config`'s "discriminator" or "generator" tower."""
        hidden, _, intermediate = config.tower_dims(tower)
        return cls(config.vocab_size, config.embedding_size, config.max_position_embeddings,
                   config.type_vocab_size, config.num_layers, hidden, intermediate)


def embedding_shapes(scope, dims):
    e = dims.embedding_size
    return {
        f"{scope}/embeddings/word_embeddings": (dims.vocab_size, e),
        f"{scope}/embeddings/position_embeddings": (dims.max_position_embeddings, e),
        f"{scope}/embeddings/token_type_embeddings": (dims.type_vocab_size, e),
        f"{scope}/embeddings/LayerNorm/gamma": (e,),
        f"{scope}/embeddings/LayerNorm/beta": (e,),
    }


def _dense(name, n_in, n_out):
    return {f"{name}/kernel": (n_in, n_out), f"{name}/bias": (n_out,)}


def _norm(name, width):
    return {f"{name}/gamma": (width,), f"{name}/beta": (width,)}


def encoder_shapes(scope, dims):
    """The tower's projection (if any) and Transformer layers, without the embeddings."""
    h, i = dims.hidden_size, dims.intermediate_size
    shapes = {}
    if dims.embedding_size != h:
        shapes.update(_dense(f"{scope}/embeddings_project", dims.embedding_size, h))
    for layer in range(dims.num_layers):
        prefix = f"{scope}/encoder/layer_{layer}"
        for part in ("query", "key", "value"):
            shapes.update(_dense(f"{prefix}/attention/self/{part}", h, h))
        shapes.update(_dense(f"{prefix}/attention/output/dense", h, h))
        shapes.update(_norm(f"{prefix}/attention/output/LayerNorm", h))
        shapes.update(_dense(f"{prefix}/intermediate/dense", h, i))
        shapes.update(_dense(f"{prefix}/output/dense", i, h))
        shapes.update(_norm(f"{prefix}/output/LayerNorm", h))
    return shapes


def discriminator_head_shapes(dims):
    h = dims.hidden_size
    return {**_dense("discriminator_predictions/dense", h, h), **_dense("discriminator_predictions/dense_1", h, 1)}


def generator_head_shapes(dims):
    e = dims.embedding_size
    return {**_dense("generator_predictions/dense", dims.hidden_size, e),
            **_norm("generator_predictions/LayerNorm", e),
            "generator_predictions/output_bias": (dims.vocab_size,)}


def pretrainer_shapes(config, with_generator=True):
    """Every tensor of an ElectraPretrainer for `config`, by original name (embeddings shared)."""
    disc = TowerDims.of(config, "discriminator")
    shapes = {**embedding_shapes(DISCRIMINATOR_SCOPE, disc), **encoder_shapes(DISCRIMINATOR_SCOPE, disc),
              **discriminator_head_shapes(disc)}
    if with_generator:
        gen = TowerDims.of(config, "generator")
        shapes.update({**encoder_shapes(GENERATOR_SCOPE, gen), **generator_head_shapes(gen)})
    return shapes


def check_tensors(tensors, expected, source):
    """Raises a one-line UserError unless `tensors` has exactly the `expected` names and shapes."""
    missing = [name for name in expected if name not in tensors]
    if missing:
        more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
        raise UserError(f"{source} lacks {missing[0]}{more}; it is not a complete ELECTRA checkpoint of the "
                        "architecture its shapes describe")
    unexpected = sorted(set(tensors) - set(expected))
    if unexpected:
        more = f" and {len(unexpected) - 1} more" if len(unexpected) > 1 else ""
        raise UserError(f"{source} has {unexpected[0]}{more}, which no ELECTRA pre-training model of its "
                        "architecture has; check that it is an ELECTRA checkpoint")
    for name, shape in expected.items():
        if tuple(tensors[name].shape) != tuple(shape):
            raise UserError(f"shape mismatch in {source}: {name} is {tuple(tensors[name].shape)}, the "
                            f"architecture needs {tuple(shape)}; the checkpoint and its config disagree")


def share_generator_embeddings(tensors):
    """Folds untied generator embeddings (`generator/embeddings/*`) into the shared set; returns what it did.

    electra-tf has one embedding table for both towers, as the original
    has by default. When the generator came with its own copy, it is
    dropped if equal to the discriminator's; if different, the
    discriminator's is kept (it is the model that is fine-tuned) and the
    returned sentence says so.
    """
    own = {name: tensors.pop(f"{GENERATOR_SCOPE}/embeddings/{name}") for name in EMBEDDING_NAMES
           if f"{GENERATOR_SCOPE}/embeddings/{name}" in tensors}
    if not own:
        return "generator and discriminator share one set of embeddings"
    differences = {}
    for name, value in own.items():
        kept = tensors[f"{DISCRIMINATOR_SCOPE}/embeddings/{name}"]
        if value.shape != kept.shape:
            raise UserError(f"the generator's {name} is {value.shape} but the discriminator's is {kept.shape}; "
                            "electra-tf shares one embedding table between the towers, so these cannot be "
                            "converted")
        if not np.array_equal(value, kept):
            differences[name] = float(np.max(np.abs(value - kept)))
    if not differences:
        return ("the generator's embeddings equal the discriminator's (tied, as in the released models): one shared "
                "set kept")
    listed = ", ".join(f"{name} (max |difference| {diff:.3g})" for name, diff in differences.items())
    return (f"the generator's embeddings differ from the discriminator's in {listed}; electra-tf shares one set: "
            "kept the discriminator's, the generator's were dropped")
