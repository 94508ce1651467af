"""Original google-research/electra TF1 pre-training checkpoints, read with `tf.train.load_checkpoint`.

Their variables already have the names and layout of `original_layout`;
this module finds the checkpoint, drops the optimizer's slots and the
step counter, and reads the architecture off the shapes. The number of
attention heads is not stored: the original derives it as
`max(1, hidden_size // 64)` (`util/training_utils.py`,
`run_pretraining.get_generator_config`), and so does this reader unless
told otherwise.
"""

import os
import re

from electra_tf.convert import original_layout as layout
from electra_tf.utils.errors import UserError

# AdamWeightDecayOptimizer's slots are "<variable>/adam_m" and "<variable>/adam_v".
_SLOT = re.compile(r"/adam_[mv]$")
_MODEL_SCOPES = (f"{layout.DISCRIMINATOR_SCOPE}/", f"{layout.GENERATOR_SCOPE}/", "generator_predictions/",
                 "discriminator_predictions/")
_WORDS = f"{layout.DISCRIMINATOR_SCOPE}/embeddings/word_embeddings"


def checkpoint_prefix(path):
    """The checkpoint prefix for `path`: a prefix itself, or a directory's latest checkpoint."""
    import tensorflow as tf

    if os.path.isdir(path):
        prefix = tf.train.latest_checkpoint(path)
        if prefix:
            return prefix
        indexes = sorted(f for f in os.listdir(path) if f.endswith(".index"))
        if len(indexes) == 1:
            return os.path.join(path, indexes[0][: -len(".index")])
        raise UserError(f"--tf1_checkpoint {path} holds no checkpoint (no 'checkpoint' file and "
                        f"{len(indexes)} *.index files); pass the prefix, e.g. {path}/model.ckpt-1000000")
    if not os.path.exists(f"{path}.index"):
        raise UserError(f"{path}.index not found; --tf1_checkpoint takes a checkpoint prefix (the path without "
                        ".index / .data-*) or the directory that holds it")
    return path


def _layer_count(names, scope):
    return len({m.group(1) for n in names if (m := re.match(rf"{scope}/encoder/layer_(\d+)/", n))})


def read(path, num_heads=None):
    """(ElectraConfig fields, generator (hidden, heads, intermediate, layers) or None, tensors, notes) of a
    checkpoint."""
    import tensorflow as tf

    prefix = checkpoint_prefix(path)
    try:
        reader = tf.train.load_checkpoint(prefix)
    except (tf.errors.OpError, ValueError) as e:
        raise UserError(f"cannot read checkpoint {prefix} ({str(e).strip().splitlines()[0]}); "
                        "is it complete?") from None
    shapes = {name: tuple(shape) for name, shape in reader.get_variable_to_shape_map().items()
              if not _SLOT.search(name)}
    model = sorted(name for name in shapes if name.startswith(_MODEL_SCOPES))
    if _WORDS not in shapes:
        scopes = sorted({name.split("/")[0] for name in shapes})
        raise UserError(f"{prefix} is not an ELECTRA checkpoint: it has no {_WORDS} (its scopes: "
                        f"{', '.join(scopes[:6]) or 'none'}); give a google-research/electra checkpoint")

    def shape(name):
        if name not in shapes:
            raise UserError(f"{prefix} lacks {name}; it is not a complete ELECTRA pre-training checkpoint")
        return shapes[name]

    vocab_size, embedding_size = shapes[_WORDS]
    scope = layout.DISCRIMINATOR_SCOPE
    hidden = shape(f"{scope}/encoder/layer_0/attention/self/query/kernel")[1]
    heads = num_heads or max(1, hidden // 64)
    fields = dict(
        vocab_size=vocab_size, embedding_size=embedding_size, hidden_size=hidden, num_heads=heads,
        num_layers=_layer_count(model, scope),
        intermediate_size=shape(f"{scope}/encoder/layer_0/intermediate/dense/kernel")[1],
        max_position_embeddings=shape(f"{scope}/embeddings/position_embeddings")[0],
        type_vocab_size=shape(f"{scope}/embeddings/token_type_embeddings")[0])
    notes = [f"attention heads: {heads} ({'--num_heads' if num_heads else 'the original rule hidden_size // 64'}; "
             "a TF1 checkpoint does not record them)"]
    generator = None
    gen_query = f"{layout.GENERATOR_SCOPE}/encoder/layer_0/attention/self/query/kernel"
    if gen_query in shapes:
        gen_hidden = shapes[gen_query][1]
        generator = (gen_hidden, max(1, gen_hidden // 64),
                     shape(f"{layout.GENERATOR_SCOPE}/encoder/layer_0/intermediate/dense/kernel")[1],
                     _layer_count(model, layout.GENERATOR_SCOPE))
    ignored = len(shapes) - len(model) - ("global_step" in shapes)
    if ignored:
        notes.append(f"ignored {ignored} variables outside the pre-training model (e.g. "
                     f"{next(n for n in sorted(shapes) if n not in model and n != 'global_step')})")
    return fields, generator, {name: reader.get_tensor(name) for name in model}, notes
