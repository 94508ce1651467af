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
        return cls(config.vocab_size, config.tower_embedding_size(tower), config.max_position_embeddings,
                   config.type_vocab_size, config.tower_layers(tower), hidden, intermediate)


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
    """Every tensor of an ElectraPretrainer for `config`, by original name.

    The generator's embeddings appear under `generator/embeddings/` only when
    they are not the discriminator's (`config.sharing` other than "tied").
    """
    disc = TowerDims.of(config, "discriminator")
    shapes = {**embedding_shapes(DISCRIMINATOR_SCOPE, disc), **encoder_shapes(DISCRIMINATOR_SCOPE, disc),
              **discriminator_head_shapes(disc)}
    if with_generator:
        gen = TowerDims.of(config, "generator")
        if config.sharing != "tied":
            shapes.update(embedding_shapes(GENERATOR_SCOPE, gen))
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
    """Decides how the generator's embeddings (`generator/embeddings/*`) relate to the discriminator's.

    Returns ("tied" or "untied", a sentence saying what was done). Equal
    copies are folded into the one shared set ("tied"). A generator without
    an `embeddings_project` whose tables differ is the original's
    `untied_generator_embeddings` layout (tables as wide as its hidden
    states): both sets are kept ("untied"). Different copies of the same
    width, each tower projecting them, have no electra-tf layout that keeps
    both; the discriminator's are kept (it is the model that is fine-tuned)
    and the sentence says so.
    """
    prefix = f"{GENERATOR_SCOPE}/embeddings/"
    own = {name: tensors[prefix + name] for name in EMBEDDING_NAMES if prefix + name in tensors}
    if not own:
        return "tied", "generator and discriminator share one set of embeddings"
    kept = {name: tensors[f"{DISCRIMINATOR_SCOPE}/embeddings/{name}"] for name in own}
    if all(value.shape == kept[name].shape and np.array_equal(value, kept[name]) for name, value in own.items()):
        for name in own:
            del tensors[prefix + name]
        return "tied", ("the generator's embeddings equal the discriminator's (tied, as in the released models): "
                        "one shared set kept")
    if f"{GENERATOR_SCOPE}/embeddings_project/kernel" not in tensors:
        return "untied", ("the generator has embeddings of its own, as wide as its hidden states (the original's "
                          "untied_generator_embeddings): both sets kept, embedding_sharing=untied")
    differences = {}
    for name, value in own.items():
        if value.shape != kept[name].shape:
            raise UserError(f"the generator's {name} is {value.shape} but the discriminator's is "
                            f"{kept[name].shape}, and the generator projects them; electra-tf cannot hold that pair")
        differences[name] = float(np.max(np.abs(value - kept[name])))
        del tensors[prefix + name]
    listed = ", ".join(f"{name} (max |difference| {diff:.3g})" for name, diff in differences.items() if diff)
    return "tied", (f"the generator's embeddings differ from the discriminator's in {listed}; electra-tf shares "
                    "one set between towers that both project their embeddings: kept the discriminator's, the "
                    "generator's were dropped")
