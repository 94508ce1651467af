"""Fine-tuned models in keras-hub's preset layout: `save_preset` and `load_preset`.

A preset directory holds, with keras-hub 0.32's file names
(`keras_hub.src.utils.preset_utils`):

    config.json                       the model (`keras.saving.serialize_keras_object`), without its tokenizer
    model.weights.h5                  its weights
    tokenizer.json                    the `ElectraPreprocessor` (lower-casing, sequence length)
    assets/tokenizer/vocabulary.txt   its vocabulary, as keras-hub's WordPiece tokenizers keep theirs
    metadata.json                     Keras and keras-hub versions, parameter count, date saved

The label names (tags, QA settings) are part of the model's config. A
preset is written beside its destination and renamed into place, so a
directory holds a whole preset or none.
"""

import datetime
import json
import os

import keras
from keras_hub.src.utils import preset_utils
from keras_hub.src.version import __version__ as keras_hub_version

from electra_tf.utils.atomic import atomic_directory
from electra_tf.utils.errors import UserError

VOCABULARY = os.path.join(preset_utils.TOKENIZER_ASSET_DIR, "vocabulary.txt")


def _serialized(layer, **changes):
    config = keras.saving.serialize_keras_object(layer)
    config["config"] = {**config["config"], **changes}
    for key in ("compile_config", "build_config"):
        config.pop(key, None)
    return config


def _write_json(path, value):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(value, f, indent=4)


def save_preset(model, directory):
    """Writes `model` (a fine-tuning model with a preprocessor) as a preset directory.

    Args:
        model: an `ElectraClassifier`, `ElectraTagger` or `ElectraQuestionAnswerer` with its preprocessor.
        directory: the directory to write: absent, empty, or a preset to replace.

    Example:

    >>> vocab = os.path.join(tempfile.mkdtemp(), "vocab.txt")
    >>> _ = open(vocab, "w").write("\\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "fine"]))
    >>> scorer = ElectraClassifier(ElectraConfig.for_size("tiny", **special_token_ids(vocab)), regression=True,
    ...                            preprocessor=ElectraPreprocessor(vocab, sequence_length=8))
    >>> directory = os.path.join(tempfile.mkdtemp(), "preset")
    >>> save_preset(scorer, directory)
    >>> sorted(os.listdir(directory))
    ['assets', 'config.json', 'metadata.json', 'model.weights.h5', 'tokenizer.json']
    """
    preprocessor = model.preprocessor
    if preprocessor is None:
        raise UserError("a preset keeps the model with its tokenizer: build the model with from_pretrained or pass "
                        "preprocessor=ElectraPreprocessor(...)")
    if os.path.isfile(directory):
        raise UserError(f"{directory} is a file; give a directory for the preset")
    if os.path.isdir(directory) and os.listdir(directory) and \
            not os.path.exists(os.path.join(directory, preset_utils.CONFIG_FILE)):
        raise UserError(f"{directory} exists and is not a preset; choose a new directory (a preset there is replaced)")
    with atomic_directory(directory, replace=True) as staging:
        _write_json(os.path.join(staging, preset_utils.CONFIG_FILE), _serialized(model, preprocessor=None))
        model.save_weights(os.path.join(staging, preset_utils.MODEL_WEIGHTS_FILE))
        _write_json(os.path.join(staging, preset_utils.TOKENIZER_CONFIG_FILE),
                    _serialized(preprocessor, vocabulary=None))
        os.makedirs(os.path.join(staging, preset_utils.TOKENIZER_ASSET_DIR))
        with open(os.path.join(staging, VOCABULARY), "w", encoding="utf-8") as f:
            f.write("".join(f"{token}\n" for token in preprocessor.vocabulary))
        _write_json(os.path.join(staging, preset_utils.METADATA_FILE), {
            "keras_version": keras.version(), "keras_hub_version": keras_hub_version,
            "parameter_count": model.count_params(),
            "date_saved": datetime.datetime.now().strftime("%Y-%m-%d@%H:%M:%S"), "tasks": []})


def is_preset(directory):
    """Whether `directory` holds a preset of a fine-tuning model of electra-tf (config.json says so)."""
    try:
        with open(os.path.join(directory, preset_utils.CONFIG_FILE), encoding="utf-8") as f:
            config = json.load(f)
    except (OSError, ValueError):
        return False
    return isinstance(config, dict) and str(config.get("registered_name", "")).startswith("electra_tf>")


def _read_json(directory, name):
    path = os.path.join(directory, name)
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        raise UserError(f"{directory} lacks {name}; it is not a whole preset (write one with save_to_preset)") \
            from None
    except ValueError as e:
        raise UserError(f"cannot read {path} ({e}); write the preset again with save_to_preset") from None


def load_preset(cls, directory):
    """The model of class `cls` (or a subclass) saved in the preset `directory`, with its weights and tokenizer.

    Args:
        cls: the fine-tuning model class expected (`ElectraClassifier`, ...).
        directory: a directory written by `save_preset`.

    Example:

    >>> vocab = os.path.join(tempfile.mkdtemp(), "vocab.txt")
    >>> _ = open(vocab, "w").write("\\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "gem"]))
    >>> config = ElectraConfig.for_size("tiny", max_seq_length=16, **special_token_ids(vocab))
    >>> preprocessor = ElectraPreprocessor(vocab, sequence_length=16)
    >>> tagger = ElectraTagger(config, tags=["DT", "NN"], preprocessor=preprocessor)
    >>> directory = os.path.join(tempfile.mkdtemp(), "preset")
    >>> save_preset(tagger, directory)
    >>> load_preset(ElectraTagger, directory).tags
    ['DT', 'NN']
    """
    if not os.path.isdir(directory):
        raise UserError(f"{directory} does not exist; give a directory written by save_to_preset")
    if not is_preset(directory):
        raise UserError(f"{directory} is not a preset of an electra-tf fine-tuned model; for a pre-trained model "
                        f"(a keras-hub backbone, a Hugging Face directory, a run of run_pretraining) use "
                        f"{cls.__name__}.from_pretrained")
    config = _read_json(directory, preset_utils.CONFIG_FILE)
    try:
        found = preset_utils.check_config_class(config)
    except ValueError:
        raise UserError(f"{directory} holds a {config['registered_name']}, which this version of electra-tf does "
                        "not have") from None
    if not issubclass(found, cls):
        raise UserError(f"{directory} holds an {found.__name__}; load it with {found.__name__}.from_preset")
    for needed in (preset_utils.MODEL_WEIGHTS_FILE, VOCABULARY):
        if not os.path.exists(os.path.join(directory, needed)):
            raise UserError(f"{directory} lacks {needed}; it is not a whole preset (write one with save_to_preset)")
    tokenizer = _read_json(directory, preset_utils.TOKENIZER_CONFIG_FILE)
    tokenizer["config"] = {**tokenizer["config"], "vocabulary": os.path.join(directory, VOCABULARY)}
    model = found.from_config({**config["config"], "preprocessor": tokenizer})
    model.load_weights(os.path.join(directory, preset_utils.MODEL_WEIGHTS_FILE))
    return model
