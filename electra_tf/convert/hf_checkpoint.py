"""Hugging Face ELECTRA and BERT directories (config.json + weights) to and from the original's layout.

Reading needs only the `safetensors` package's NumPy API (or, for a
`pytorch_model.bin`, `torch_bin`), not torch or transformers. Key names follow transformers' `modeling_electra.py`:
`ElectraForPreTraining` (discriminator) and `ElectraForMaskedLM`
(generator) each hold a full `electra.*` tower with its own copy of the
embeddings; the generator's output layer is tied to its word embeddings
and saved without its weight (`generator_lm_head.bias` only). A BERT
(`modeling_bert.py`) has the same embeddings and encoder under `bert.*`,
its embeddings as wide as its hidden states; `ElectraModel` and `BertModel`
save theirs without the prefix. `read_encoder` reads the embeddings and
encoder of either, for fine-tuning.
"""

import atexit
import json
import os
import re
import shutil
import tempfile

import numpy as np

from electra_tf.convert import original_layout as layout
from electra_tf.convert import torch_bin
from electra_tf.text.vocab import SPECIAL_TOKENS
from electra_tf.utils.errors import UserError

CONFIG = "config.json"
WEIGHTS = "model.safetensors"
SHARDED_WEIGHTS = "model.safetensors.index.json"
PYTORCH_WEIGHTS = "pytorch_model.bin"
TOKENIZER_JSON = "tokenizer.json"
ARCHITECTURES = {"discriminator": "ElectraForPreTraining", "generator": "ElectraForMaskedLM"}
# A discriminator whose head is not ELECTRA's (teams, mc_bert) is written without it.
HEADLESS = "ElectraModel"
_SCOPES = {"discriminator": layout.DISCRIMINATOR_SCOPE, "generator": layout.GENERATOR_SCOPE}
# Non-persistent buffers that older transformers releases saved; they carry no weights.
_BUFFERS = ("electra.embeddings.position_ids", "electra.embeddings.token_type_ids")
_TIED_OUTPUT = "generator_lm_head.weight"
_WORDS_KEY = "electra.embeddings.word_embeddings.weight"
# transformers' ElectraConfig defaults, for keys a config.json leaves out.
_DEFAULTS = {"vocab_size": 30522, "embedding_size": 128, "hidden_size": 256, "num_hidden_layers": 12,
             "num_attention_heads": 4, "intermediate_size": 1024, "hidden_act": "gelu", "hidden_dropout_prob": 0.1,
             "attention_probs_dropout_prob": 0.1, "max_position_embeddings": 512, "type_vocab_size": 2,
             "initializer_range": 0.02, "layer_norm_eps": 1e-12, "position_embedding_type": "absolute"}
# transformers' BertConfig defaults; a BERT's embeddings are as wide as its hidden states.
_BERT_DEFAULTS = {"vocab_size": 30522, "hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12,
                  "intermediate_size": 3072, "hidden_act": "gelu", "hidden_dropout_prob": 0.1,
                  "attention_probs_dropout_prob": 0.1, "max_position_embeddings": 512, "type_vocab_size": 2,
                  "initializer_range": 0.02, "layer_norm_eps": 1e-12, "position_embedding_type": "absolute"}
# The model types whose encoder fine-tuning reads: any of their architectures but ELECTRA's generator.
ENCODER_TYPES = ("electra", "bert")
# transformers config key -> ElectraConfig field.
_FIELDS = {"vocab_size": "vocab_size", "embedding_size": "embedding_size", "hidden_size": "hidden_size",
           "num_hidden_layers": "num_layers", "num_attention_heads": "num_heads",
           "intermediate_size": "intermediate_size", "max_position_embeddings": "max_position_embeddings",
           "type_vocab_size": "type_vocab_size", "hidden_dropout_prob": "hidden_dropout_prob",
           "attention_probs_dropout_prob": "attention_probs_dropout_prob", "initializer_range": "initializer_range",
           "layer_norm_eps": "layer_norm_epsilon"}
# What differs between the towers; everything else in _SHARED must agree. The embedding sizes may differ too
# (untied generator embeddings are as wide as its hidden states; original_layout.share_generator_embeddings).
_TOWER_WIDTHS = ("hidden_size", "num_attention_heads", "intermediate_size")
_SHARED = ("vocab_size", "max_position_embeddings", "type_vocab_size", "layer_norm_eps")


def hf_key(name):
    """The transformers key of an original name, within its tower's model."""
    key = re.sub(rf"^({layout.DISCRIMINATOR_SCOPE}|{layout.GENERATOR_SCOPE})/", "electra/", name)
    key = key.replace("discriminator_predictions/dense_1/", "discriminator_predictions/dense_prediction/")
    key = key.replace("generator_predictions/output_bias", "generator_lm_head/bias")
    key = re.sub(r"/layer_(\d+)/", r"/layer/\1/", key)
    key = re.sub(r"_embeddings$", "_embeddings/weight", key)
    key = re.sub(r"/(kernel|gamma)$", "/weight", key)
    key = re.sub(r"/beta$", "/bias", key)
    return key.replace("/", ".")


def _is_kernel(name):
    # torch's nn.Linear stores [out, in]; the original stores [in, out].
    return name.endswith("/kernel")


def _in_original_layout(name, value):
    """A transformers tensor as the original stores `name`: float32, dense kernels [in, out]."""
    value = np.asarray(value, dtype=np.float32)
    return value.T if _is_kernel(name) and value.ndim == 2 else value


def tower_shapes(tower, dims, with_head=True):
    """Original name -> shape of everything one HF model holds (its own embeddings included; its head unless not)."""
    scope = _SCOPES[tower]
    head = layout.discriminator_head_shapes if tower == "discriminator" else layout.generator_head_shapes
    return {**layout.embedding_shapes(scope, dims), **layout.encoder_shapes(scope, dims),
            **(head(dims) if with_head else {})}


# ---------------------------------------------------------------- reading


def _load_config(path):
    try:
        with open(path, encoding="utf-8") as f:
            config = json.load(f)
    except (OSError, ValueError) as e:
        raise UserError(f"cannot read {path} ({e}); give a Hugging Face config.json") from None
    if not isinstance(config, dict):
        raise UserError(f"{path} is not a JSON object; give a Hugging Face config.json")
    return config


def _check_supported(config, path):
    if config["hidden_act"] != "gelu":
        raise UserError(f"{path} uses hidden_act={config['hidden_act']!r}; electra-tf implements the original's "
                        "exact GELU ('gelu') only")
    if config["position_embedding_type"] != "absolute":
        raise UserError(f"{path} uses position_embedding_type={config['position_embedding_type']!r}; "
                        "electra-tf has absolute position embeddings only")


def _read_config(directory, tower, flag):
    path = os.path.join(directory, CONFIG)
    if not os.path.isdir(directory):
        raise UserError(f"--{flag} {directory} is not a directory; give a Hugging Face model directory "
                        f"(config.json + model.safetensors)")
    if not os.path.exists(path):
        raise UserError(f"{path} not found; --{flag} must be a Hugging Face model directory with config.json")
    config = _load_config(path)
    model_type = config.get("model_type")
    if model_type != "electra":
        raise UserError(f"{path} describes a {model_type!r} model, not ELECTRA; --{flag} needs an "
                        f"{ARCHITECTURES[tower]} directory")
    architectures = config.get("architectures") or [ARCHITECTURES[tower]]
    if ARCHITECTURES[tower] not in architectures:
        raise UserError(f"{path} is a {'/'.join(architectures)}, not {ARCHITECTURES[tower]}; --{flag} needs the "
                        f"ELECTRA {tower} ({ARCHITECTURES[tower]})")
    config = {**_DEFAULTS, **config}
    _check_supported(config, path)
    return config


def _dims(config):
    return layout.TowerDims(
        vocab_size=config["vocab_size"], embedding_size=config["embedding_size"],
        max_position_embeddings=config["max_position_embeddings"], type_vocab_size=config["type_vocab_size"],
        num_layers=config["num_hidden_layers"], hidden_size=config["hidden_size"],
        intermediate_size=config["intermediate_size"])


def read_weights(directory, flag=None):
    """{transformers key: array} of a directory's model.safetensors (or its shards), else its pytorch_model.bin."""
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    path = os.path.join(directory, WEIGHTS)
    index = os.path.join(directory, SHARDED_WEIGHTS)
    if os.path.exists(path):
        files = [path]
    elif os.path.exists(index):
        weight_map = _load_config(index).get("weight_map") or {}
        files = [os.path.join(directory, name) for name in sorted(set(weight_map.values()))]
    elif os.path.exists(os.path.join(directory, PYTORCH_WEIGHTS)):
        return torch_bin.load_state_dict(os.path.join(directory, PYTORCH_WEIGHTS))
    else:
        who = f"--{flag}" if flag else "a Hugging Face model directory"
        raise UserError(f"{path} not found; {who} needs the weights as model.safetensors or pytorch_model.bin")
    tensors = {}
    for file in files:
        try:
            tensors.update(load_file(file))
        except (SafetensorError, OSError, ValueError) as e:
            raise UserError(f"cannot read {file} ({str(e).splitlines()[0]}); is it a complete safetensors "
                            "file?") from None
    return tensors


def read_tower(directory, tower, flag):
    """(config.json dict, {original name: array}) of one HF model directory.

    The generator's embeddings come back under `generator/embeddings/`:
    deciding whether they are the discriminator's is
    `original_layout.share_generator_embeddings`'s job.
    """
    config = _read_config(directory, tower, flag)
    expected = tower_shapes(tower, _dims(config))
    by_key = {hf_key(name): name for name in expected}
    stored = read_weights(directory, flag)
    source = os.path.join(directory, WEIGHTS)
    tied = stored.pop(_TIED_OUTPUT, None) if tower == "generator" else None
    # Shared tensors are saved once; some conversions kept the output layer's name instead.
    if tied is not None and _WORDS_KEY not in stored:
        stored[_WORDS_KEY] = tied
    tensors = {}
    for key, value in stored.items():
        if key in _BUFFERS:
            continue
        name = by_key.get(key, key)
        tensors[name] = _in_original_layout(name, value)
    layout.check_tensors(tensors, expected, f"{source} (with {CONFIG})")
    if tied is not None and not np.array_equal(tied, tensors[f"{layout.GENERATOR_SCOPE}/embeddings/word_embeddings"]):
        raise UserError(f"{source}: {_TIED_OUTPUT} differs from the word embeddings; electra-tf (like the "
                        "original) ties the generator's output layer to them and cannot hold both")
    return config, tensors


def _encoder_key(key, model_type):
    """The ELECTRA key (`electra.<rest>`) of an embedding or encoder weight; None for a head's."""
    rest = key.removeprefix(f"{model_type}.")
    if not rest.startswith(("embeddings", "encoder.")):
        return None  # discriminator_predictions, pooler, cls, classifier, ...
    # Checkpoints converted from TF1 by older transformers name LayerNorm's parameters gamma and beta.
    return "electra." + rest.replace("LayerNorm.gamma", "LayerNorm.weight").replace("LayerNorm.beta", "LayerNorm.bias")


def read_encoder(directory, weights=None):
    """The embeddings and encoder of a Hugging Face ELECTRA discriminator or BERT directory.

    Heads (ELECTRA's detector, BERT's pooler and pre-training heads, a task
    head) are dropped, and said so in the notes.

    Args:
        directory: holds config.json (model_type electra or bert) and model.safetensors or pytorch_model.bin.
        weights: its weights as `read_weights` returns them, when the caller has read them already.

    Returns:
        (ElectraConfig fields, {original name: float32 array} of the discriminator's embeddings and
        encoder, note lines).

    Example:

    >>> from transformers import BertConfig, BertModel
    >>> directory = tempfile.mkdtemp()
    >>> BertModel(BertConfig(vocab_size=40, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
    ...                      intermediate_size=64, max_position_embeddings=16)).save_pretrained(directory)
    >>> fields, tensors, notes = read_encoder(directory)
    >>> fields["embedding_size"], tensors["electra/encoder/layer_1/intermediate/dense/kernel"].shape, notes
    (32, (32, 64), ['dropped pooler: fine-tuning reads the embeddings and encoder only'])
    """
    path = os.path.join(directory, CONFIG)
    config = _load_config(path)
    model_type = config.get("model_type")
    if model_type not in ENCODER_TYPES:
        raise UserError(f"{path} describes a {model_type!r} model; electra-tf fine-tunes ELECTRA discriminators "
                        "and BERT encoders")
    if config.get("architectures") == [ARCHITECTURES["generator"]]:
        raise UserError(f"{path} is ELECTRA's generator ({ARCHITECTURES['generator']}); fine-tune the "
                        f"discriminator of its pair ({ARCHITECTURES['discriminator']})")
    if model_type == "bert":
        config = {**_BERT_DEFAULTS, **config}
        config["embedding_size"] = config["hidden_size"]
    else:
        config = {**_DEFAULTS, **config}
    _check_supported(config, path)
    dims = _dims(config)
    expected = {**layout.embedding_shapes(layout.DISCRIMINATOR_SCOPE, dims),
                **layout.encoder_shapes(layout.DISCRIMINATOR_SCOPE, dims)}
    by_key = {hf_key(name): name for name in expected}
    tensors, dropped = {}, set()
    for key, value in (read_weights(directory) if weights is None else weights).items():
        ours = _encoder_key(key, model_type)
        if ours is None:
            dropped.add(key.removeprefix(f"{model_type}.").split(".")[0])
            continue
        if ours in _BUFFERS:
            continue
        name = by_key.get(ours, ours)
        tensors[name] = _in_original_layout(name, value)
    layout.check_tensors(tensors, expected, f"{directory} (with {CONFIG})")
    notes = [f"dropped {', '.join(sorted(dropped))}: fine-tuning reads the embeddings and encoder only"] \
        if dropped else []
    return {ours: config[key] for key, ours in _FIELDS.items()}, tensors, notes


def architecture(discriminator_config, generator_config=None):
    """(ElectraConfig fields, generator (hidden, heads, intermediate, layers) or None) from the HF configs.

    Raises if the two towers cannot be one ElectraPretrainer (they must
    agree on everything but their widths).
    """
    fields = {ours: discriminator_config[key] for key, ours in _FIELDS.items()}
    if generator_config is None:
        return fields, None
    for key in _SHARED:
        if generator_config[key] != discriminator_config[key]:
            raise UserError(f"the generator's {key} is {generator_config[key]} but the discriminator's is "
                            f"{discriminator_config[key]}; an ELECTRA pair shares it: give the generator trained "
                            "with this discriminator")
    return fields, tuple(generator_config[key] for key in _TOWER_WIDTHS + ("num_hidden_layers",))


# ---------------------------------------------------------------- writing


def hf_config(config, tower, with_head=True):
    """The config.json transformers needs for one tower of `config` (an ElectraConfig); `ElectraModel` headless."""
    widths = config.tower_dims(tower)
    return {
        **{key: getattr(config, ours) for key, ours in _FIELDS.items()}, **dict(zip(_TOWER_WIDTHS, widths)),
        "embedding_size": config.tower_embedding_size(tower), "num_hidden_layers": config.tower_layers(tower),
        "architectures": [ARCHITECTURES[tower] if with_head else HEADLESS], "model_type": "electra",
        "hidden_act": "gelu",
        "pad_token_id": config.pad_id, "tie_word_embeddings": True, "dtype": "float32",
    }


def tower_tensors(tensors, config, tower, with_head=True):
    """`{transformers key: array}` of one tower, from a pretrainer's tensors.

    The generator reads `generator/embeddings/*` when the pretrainer has them
    (untied or GDES), else the shared `electra/embeddings/*`. Without its head
    the tower is an `ElectraModel`, whose keys have no `electra.` prefix.
    """
    out = {}
    for name in tower_shapes(tower, layout.TowerDims.of(config, tower), with_head):
        source = name if name in tensors else name.replace(f"{layout.GENERATOR_SCOPE}/embeddings/",
                                                           f"{layout.DISCRIMINATOR_SCOPE}/embeddings/")
        value = tensors[source]
        key = hf_key(name) if with_head else hf_key(name).removeprefix("electra.")
        out[key] = np.ascontiguousarray(value.T if _is_kernel(name) else value)
    return out


def write_tower(tensors, config, tower, directory, vocab_file, lowercase, with_head=True):
    """Writes config.json, model.safetensors and the tokenizer files of one tower into `directory`."""
    from safetensors.numpy import save_file

    os.makedirs(directory)
    save_file(tower_tensors(tensors, config, tower, with_head), os.path.join(directory, WEIGHTS),
              metadata={"format": "pt"})
    with open(os.path.join(directory, CONFIG), "w", encoding="utf-8") as f:
        json.dump(hf_config(config, tower, with_head), f, indent=2, sort_keys=True)
    write_tokenizer(directory, vocab_file, lowercase, config.max_position_embeddings)


def write_tokenizer(directory, vocab_file, lowercase, max_length):
    """vocab.txt, tokenizer_config.json and special_tokens_map.json: what AutoTokenizer reads as they are."""
    shutil.copyfile(vocab_file, os.path.join(directory, "vocab.txt"))
    special = {field.removesuffix("_id") + "_token": token for field, token in SPECIAL_TOKENS.items()}
    settings = {"tokenizer_class": "ElectraTokenizer", "do_lower_case": lowercase, "model_max_length": max_length,
                **special}
    for name, value in (("tokenizer_config.json", settings), ("special_tokens_map.json", special)):
        with open(os.path.join(directory, name), "w", encoding="utf-8") as f:
            json.dump(value, f, indent=2)


def _tokenizer_setting(directory, key):
    """A setting of a HF tokenizer_config.json, or None when it does not say."""
    path = os.path.join(directory, "tokenizer_config.json")
    try:
        with open(path, encoding="utf-8") as f:
            settings = json.load(f)
    except (OSError, ValueError):
        return None
    return settings.get(key) if isinstance(settings, dict) else None


def _tokenizer_json(directory):
    """The JSON object of a HF directory's tokenizer.json ({} when there is none)."""
    try:
        with open(os.path.join(directory, TOKENIZER_JSON), encoding="utf-8") as f:
            value = json.load(f)
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def read_lowercase(directory):
    """`do_lower_case` from a HF tokenizer_config.json (else tokenizer.json's normalizer), or None when neither says."""
    value = _tokenizer_setting(directory, "do_lower_case")
    if value is None:
        normalizer = _tokenizer_json(directory).get("normalizer") or {}
        value = normalizer.get("lowercase") if isinstance(normalizer, dict) else None
    return value if isinstance(value, bool) else None


def vocabulary_file(directory):
    """The WordPiece vocab.txt of a HF directory, or None when it has neither vocab.txt nor tokenizer.json.

    transformers 5 saves a tokenizer as tokenizer.json alone: its WordPiece
    vocabulary is written, in id order, to a vocab.txt in a temporary
    directory that is removed when the process ends. A tokenizer.json of
    another kind is a UserError.

    Args:
        directory: a Hugging Face model directory.

    Example:

    >>> directory = tempfile.mkdtemp()
    >>> tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "film", "##s"]
    >>> _ = open(os.path.join(directory, "tokenizer.json"), "w").write(json.dumps({"model": {
    ...     "type": "WordPiece", "continuing_subword_prefix": "##", "vocab": {t: i for i, t in enumerate(tokens)}}}))
    >>> open(vocabulary_file(directory)).read().split() == tokens
    True
    """
    path = os.path.join(directory, "vocab.txt")
    if os.path.exists(path):
        return path
    if not os.path.exists(os.path.join(directory, TOKENIZER_JSON)):
        return None
    model = _tokenizer_json(directory).get("model") or {}
    vocab = model.get("vocab") if isinstance(model, dict) else None
    if model.get("type") != "WordPiece" or model.get("continuing_subword_prefix", "##") != "##" or \
            not isinstance(vocab, dict) or sorted(vocab.values()) != list(range(len(vocab))):
        raise UserError(f"{os.path.join(directory, TOKENIZER_JSON)} is not a WordPiece tokenizer with '##' pieces and "
                        "ids 0..n-1 (BERT's and ELECTRA's); put the model's vocab.txt beside it")
    handle, written = tempfile.mkstemp(suffix="-vocab.txt", dir=_temporary_directory())
    with os.fdopen(handle, "w", encoding="utf-8") as f:
        f.write("".join(f"{token}\n" for token in sorted(vocab, key=vocab.get)))
    return written


_TEMPORARY = []


def _temporary_directory():
    if not _TEMPORARY:
        _TEMPORARY.append(tempfile.mkdtemp(prefix="electra_tf_vocab_"))
        atexit.register(shutil.rmtree, _TEMPORARY[0], ignore_errors=True)
    return _TEMPORARY[0]


def read_max_length(directory):
    """`model_max_length` from a HF tokenizer_config.json (the length its tokenizer truncates to), or None."""
    value = _tokenizer_setting(directory, "model_max_length")
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None
