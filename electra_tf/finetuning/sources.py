"""Every model source electra-tf starts from -> its config, vocabulary, lower-casing and encoder weights.

`resolve(path)` accepts, recognised by what the path holds:

- `model_dir`: a model_dir of run_pretraining or convert_checkpoint (run_config.json): its latest checkpoint;
- `checkpoint`: a checkpoint prefix in one (`<model_dir>/checkpoints/ckpt-N`);
- `export`: an exported discriminator or encoder (saved_model.pb + electra_config.json:
  `<model_dir>/export/discriminator`); its lower-casing is read from the model_dir around it, and a
  SavedModel copied elsewhere is taken as lower-cased unless told otherwise;
- `hugging_face`: a Hugging Face directory of an ELECTRA discriminator (`ElectraForPreTraining`,
  `ElectraModel`) or a BERT (`BertModel`, `BertForPreTraining`, ...): config.json, model.safetensors or
  pytorch_model.bin, vocab.txt (or the tokenizer.json transformers 5 saves); converted on the fly
  (hf_checkpoint). A transformers task model (`ElectraForSequenceClassification`,
  `ElectraForTokenClassification`, `ElectraForQuestionAnswering`, and BERT's) comes with its head
  (`Source.head`, electra_tf.finetuning.hf_task_models), which `load_weights` gives the fine-tuning
  model of its task;
- `keras_hub`: a keras-hub ElectraBackbone or BertBackbone preset (keras_hub_import), such as
  `convert_checkpoint --to_keras_hub` writes;
- `finetuned`: a preset of a fine-tuned model of electra-tf (`save_to_preset`): its encoder.

The embeddings and encoder are read: of a pre-training run, the
model pre-training was for (the pretrainer's `kept_model()`, GDES's
residual folded in); heads are dropped, except a transformers task
model's. Nothing is downloaded: a hub name is refused with a line saying
how to pass a downloaded directory.
`locate` tells the kind without reading weights or loading TensorFlow, so
the command-line tools check the path before they read any data.
"""

import dataclasses
import json
import os
import re

from electra_tf.convert import hf_checkpoint, keras_hub_import, original_layout, pretrainer_weights
from electra_tf.finetuning import hf_task_models
from electra_tf.modeling.config import ElectraConfig
from electra_tf.utils.errors import UserError

RUN_CONFIG = "run_config.json"  # training.run_state.RUN_CONFIG, without loading TensorFlow to read it
EXPORT_CONFIG = "electra_config.json"
RUN_KINDS = ("model_dir", "checkpoint")
DESCRIPTIONS = {"model_dir": "the model_dir", "checkpoint": "the checkpoint", "export": "the export",
                "hugging_face": "the Hugging Face directory", "keras_hub": "the keras-hub preset",
                "finetuned": "the fine-tuned preset"}
ACCEPTED = ("a model_dir of run_pretraining or convert_checkpoint (run_config.json), a checkpoint in one "
            "(<model_dir>/checkpoints/ckpt-N), an export (<model_dir>/export/discriminator), a Hugging Face "
            "ELECTRA or BERT directory (config.json, model.safetensors or pytorch_model.bin, vocab.txt or "
            "tokenizer.json) or a keras-hub preset (config.json, model.weights.h5, assets/tokenizer/vocabulary.txt)")
_HUB_NAME = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def _missing(path):
    first = path.split("/")[0]
    if _HUB_NAME.match(path) and not os.path.exists(first):
        raise UserError(f"{path} does not exist here, and electra-tf downloads nothing at run time: if it is a "
                        f"Hugging Face Hub name, download it once (huggingface-cli download {path} --local-dir DIR) "
                        "and pass that directory")
    raise UserError(f"{path} does not exist; give {ACCEPTED}")


def locate(path):
    """The kind of model source at `path` (see the module docstring); a UserError says what is wrong.

    Reads no weights and does not load TensorFlow.

    Args:
        path: what the user gave.

    Example:

    >>> model_dir = tempfile.mkdtemp()
    >>> _ = open(os.path.join(model_dir, "run_config.json"), "w").write("{}")
    >>> locate(model_dir)
    'model_dir'
    >>> locate("google/electra-small-discriminator")
    Traceback (most recent call last):
    ...
    electra_tf.utils.errors.UserError: google/electra-small-discriminator does not exist here, and electra-tf ...
    """
    if not path:
        raise UserError(f"no model given; give {ACCEPTED}")
    if "://" in path:
        raise UserError(f"{path} is a remote address and electra-tf downloads nothing at run time; download the "
                        "model once and give its local directory")
    if os.path.isdir(path):
        return _directory_kind(path)
    if os.path.exists(path + ".index"):
        return "checkpoint"
    if os.path.isfile(path):
        raise UserError(f"{path} is a file; give {ACCEPTED}")
    _missing(path)


def _config_json(directory):
    """The JSON object in `directory`/config.json ({} when there is none, or it is not an object)."""
    try:
        with open(os.path.join(directory, hf_checkpoint.CONFIG), encoding="utf-8") as f:
            config = json.load(f)
    except (OSError, ValueError):
        return {}
    return config if isinstance(config, dict) else {}


def _directory_kind(path):
    if os.path.exists(os.path.join(path, RUN_CONFIG)):
        return "model_dir"
    if os.path.exists(os.path.join(path, "saved_model.pb")):
        if not os.path.exists(os.path.join(path, EXPORT_CONFIG)):
            raise UserError(f"{path} is a SavedModel without {EXPORT_CONFIG}; give an export of electra-tf's "
                            "pre-training (<model_dir>/export/discriminator) or its model_dir")
        return "export"
    config = _config_json(path)
    name = config.get("registered_name") or ""
    if name in [f"keras_hub>{backbone}" for backbone in keras_hub_import.BACKBONES]:
        return "keras_hub"
    if name.startswith("electra_tf>"):
        return "finetuned"
    if name:
        raise UserError(f"{path} is a preset of {name}; electra-tf reads keras-hub ElectraBackbone and BertBackbone "
                        "presets")
    if config.get("model_type") in hf_checkpoint.ENCODER_TYPES:
        return "hugging_face"
    if os.path.exists(os.path.join(path, hf_checkpoint.CONFIG)):
        hf_checkpoint.read_encoder(path)  # raises what is wrong with this config.json
    files = os.listdir(path)
    if os.path.exists(os.path.join(path, "..", RUN_CONFIG)):
        raise UserError(f"{path} is inside a model_dir; give the model_dir itself (its latest checkpoint) or one "
                        "checkpoint in it (<model_dir>/checkpoints/ckpt-N)")
    if any(name.endswith(".index") for name in files):
        raise UserError(f"{path} holds a TensorFlow checkpoint but no run_config.json; for a checkpoint of the "
                        "original ELECTRA code, convert it first: python -m electra_tf.convert_checkpoint "
                        f"--tf1_checkpoint={path} --output_dir=DIR, then give DIR")
    held = ", ".join(sorted(files)[:4]) or "nothing"
    raise UserError(f"{path} holds {held}, which is none of the models electra-tf reads; expected {ACCEPTED} "
                    "(other formats: convert them with python -m electra_tf.convert_checkpoint)")


@dataclasses.dataclass(frozen=True)
class Source:
    """A resolved model source: what model it makes, its vocabulary, and how to read its encoder's weights.

    Args:
        path: the path as given.
        kind: one of the kinds of the module docstring.
        config: its `ElectraConfig`.
        vocab_file: its vocab.txt.
        lowercase: whether its text is lower-cased.
        read_tensors: returns `{original name: array}` of the embeddings and encoder (`original_layout`).
        notes: what the reading changed (heads dropped), one line each.
        state: the `RunState` of a model_dir or checkpoint.
        checkpoint: the checkpoint prefix of a model_dir (the latest) or a checkpoint.
        head: the `hf_task_models.TaskHead` of a transformers task model, with its tensors; else None.

    Example:

    >>> from electra_tf.serving.savedmodel import export_pretrainer
    >>> vocab = os.path.join(tempfile.mkdtemp(), "vocab.txt")
    >>> _ = open(vocab, "w").write("\\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "film"]))
    >>> pretrainer = ElectraPretrainer(ElectraConfig.for_size("tiny", **special_token_ids(vocab)))
    >>> source = resolve(export_pretrainer(pretrainer, vocab, tempfile.mkdtemp()))
    >>> source.kind, source.config.num_layers, source.lowercase
    ('export', 2, True)
    """

    path: str
    kind: str
    config: ElectraConfig
    vocab_file: str
    lowercase: bool
    read_tensors: object
    notes: tuple = ()
    state: object = None
    checkpoint: str = None
    head: object = None

    @property
    def description(self):
        """How messages name it, e.g. "the Hugging Face directory hf/electra-small"."""
        return f"{DESCRIPTIONS[self.kind]} {self.path}"

    def load_encoder(self, encoder, tensors=None):
        """Assigns the source's embeddings and encoder weights to `encoder` (an `ElectraEncoder` of its config).

        `tensors`: those weights already read (`read_tensors()`), perhaps changed.
        """
        dims = original_layout.TowerDims.of(self.config, "discriminator")
        expected = {**original_layout.embedding_shapes(original_layout.DISCRIMINATOR_SCOPE, dims),
                    **original_layout.encoder_shapes(original_layout.DISCRIMINATOR_SCOPE, dims)}
        tensors = self.read_tensors() if tensors is None else tensors
        original_layout.check_tensors(tensors, expected, self.description)
        pretrainer_weights.assign(pretrainer_weights.encoder_pairs(encoder), tensors)

    def load_weights(self, model, label_scale=1.0):
        """Assigns the encoder's weights to the fine-tuning `model`, and the head's when the source has one.

        With a `head` (which `model` must be able to hold: `TaskHead.mismatch`), a tagger's segment rows
        are swapped back to its layout and the head's outputs follow the model's label order.

        Args:
            model: an `ElectraClassifier`, `ElectraTagger` or `ElectraQuestionAnswerer` of the source's config.
            label_scale: a regression's label scale (the model learns scores / label_scale).
        """
        tensors = self.read_tensors()
        if self.head is not None and self.head.family == "tagging":
            name = f"{original_layout.DISCRIMINATOR_SCOPE}/embeddings/token_type_embeddings"
            tensors = {**tensors, name: hf_task_models.swap_segments(tensors[name])}
        self.load_encoder(model.encoder, tensors)
        if self.head is not None:
            hf_task_models.load_head(self.head, model, label_scale)

    def restore_pretrainer(self, checkpoint=None):
        """The whole `ElectraPretrainer` of a model_dir or checkpoint (`checkpoint`: another prefix to read)."""
        from electra_tf.training import run_state

        if self.kind not in RUN_KINDS:
            raise UserError(f"{self.path} is {DESCRIPTIONS[self.kind]}, not a pre-training run; give a model_dir of "
                            "run_pretraining (for a Hugging Face directory, import it with python -m "
                            "electra_tf.convert_checkpoint --hf_discriminator=... --output_dir=DIR first)")
        try:
            return run_state.restore_pretrainer(self.state, checkpoint or self.checkpoint)
        except (FileNotFoundError, ValueError) as e:
            raise UserError(str(e).splitlines()[0]) from None


def _lowercase(recorded, requested, path):
    if requested is not None and recorded is not None and requested != recorded:
        raise UserError(f"{path} was pre-trained with lowercase={recorded}; fine-tuning must tokenize the same way "
                        "(drop the lowercase setting)")
    return recorded if recorded is not None else (True if requested is None else requested)


def _encoder_tensors(encoder):
    return pretrainer_weights.extract(pretrainer_weights.encoder_pairs(encoder))


def _run_source(path, kind, lowercase):
    import tensorflow as tf

    from electra_tf.training import run_state

    model_dir = path if kind == "model_dir" else os.path.dirname(os.path.dirname(os.path.abspath(path)))
    try:
        state = run_state.load(model_dir)
    except FileNotFoundError:
        raise UserError(f"{path} is a checkpoint outside a model_dir (no {RUN_CONFIG} in {model_dir}); for a "
                        "checkpoint of the original ELECTRA code, convert it first: python -m "
                        f"electra_tf.convert_checkpoint --tf1_checkpoint={path} --output_dir=DIR") from None
    except (KeyError, ValueError) as e:
        raise UserError(f"{model_dir}: cannot read {RUN_CONFIG} ({e})") from None
    checkpoint = path if kind == "checkpoint" else tf.train.latest_checkpoint(state.checkpoint_dir)
    if not checkpoint:
        raise UserError(f"no checkpoint in {state.checkpoint_dir}; pre-train first, or give a checkpoint")

    def read_tensors():
        try:
            pretrainer = run_state.restore_pretrainer(state, checkpoint)
        except (FileNotFoundError, ValueError) as e:
            raise UserError(str(e).splitlines()[0]) from None
        return _encoder_tensors(pretrainer.kept_model().encoder)

    return Source(path, kind, state.config, state.vocab_file, _lowercase(state.lowercase, lowercase, path),
                  read_tensors, state=state, checkpoint=checkpoint)


def _module(**children):
    """A tf.Module holding `children`: a view of objects under the names a checkpoint gives them."""
    import tensorflow as tf

    module = tf.Module()
    for name, child in children.items():
        setattr(module, name, child)
    return module


def _export_source(path, lowercase):
    with open(os.path.join(path, EXPORT_CONFIG), encoding="utf-8") as f:
        config = ElectraConfig.from_dict(json.load(f))
    recorded = None
    around = os.path.dirname(os.path.dirname(os.path.abspath(path)))
    if os.path.exists(os.path.join(around, RUN_CONFIG)):
        from electra_tf.training import run_state

        recorded = run_state.load(around).lowercase

    def read_tensors():
        import tensorflow as tf

        from electra_tf.modeling.embeddings import ElectraEmbeddings
        from electra_tf.modeling.encoder import ElectraEncoder
        from electra_tf.pretraining.objectives import OBJECTIVES

        encoder = ElectraEncoder(config, "discriminator", ElectraEmbeddings(config))
        encoder.build((None, config.max_seq_length))
        # A SavedModel records the encoder's blocks as the list they are kept in ("blocks/0"), where a
        # training checkpoint has "layer_0" (encoder.py): read it through a view of that shape.
        view = _module(embeddings=encoder.embeddings, blocks=list(encoder.blocks))
        if encoder.projection is not None:
            view.projection = encoder.projection
        # The export's module holds the model as "discriminator", or "mlm" for an encoder export (serving).
        root = "discriminator" if OBJECTIVES[config.objective].export_name() == "discriminator" else "mlm"
        try:
            (tf.train.Checkpoint(**{root: _module(encoder=view)}).read(os.path.join(path, "variables", "variables"))
             .expect_partial().assert_existing_objects_matched())
        except (tf.errors.OpError, AssertionError, ValueError) as e:
            raise UserError(f"cannot read the discriminator's weights from {path} ({str(e).splitlines()[0]})") \
                from None
        return _encoder_tensors(encoder)

    return Source(path, "export", config, os.path.join(path, "vocab.txt"), _lowercase(recorded, lowercase, path),
                  read_tensors)


def _imported_source(path, kind, fields, tensors, vocab_file, recorded, lowercase, notes):
    from electra_tf.convert import checkpoint_import

    if vocab_file is None or not os.path.exists(vocab_file):
        missing = "vocab.txt or tokenizer.json" if vocab_file is None else os.path.relpath(vocab_file, path)
        raise UserError(f"{path} has no {missing}; put the model's WordPiece vocabulary there")
    lowercase = _lowercase(recorded, lowercase, path)
    imported = checkpoint_import.Imported(path, fields, None, tensors, vocab_file, lowercase, list(notes))
    config = checkpoint_import.make_config(imported)
    return Source(path, kind, config, vocab_file, lowercase, lambda: tensors, tuple(notes))


def _hugging_face_source(path, lowercase):
    weights = hf_checkpoint.read_weights(path)
    fields, tensors, notes = hf_checkpoint.read_encoder(path, weights)
    source = _imported_source(path, "hugging_face", fields, tensors, hf_checkpoint.vocabulary_file(path),
                              hf_checkpoint.read_lowercase(path), lowercase, notes)
    head = task_head(path)
    if head is not None and head.unsupported is None:
        head = hf_task_models.with_head_tensors(head, weights, source.config.hidden_size)
    return dataclasses.replace(source, head=head)


def task_head(path):
    """The `TaskHead` (without its tensors) of a transformers task model at `path`; None for any other source.

    Reads config.json only, and does not load TensorFlow: the command-line tools decide with it before
    they read any data.

    Args:
        path: a model source.

    Example:

    >>> directory = tempfile.mkdtemp()
    >>> _ = open(os.path.join(directory, "config.json"), "w").write(json.dumps(
    ...     {"model_type": "electra", "architectures": ["ElectraForTokenClassification"],
    ...      "id2label": {"0": "B-NP", "1": "I-NP", "2": "O"}}))
    >>> task_head(directory).labels
    ('B-NP', 'I-NP', 'O')
    """
    if locate(path) != "hugging_face":
        return None
    return hf_task_models.task_head(path, _config_json(path))


def _finetuned_source(path, lowercase):
    from electra_tf.finetuning.base import FinetuningModel
    from electra_tf.finetuning.presets import VOCABULARY, load_preset

    model = load_preset(FinetuningModel, path)
    recorded = model.preprocessor.lowercase
    tensors = _encoder_tensors(model.encoder)
    return Source(path, "finetuned", model.config, os.path.join(path, VOCABULARY),
                  _lowercase(recorded, lowercase, path), lambda: tensors,
                  (f"read the encoder of the fine-tuned {type(model).__name__} {path}; its head is dropped",))


def resolve(path, lowercase=None, kinds=None):
    """The `Source` at `path`; a one-line UserError says what is there instead.

    Args:
        path: a model source of the kinds the module docstring lists.
        lowercase: the caller's lower-casing, checked against the recorded one (None: take the recorded,
            or lower-cased where nothing is recorded).
        kinds: the kinds accepted (default: all).

    Example:

    >>> from electra_tf.serving.savedmodel import export_pretrainer
    >>> vocab = os.path.join(tempfile.mkdtemp(), "vocab.txt")
    >>> _ = open(vocab, "w").write("\\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "film"]))
    >>> pretrainer = ElectraPretrainer(ElectraConfig.for_size("tiny", **special_token_ids(vocab)))
    >>> export = export_pretrainer(pretrainer, vocab, tempfile.mkdtemp())
    >>> resolve(export).kind
    'export'
    >>> resolve(tempfile.mkdtemp())
    Traceback (most recent call last):
    ...
    electra_tf.utils.errors.UserError: ... holds nothing, which is none of the models electra-tf reads; ...
    """
    kind = locate(path)
    if kinds is not None and kind not in kinds:
        raise UserError(f"{path} is {DESCRIPTIONS[kind]}, not {' or '.join(DESCRIPTIONS[k] for k in kinds)} this "
                        "needs; for a Hugging Face directory, import it first: python -m electra_tf.convert_checkpoint "
                        "--hf_discriminator=DIR --output_dir=MODEL_DIR")
    if kind in RUN_KINDS:
        return _run_source(path, kind, lowercase)
    if kind == "export":
        return _export_source(path, lowercase)
    if kind == "hugging_face":
        return _hugging_face_source(path, lowercase)
    if kind == "keras_hub":
        fields, tensors, vocab_file, recorded, notes = keras_hub_import.read_backbone(path)
        return _imported_source(path, kind, fields, tensors, vocab_file, recorded, lowercase, notes)
    return _finetuned_source(path, lowercase)
