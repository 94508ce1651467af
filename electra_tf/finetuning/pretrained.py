"""Finding a pre-trained discriminator: a model_dir, one of its checkpoints, or an exported SavedModel.

- a model_dir of `run_pretraining` or `convert_checkpoint` (run_config.json,
  vocab.txt, checkpoints/): its latest checkpoint;
- a checkpoint prefix inside one (`<model_dir>/checkpoints/ckpt-1000`);
- an exported discriminator (`<model_dir>/export/discriminator`, with
  electra_config.json and vocab.txt beside saved_model.pb), or the encoder
  export of a masked-LM objective, teams or mc_bert (`<model_dir>/export/encoder`). Its
  lower-casing is read from the model_dir around it when there is one; a
  SavedModel copied elsewhere is taken as lower-cased unless told otherwise.

Only the embeddings and encoder of the model pre-training was for are read
(the pretrainer's `kept_model()`: the discriminator, or the main masked LM of
the mlm and replace_mlm objectives, mc_bert's main model; with GDES its
residual folded in); the generator and the heads are dropped.
"""

import dataclasses
import json
import os

import tensorflow as tf

from electra_tf.modeling.config import ElectraConfig
from electra_tf.pretraining.objectives import OBJECTIVES
from electra_tf.training import run_state
from electra_tf.utils.errors import UserError

EXPORT_CONFIG = "electra_config.json"


class _Holder(tf.Module):
    def __init__(self, **children):
        super().__init__()
        for name, child in children.items():
            setattr(self, name, child)


@dataclasses.dataclass(frozen=True)
class Pretrained:
    """Where the weights are and what model they make."""

    path: str
    config: ElectraConfig
    vocab_file: str
    lowercase: bool
    checkpoint: str = None  # a training checkpoint prefix, or
    saved_model: str = None  # an exported discriminator directory

    def load_encoder(self, encoder):
        """Assigns the discriminator's embedding and encoder weights to `encoder` (an ElectraEncoder)."""
        source = self._source_encoder()
        targets, sources = encoder.weights, source.weights
        if [tuple(v.shape) for v in targets] != [tuple(v.shape) for v in sources]:
            raise UserError(f"the weights in {self.path} do not fit the model built from its config; "
                            "was it written by another version of electra-tf?")
        for target, value in zip(targets, sources):
            target.assign(value)

    def _source_encoder(self):
        if self.saved_model:
            from electra_tf.modeling.embeddings import ElectraEmbeddings
            from electra_tf.modeling.encoder import ElectraEncoder

            encoder = ElectraEncoder(self.config, "discriminator", ElectraEmbeddings(self.config))
            encoder.build((None, self.config.max_seq_length))
            # A SavedModel records the encoder's blocks as the list they are kept in ("blocks/0"), where a
            # training checkpoint has "layer_0" (encoder.py): read it through a view of that shape.
            view = _Holder(embeddings=encoder.embeddings, blocks=list(encoder.blocks))
            if encoder.projection is not None:
                view.projection = encoder.projection
            prefix = os.path.join(self.saved_model, "variables", "variables")
            # The export's module holds the model as "discriminator", or "mlm" for an encoder export (serving).
            root = "discriminator" if OBJECTIVES[self.config.objective].export_name() == "discriminator" else "mlm"
            try:
                (tf.train.Checkpoint(**{root: _Holder(encoder=view)}).read(prefix).expect_partial()
                 .assert_existing_objects_matched())
            except (tf.errors.OpError, AssertionError, ValueError) as e:
                raise UserError(f"cannot read the discriminator's weights from {self.saved_model} "
                                f"({str(e).splitlines()[0]})") from None
            return encoder
        state = run_state.load(os.path.dirname(os.path.dirname(self.checkpoint)))
        try:
            pretrainer = run_state.restore_pretrainer(state, self.checkpoint)
        except (FileNotFoundError, ValueError) as e:
            raise UserError(str(e)) from None
        return pretrainer.kept_model().encoder


def _model_dir_state(model_dir):
    try:
        return run_state.load(model_dir)
    except (FileNotFoundError, KeyError, ValueError) as e:
        raise UserError(f"{model_dir}: {e}") from None


def find(path, lowercase=None):
    """The `Pretrained` at `path`; a UserError says what is there instead.

    Args:
        path: a model_dir, a checkpoint prefix in one, or an exported discriminator.
        lowercase: the caller's lower-casing, checked against the recorded one (None: take the recorded).

    Example:

    >>> from electra_tf.serving.savedmodel import export_pretrainer
    >>> vocab = os.path.join(tempfile.mkdtemp(), "vocab.txt")
    >>> _ = open(vocab, "w").write("\\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "film"]))
    >>> pretrainer = ElectraPretrainer(ElectraConfig.for_size("tiny", **special_token_ids(vocab)))
    >>> export = export_pretrainer(pretrainer, vocab, tempfile.mkdtemp())
    >>> pretrained = find(export)
    >>> pretrained.saved_model == export, pretrained.config.num_layers, pretrained.lowercase
    (True, 2, True)
    >>> find(tempfile.mkdtemp())
    Traceback (most recent call last):
    ...
    electra_tf.utils.errors.UserError: ... is not a pre-trained model: ...
    """
    if os.path.isdir(path) and os.path.exists(os.path.join(path, run_state.RUN_CONFIG)):
        state = _model_dir_state(path)
        checkpoint = tf.train.latest_checkpoint(state.checkpoint_dir)
        if not checkpoint:
            raise UserError(f"no checkpoint in {state.checkpoint_dir}; pre-train first, or give a checkpoint")
        return Pretrained(path, state.config, state.vocab_file, _lowercase(state.lowercase, lowercase, path),
                          checkpoint=checkpoint)
    if os.path.exists(path + ".index"):
        model_dir = os.path.dirname(os.path.dirname(os.path.abspath(path)))
        state = _model_dir_state(model_dir)
        return Pretrained(path, state.config, state.vocab_file, _lowercase(state.lowercase, lowercase, path),
                          checkpoint=path)
    if os.path.isdir(path) and os.path.exists(os.path.join(path, "saved_model.pb")):
        config_path = os.path.join(path, EXPORT_CONFIG)
        if not os.path.exists(config_path):
            raise UserError(f"{path} is a SavedModel without {EXPORT_CONFIG}; give an export of electra-tf "
                            "(<model_dir>/export/discriminator) or its model_dir")
        with open(config_path, encoding="utf-8") as f:
            config = ElectraConfig.from_dict(json.load(f))
        recorded = None
        around = os.path.dirname(os.path.dirname(os.path.abspath(path)))
        if os.path.exists(os.path.join(around, run_state.RUN_CONFIG)):
            recorded = _model_dir_state(around).lowercase
        if recorded is None:  # a copied export does not say; BERT uncased unless told
            recorded = True if lowercase is None else lowercase
        return Pretrained(path, config, os.path.join(path, "vocab.txt"), _lowercase(recorded, lowercase, path),
                          saved_model=path)
    raise UserError(f"{path} is not a pre-trained model: give a model_dir of run_pretraining or "
                    "convert_checkpoint, a checkpoint in one (<model_dir>/checkpoints/ckpt-N), or an export "
                    "(<model_dir>/export/discriminator)")


def _lowercase(recorded, requested, path):
    if requested is not None and requested != recorded:
        raise UserError(f"{path} was pre-trained with lowercase={recorded}; fine-tuning must tokenize the same way "
                        "(drop the lowercase setting)")
    return recorded
