"""`ElectraClassifier`: the discriminator's encoder with a classification or regression head on [CLS].

The head is the original's single dense layer, or transformers'
`ElectraForSequenceClassification` head (`TransformersClassificationHead`),
which `convert_checkpoint --to_hf` writes as that class.
"""

import math

import keras
import numpy as np
import tensorflow as tf

from electra_tf.finetuning.base import FinetuningModel
from electra_tf.finetuning.config import CLASSIFIER_HEADS
from electra_tf.modeling.encoder import exact_gelu


def _is_text_batch(x):
    if isinstance(x, tf.Tensor | tf.RaggedTensor):
        return x.dtype == tf.string
    if isinstance(x, np.ndarray):
        return x.dtype.kind in "USO"
    return isinstance(x, list) and bool(x) and isinstance(x[0], str)


def _text_inputs(x):
    """x as a tuple of one or two string batches, or None when x is not raw text."""
    if isinstance(x, tuple | list) and len(x) == 2 and all(_is_text_batch(t) for t in x) and not isinstance(x[0], str):
        return tuple(x)
    return (x,) if _is_text_batch(x) else None


def _num_rows(texts):
    return int(texts[0].shape[0]) if hasattr(texts[0], "shape") else len(texts[0])


@keras.saving.register_keras_serializable(package="electra_tf")
class TransformersClassificationHead(keras.layers.Layer):
    """transformers' ELECTRA classification head after its first dropout: dense -> GELU -> dropout -> dense.

    `ElectraForSequenceClassification` applies dropout to the [CLS] vector,
    a dense layer as wide as the hidden states, GELU, dropout again and the
    output layer; `ElectraClassifier` applies the first dropout itself, as
    it does for the original's head. The GELU is the exact (erf) one, as
    transformers' "gelu"; weights start as transformers' do: normal with
    standard deviation `initializer_range`, zero bias. The layer names
    `dense` and `out_proj` are transformers'.

    Args:
        hidden_size: the width of the [CLS] vector and of the inner dense layer.
        num_outputs: classes, or 1 for regression.
        dropout: the rate of the dropout between the two dense layers.
        initializer_range: standard deviation of the initial weights.
        **kwargs: passed to keras.layers.Layer.

    Example:

    >>> head = TransformersClassificationHead(hidden_size=8, num_outputs=3)
    >>> head(tf.random.normal([2, 8])).shape
    TensorShape([2, 3])
    """

    def __init__(self, hidden_size, num_outputs, dropout=0.1, initializer_range=0.02, **kwargs):
        super().__init__(**kwargs)
        self.hidden_size = hidden_size
        self.num_outputs = num_outputs
        self.dropout_rate = dropout
        self.initializer_range = initializer_range
        dense = dict(kernel_initializer=keras.initializers.RandomNormal(stddev=initializer_range),
                     dtype=self.dtype_policy)
        self.dense = keras.layers.Dense(hidden_size, name="dense", **dense)
        self.dropout = keras.layers.Dropout(dropout, dtype=self.dtype_policy)
        self.out_proj = keras.layers.Dense(num_outputs, name="out_proj", **dense)

    def build(self, input_shape=None):
        self.dense.build((None, self.hidden_size))
        self.out_proj.build((None, self.hidden_size))
        self.built = True

    def call(self, inputs, training=None):
        return self.out_proj(self.dropout(exact_gelu(self.dense(inputs)), training=training))

    def get_config(self):
        return {**super().get_config(), "hidden_size": self.hidden_size, "num_outputs": self.num_outputs,
                "dropout": self.dropout_rate, "initializer_range": self.initializer_range}


@keras.saving.register_keras_serializable(package="electra_tf")
class ElectraClassifier(FinetuningModel):
    """The discriminator's encoder -> the [CLS] vector -> dropout -> the head.

    The original's fine-tuning model (google-research/electra
    `finetune/classification/classification_tasks.py`): no pooler and no
    tanh; the head is one dense layer that starts from Glorot-uniform
    weights and zero bias. With `classifier_head="transformers"` the head
    is transformers' instead (`TransformersClassificationHead`: dense ->
    GELU -> dropout -> dense, as `ElectraForSequenceClassification`), the
    layout `convert_checkpoint --to_hf` can write; both train, evaluate and
    export through the same code, and the layer-wise learning rate gives
    every layer of either head the head's rate.
    With `regression=True` it has one output, trained with squared error.
    Its inputs are the dict of int32 `input_ids`, `input_mask`,
    `segment_ids`; it returns float32 logits `[batch, num_classes]` (or
    scores `[batch, 1]`).

    With a `preprocessor`, `fit`, `evaluate` and `predict` also take raw
    text: a list (or array or tf.Tensor) of strings, or a tuple of two for
    sentence pairs. `compile()` without arguments sets the original's recipe:
    the loss summed over the batch (the gradient the original clips),
    `ElectraAdamW` with layer-wise learning-rate decay, warmup over 10% of
    the updates and linear decay, sized at each `fit` for its epochs.
    Gradients are summed over replicas before clipping, so one device and
    `MirroredStrategy` make the same update.

    Args:
        config: the `ElectraConfig` of the pre-trained model (its dropout rates apply to the encoder).
        num_classes: number of labels (ignored with `regression`).
        regression: one output trained with squared error instead of classes.
        preprocessor: an `ElectraPreprocessor` for raw-text inputs, or None.
        dropout: dropout on the [CLS] vector, and in the transformers head (default: `config.hidden_dropout_prob`).
        classifier_head: "original" (one dense layer) or "transformers" (`TransformersClassificationHead`).

    Example:

    >>> vocab = os.path.join(tempfile.mkdtemp(), "vocab.txt")
    >>> words = ["a", "gem", "of", "film", "dull", "mess", "quiet", "triumph", "."]
    >>> _ = open(vocab, "w").write("\\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + words))
    >>> config = ElectraConfig.for_size("tiny", max_seq_length=16, **special_token_ids(vocab))
    >>> preprocessor = ElectraPreprocessor(vocab, sequence_length=16)
    >>> classifier = ElectraClassifier(config, num_classes=2, preprocessor=preprocessor)
    >>> classifier.compile()
    >>> history = classifier.fit(["a gem of a film .", "a dull mess ."], [0, 1], epochs=2, batch_size=2, verbose=0)
    >>> classifier.predict(["a quiet triumph ."], verbose=0).shape
    (1, 2)

    A pre-trained discriminator comes in with `from_pretrained`: pass
    `run_pretraining`'s model_dir (e.g. `ElectraClassifier.from_pretrained("demo_out/model", num_classes=2)`).
    """

    def __init__(self, config, num_classes=2, regression=False, preprocessor=None, dropout=None,
                 classifier_head="original", **kwargs):
        kwargs.setdefault("name", "electra_classifier")
        if not regression and num_classes < 2:
            raise ValueError(f"num_classes must be at least 2, got {num_classes} (regression=True for one score)")
        if classifier_head not in CLASSIFIER_HEADS:
            raise ValueError(f"classifier_head must be one of {', '.join(CLASSIFIER_HEADS)}, got {classifier_head!r}")
        super().__init__(config, **kwargs)
        self.regression = regression
        self.num_classes = 1 if regression else num_classes
        self.preprocessor = preprocessor
        self.classifier_head = classifier_head
        self.dropout_rate = config.hidden_dropout_prob if dropout is None else dropout
        self.dropout = keras.layers.Dropout(self.dropout_rate, dtype=self.dtype_policy)
        if classifier_head == "transformers":
            self.head = TransformersClassificationHead(self.encoder.hidden_size, self.num_classes, self.dropout_rate,
                                                       config.initializer_range, dtype=self.dtype_policy,
                                                       name="classifier_head")
        else:
            self.head = keras.layers.Dense(self.num_classes, kernel_initializer="glorot_uniform",
                                           dtype=self.dtype_policy, name="classifier_head")
        self.build()

    def build(self, input_shape=None):
        if self.built:
            return
        self.encoder.build((None, self.config.max_seq_length))
        self.head.build((None, self.encoder.hidden_size))
        self.built = True

    def call(self, inputs, training=None):
        hidden = self.encode(inputs, training=training)
        logits = self.head(self.dropout(hidden[:, 0], training=training), training=training)
        return keras.ops.cast(logits, "float32")

    def default_loss(self):
        if self.regression:
            return keras.losses.MeanSquaredError(reduction="sum")
        return keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction="sum")

    def default_metrics(self):
        return [] if self.regression else [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]

    # ---- raw text in fit / evaluate / predict ----

    def _text_dataset(self, texts, y, sample_weight, batch_size, shuffle):
        if self.preprocessor is None:
            raise ValueError("raw text needs a preprocessor; build the classifier with from_pretrained or pass "
                             "preprocessor=ElectraPreprocessor(...)")
        rows = _num_rows(texts)
        elements = (tuple(tf.constant(t) for t in texts) if len(texts) == 2 else tf.constant(texts[0]),)
        elements += tuple(np.asarray(v) for v in (y, sample_weight) if v is not None)
        dataset = tf.data.Dataset.from_tensor_slices(elements)
        if shuffle:
            dataset = dataset.shuffle(rows, reshuffle_each_iteration=True)
        dataset = dataset.batch(batch_size or 32).map(lambda *args: self.preprocessor(*args),
                                                      num_parallel_calls=tf.data.AUTOTUNE)
        return dataset.prefetch(tf.data.AUTOTUNE), math.ceil(rows / (batch_size or 32))

    def _maybe_text_dataset(self, x, y=None, sample_weight=None, batch_size=None, shuffle=False):
        """(dataset, batches per pass) for raw text or a dataset of it; None when x is already features."""
        texts = _text_inputs(x)
        if texts is not None:
            return self._text_dataset(texts, y, sample_weight, batch_size, shuffle)
        if isinstance(x, tf.data.Dataset) and self.preprocessor is not None:
            first = tf.nest.flatten(x.element_spec)[0]
            if first.dtype == tf.string:
                batches = int(x.cardinality())
                return (x.map(lambda *args: self.preprocessor(*args), num_parallel_calls=tf.data.AUTOTUNE),
                        batches if batches > 0 else None)
        return None

    def fit(self, x=None, y=None, batch_size=None, epochs=1, sample_weight=None, shuffle=True, steps_per_epoch=None,
            validation_data=None, **kwargs):
        made = self._maybe_text_dataset(x, y, sample_weight, batch_size, shuffle)
        batches = steps_per_epoch
        if made is not None:
            x, batches = made
            y = sample_weight = batch_size = None
            batches = steps_per_epoch or batches
        if validation_data is not None:
            val_x, val_y, val_weight = keras.utils.unpack_x_y_sample_weight(validation_data)
            made_val = self._maybe_text_dataset(val_x, val_y, val_weight, kwargs.get("validation_batch_size"))
            if made_val is not None:
                validation_data = made_val[0]
        if isinstance(x, tf.data.Dataset):
            shuffle = False  # a dataset comes shuffled (Keras would ignore it, with a warning)
        return self.fit_features(x, y, batches=batches, epochs=epochs, batch_size=batch_size,
                                 sample_weight=sample_weight, shuffle=shuffle, steps_per_epoch=steps_per_epoch,
                                 validation_data=validation_data, **kwargs)

    def evaluate(self, x=None, y=None, batch_size=None, sample_weight=None, **kwargs):
        made = self._maybe_text_dataset(x, y, sample_weight, batch_size)
        if made is not None:
            x, y, sample_weight, batch_size = made[0], None, None, None
        return super().evaluate(x, y, batch_size=batch_size, sample_weight=sample_weight, **kwargs)

    def predict(self, x, batch_size=None, **kwargs):
        made = self._maybe_text_dataset(x, batch_size=batch_size)
        if made is not None:
            x, batch_size = made[0], None
        return super().predict(x, batch_size=batch_size, **kwargs)

    # ---- construction ----

    @classmethod
    def from_pretrained(cls, path, num_classes=2, regression=False, sequence_length=128, hidden_dropout_prob=0.1,
                        attention_probs_dropout_prob=0.1, lowercase=None, load_weights=True, **kwargs):
        """A classifier around the discriminator at `path`, with a preprocessor for its vocabulary.

        Args:
            path: a model_dir of run_pretraining or convert_checkpoint, a checkpoint prefix in one, or an
                exported discriminator (`<model_dir>/export/discriminator`).
            num_classes: number of labels.
            regression: one output trained with squared error.
            sequence_length: tokens per example (at most the model's max_position_embeddings).
            hidden_dropout_prob: dropout in the encoder and on the [CLS] vector (the recipe's 0.1,
                whatever pre-training used).
            attention_probs_dropout_prob: dropout on attention probabilities.
            lowercase: for an export copied out of its model_dir, whether its vocabulary is uncased
                (default: yes); elsewhere it is read from the model_dir and must not disagree.
            load_weights: False keeps the random initialisation: the same model untrained, the baseline
                a pre-trained model is compared with.
            **kwargs: passed to the constructor (e.g. `name`).

        Example:

        >>> vocab = os.path.join(tempfile.mkdtemp(), "vocab.txt")
        >>> _ = open(vocab, "w").write("\\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "film"]))
        >>> from electra_tf.serving.savedmodel import export_pretrainer
        >>> pretrainer = ElectraPretrainer(ElectraConfig.for_size("tiny", **special_token_ids(vocab)))
        >>> export = export_pretrainer(pretrainer, vocab, tempfile.mkdtemp())  # as run_pretraining writes it
        >>> classifier = ElectraClassifier.from_pretrained(export, num_classes=3, sequence_length=32)
        >>> classifier.predict(["a film"], verbose=0).shape
        (1, 3)
        """
        return cls._build_pretrained(path, sequence_length, hidden_dropout_prob, attention_probs_dropout_prob,
                                     lowercase, load_weights, num_classes=num_classes, regression=regression, **kwargs)

    def get_config(self):
        return {**super().get_config(), "num_classes": self.num_classes, "regression": self.regression,
                "dropout": self.dropout_rate, "classifier_head": self.classifier_head}
