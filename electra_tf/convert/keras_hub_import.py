"""A keras-hub `ElectraBackbone` or `BertBackbone` preset directory -> the original's names, for fine-tuning.

The layout `keras_hub_export.write_preset` writes (and keras-hub's
`save_to_preset`): `config.json` (the backbone), `model.weights.h5`,
`tokenizer.json` and `assets/tokenizer/vocabulary.txt`. The backbone is
rebuilt with keras-hub from the directory (nothing is downloaded) and its
embeddings and Transformer blocks are read by the original's names
(`pretrainer_weights`); its `pooled_dense` has no ELECTRA counterpart and
is dropped. keras-hub's blocks compute the tanh approximation of GELU,
electra-tf the exact one, so the same weights give slightly different
outputs here (about 1e-3 on the tests' tiny models); fine-tuning adapts.
"""

import json
import os

from electra_tf.convert import pretrainer_weights
from electra_tf.convert.original_layout import DISCRIMINATOR_SCOPE
from electra_tf.utils.errors import UserError

WEIGHTS = "model.weights.h5"
TOKENIZER = "tokenizer.json"
VOCABULARY = os.path.join("assets", "tokenizer", "vocabulary.txt")
BACKBONES = ("ElectraBackbone", "BertBackbone")


def _lowercase(directory):
    try:
        with open(os.path.join(directory, TOKENIZER), encoding="utf-8") as f:
            value = json.load(f).get("config", {}).get("lowercase")
    except (OSError, ValueError, AttributeError):
        return None
    return value if isinstance(value, bool) else None


def read_backbone(directory):
    """The embeddings and encoder of a keras-hub ELECTRA or BERT backbone preset.

    Args:
        directory: a preset directory whose config.json is a keras-hub ElectraBackbone or BertBackbone.

    Returns:
        (ElectraConfig fields, {original name: float32 array}, vocab.txt path, lowercase or None when the
        tokenizer does not say, note lines).

    Example:

    >>> import keras_hub
    >>> directory = os.path.join(tempfile.mkdtemp(), "preset")
    >>> backbone = keras_hub.models.ElectraBackbone(vocab_size=20, num_layers=2, num_heads=2, hidden_dim=32,
    ...                                             embedding_dim=16, intermediate_dim=64, max_sequence_length=16)
    >>> backbone.save_to_preset(directory)
    >>> vocabulary = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [f"w{i}" for i in range(15)]
    >>> keras_hub.models.ElectraTokenizer(vocabulary=vocabulary, lowercase=True).save_to_preset(directory)
    >>> fields, tensors, vocab_file, lowercase, notes = read_backbone(directory)
    >>> fields["embedding_size"], tensors["electra/embeddings_project/kernel"].shape, lowercase
    (16, (16, 32), True)
    """
    for needed in (WEIGHTS, VOCABULARY):
        if not os.path.exists(os.path.join(directory, needed)):
            raise UserError(f"{directory} lacks {needed}; a keras-hub preset holds the backbone's weights and its "
                            "tokenizer's vocabulary (save both with save_to_preset)")
    import keras_hub

    try:
        # An absolute path: keras-hub would download a built-in preset of the same name as a relative one.
        backbone = keras_hub.models.Backbone.from_preset(os.path.abspath(directory))
    except (ValueError, OSError, KeyError, TypeError) as e:
        raise UserError(f"cannot load the keras-hub preset {directory} ({str(e).splitlines()[0]})") from None
    name = type(backbone).__name__
    if name not in BACKBONES:
        raise UserError(f"{directory} holds a keras-hub {name}; electra-tf reads ElectraBackbone and BertBackbone "
                        "presets")
    projection = getattr(backbone, "embeddings_projection", None)
    pairs = [*pretrainer_weights.embedding_variables((backbone.token_embedding, backbone.position_embedding,
                                                      backbone.segment_embedding, backbone.embeddings_layer_norm)),
             *pretrainer_weights.encoder_variables(DISCRIMINATOR_SCOPE, projection, backbone.transformer_layers)]
    tensors = pretrainer_weights.extract(pairs)
    words = tensors[f"{DISCRIMINATOR_SCOPE}/embeddings/word_embeddings"]
    first = backbone.transformer_layers[0]
    fields = {"vocab_size": words.shape[0], "embedding_size": words.shape[1], "hidden_size": backbone.hidden_dim,
              "num_layers": backbone.num_layers, "num_heads": backbone.num_heads,
              "intermediate_size": backbone.intermediate_dim, "max_position_embeddings": backbone.max_sequence_length,
              "type_vocab_size": backbone.num_segments, "layer_norm_epsilon": first.layer_norm_epsilon}
    notes = [f"read the keras-hub {name} {directory}: pooled_dense dropped (ELECTRA has no pooler); "
             "its blocks' tanh-approximated GELU is the exact GELU here"]
    return fields, tensors, os.path.join(directory, VOCABULARY), _lowercase(directory), notes
