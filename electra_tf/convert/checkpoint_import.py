"""Imported checkpoints -> a model_dir that run_pretraining continues from.

The model_dir is what a pre-training run leaves: `run_config.json` and
`vocab.txt` (run_state), `checkpoints/ckpt-0` (the model only: the
optimizer starts fresh at step 0), `export/discriminator/` (export.py),
plus `model.flags`, the model flags that make run_pretraining's
recorded-config check pass.
"""

import dataclasses
import os

import keras
import tensorflow as tf

from electra_tf.convert import hf_checkpoint, original_layout, pretrainer_weights, tf1_checkpoint
from electra_tf.modeling.config import ElectraConfig
from electra_tf.serving.savedmodel import export_pretrainer
from electra_tf.text.vocab import Vocab
from electra_tf.training import run_flags, run_state
from electra_tf.utils.errors import UserError

# The paper sizes, recognised by hidden size, supply what a checkpoint does
# not record (max_seq_length, mask_prob, ...); anything else gets "small"'s.
_SIZE_BY_HIDDEN = {256: "small", 768: "base", 1024: "large"}
MODEL_FLAGS = "model.flags"


@dataclasses.dataclass
class Imported:
    """What a reader found: ElectraConfig fields, generator sizes, tensors by original name, remarks.

    Creating one decides how the generator's embeddings are held
    (`original_layout.share_generator_embeddings`): `sharing` and `remark`.
    """

    source: str
    fields: dict
    generator: tuple  # (hidden, heads, intermediate, layers), or None when no generator was given
    tensors: dict
    vocab_file: str
    lowercase: bool
    notes: list
    sharing: str = dataclasses.field(init=False)
    remark: str = dataclasses.field(init=False)

    def __post_init__(self):
        self.sharing, self.remark = original_layout.share_generator_embeddings(self.tensors)


def _vocab_beside(directory, flag):
    path = os.path.join(directory, "vocab.txt")
    if not os.path.exists(path):
        raise UserError(f"no vocab.txt in {directory}; pass the model's vocabulary with --vocab_file "
                        f"(it must be the one {flag} was trained with)")
    return path


def from_hf(discriminator_dir, generator_dir=None, vocab_file=None, lowercase=None):
    """Reads HF ElectraForPreTraining (+ ElectraForMaskedLM) directories."""
    disc_config, tensors = hf_checkpoint.read_tower(discriminator_dir, "discriminator", "hf_discriminator")
    gen_config = None
    if generator_dir:
        gen_config, gen_tensors = hf_checkpoint.read_tower(generator_dir, "generator", "hf_generator")
        tensors.update(gen_tensors)
    fields, generator = hf_checkpoint.architecture(disc_config, gen_config)
    if lowercase is None:
        lowercase = hf_checkpoint.read_lowercase(discriminator_dir)
    return Imported(discriminator_dir + (f" + {generator_dir}" if generator_dir else ""), fields, generator, tensors,
                    vocab_file or hf_checkpoint.vocabulary_file(discriminator_dir)
                    or _vocab_beside(discriminator_dir, "--hf_discriminator"),
                    True if lowercase is None else lowercase, [])


def from_tf1(path, vocab_file=None, lowercase=None, num_heads=None):
    """Reads an original google-research/electra checkpoint."""
    fields, generator, tensors, notes = tf1_checkpoint.read(path, num_heads)
    prefix = tf1_checkpoint.checkpoint_prefix(path)
    return Imported(prefix, fields, generator, tensors,
                    vocab_file or _vocab_beside(os.path.dirname(os.path.abspath(prefix)), "--tf1_checkpoint"),
                    True if lowercase is None else lowercase, notes)


def make_config(imported, max_seq_length=None, generator_hidden_size=None):
    """The ElectraConfig of the imported model, with special token ids from its vocabulary."""
    fields = imported.fields
    vocab = Vocab(imported.vocab_file)
    if len(vocab) != fields["vocab_size"]:
        raise UserError(f"the vocabulary size disagrees: {imported.vocab_file} has {len(vocab)} tokens, the "
                        f"checkpoint's embeddings {fields['vocab_size']} rows; pass the vocab.txt the model was "
                        "trained with (--vocab_file)")
    size = _SIZE_BY_HIDDEN.get(fields["hidden_size"], "small")
    defaults = ElectraConfig.for_size(size)
    generator_layers = 1.0
    if imported.generator:
        generator_hidden_size = imported.generator[0] / fields["hidden_size"]
        generator_layers = imported.generator[3] / fields["num_layers"]
    overrides = dict(
        fields, generator_hidden_size=generator_hidden_size or defaults.generator_hidden_size,
        generator_layers=generator_layers, embedding_sharing=imported.sharing,
        max_seq_length=max_seq_length or min(defaults.max_seq_length, fields["max_position_embeddings"]),
        **vocab.special_token_ids())
    try:
        config = ElectraConfig.for_size(size, **overrides)
    except ValueError as e:
        raise UserError(f"the checkpoint does not make a valid model: {e}") from None
    if imported.generator and tuple(config.generator_dims) != tuple(imported.generator[:3]):
        raise UserError(f"the generator's (hidden, heads, intermediate) {tuple(imported.generator[:3])} is not the "
                        f"discriminator's {config.discriminator_dims} scaled by one fraction (that would give "
                        f"{config.generator_dims}); electra-tf sizes its generator that way")
    return config


def build_pretrainer(imported, config):
    """An ElectraPretrainer holding the imported tensors; returns it and the embedding-sharing remark.

    Without a generator the generator keeps its seeded random
    initialisation: pre-training trains it, fine-tuning never reads it.
    """
    tensors = imported.tensors
    shared = imported.remark
    original_layout.check_tensors(tensors, original_layout.pretrainer_shapes(config, bool(imported.generator)),
                                  imported.source)
    from electra_tf.pretraining.pretrainer import ElectraPretrainer

    keras.utils.set_random_seed(config.seed)
    pretrainer = ElectraPretrainer(config)
    pretrainer_weights.assign(pretrainer_weights.pretrainer_variables(pretrainer), tensors)
    if not imported.generator:
        hidden, heads, _ = config.generator_dims
        shared = (f"no generator given: the generator ({hidden} hidden, {heads} heads, fraction "
                  f"{config.generator_hidden_size:g}) starts from random initialisation (seed {config.seed})")
    return pretrainer, shared


def model_flags(config, source):
    """run_pretraining flags that reproduce `config` (the seed is left to the user)."""
    lines = [f"# Model of the checkpoint converted from {source}.",
             "# Pass to run_pretraining with --flagfile; build the data with this directory's vocab.txt."]
    for field in run_flags.MODEL_FIELDS:
        if field.name != "seed":
            lines.append(f"--{field.name}={getattr(config, field.name)}")
    return "\n".join(lines) + "\n"


def write_model_dir(pretrainer, imported, staging):
    """Fills `staging` (a fresh directory) as run_pretraining would leave a model_dir."""
    config = pretrainer.config
    state = run_state.start_or_check(staging, config, imported.vocab_file, imported.lowercase)
    manager = tf.train.CheckpointManager(tf.train.Checkpoint(model=pretrainer), state.checkpoint_dir, max_to_keep=1)
    manager.save(checkpoint_number=0)
    with open(os.path.join(staging, MODEL_FLAGS), "w", encoding="utf-8") as f:
        f.write(model_flags(config, imported.source))
    export_pretrainer(pretrainer, state.vocab_file, os.path.join(staging, "export"), imported.lowercase,
                      record={"source": imported.source})
