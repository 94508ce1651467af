"""`ElectraClassifier`: the discriminator's encoder with a classification or regression head on [CLS].

The head is the original's single dense layer, or transformers'
`ElectraForSequenceClassification` head (`TransformersClassificationHead`),
which `convert_checkpoint --to_hf` writes as that class.
"""

import math

import keras
import numpy as np
import tensorflow as tf

from electra_tf.finetuning import inputs
from electra_tf.finetuning.base import FinetuningModel
from electra_tf.finetuning.config import CLASSIFIER_HEADS
from electra_tf.finetuning.tasks import sorted_labels
from electra_tf.modeling.encoder import exact_gelu
from electra_tf.serving.classifier_savedmodel import export_classifier
from electra_tf.utils.errors import UserError


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
    sentence pairs, and the labels may be names ("positive") or class ids.
    The names are given (`labels=`) or learnt from the first `fit`'s labels
    (sorted; integers in numeric order, as run_finetuning orders a file's
    labels), and saved with the model. `classify` gives each text's label
    and probability; `predict` stays Keras' (the logits). What fit,
    evaluate, predict and classify are given is checked before any graph
    runs: a wrong type, an empty batch, lengths that differ, a label outside
    the classes or an unknown name is a one-line `UserError`.
    `compile()` without arguments sets the original's recipe:
    the loss summed over the batch (the gradient the original clips),
    `ElectraAdamW` with layer-wise learning-rate decay, warmup over 10% of
    the updates and linear decay, sized at each `fit` for its epochs.
    Gradients are summed over replicas before clipping, so one device and
    `MirroredStrategy` make the same update.

    Args:
        config: the `ElectraConfig` of the pre-trained model (its dropout rates apply to the encoder).
        num_classes: number of labels (default: as many as `labels`, else 2; ignored with `regression`).
        regression: one output trained with squared error instead of classes.
        preprocessor: an `ElectraPreprocessor` for raw-text inputs, or None.
        dropout: dropout on the [CLS] vector, and in the transformers head (default: `config.hidden_dropout_prob`).
        classifier_head: "original" (one dense layer) or "transformers" (`TransformersClassificationHead`).
        labels: the label names in class-id order (default: learnt at the first fit).
        pair: whether the inputs are sentence pairs (default: learnt at the first fit on text).
        **kwargs: passed to keras.Model (e.g. `name`).

    Example:

    >>> vocab = os.path.join(tempfile.mkdtemp(), "vocab.txt")
    >>> words = ["a", "gem", "of", "film", "dull", "mess", "quiet", "triumph", "."]
    >>> _ = open(vocab, "w").write("\\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + words))
    >>> config = ElectraConfig.for_size("tiny", max_seq_length=16, **special_token_ids(vocab))
    >>> preprocessor = ElectraPreprocessor(vocab, sequence_length=16)
    >>> classifier = ElectraClassifier(config, num_classes=2, preprocessor=preprocessor)
    >>> classifier.compile()
    >>> history = classifier.fit(["a gem of a film .", "a dull mess ."], ["positive", "negative"], epochs=2,
    ...                          batch_size=2, verbose=0)
    >>> classifier.labels
    ['negative', 'positive']
    >>> classifier.predict(["a quiet triumph ."], verbose=0).shape
    (1, 2)
    >>> classifier.classify("a quiet triumph .")[0]["label"] in classifier.labels
    True

    A pre-trained discriminator comes in with `from_pretrained`: pass
    `run_pretraining`'s model_dir (e.g. `ElectraClassifier.from_pretrained("demo_out/model")`), a Hugging
    Face ELECTRA or BERT directory, or a keras-hub preset. `save_to_preset` / `from_preset` keep a
    fine-tuned classifier (weights, tokenizer, label names) in keras-hub's preset layout.
    """

    TASK_FAMILY = "classification"

    def __init__(self, config, num_classes=None, regression=False, preprocessor=None, dropout=None,
                 classifier_head="original", labels=None, pair=None, **kwargs):
        kwargs.setdefault("name", "electra_classifier")
        regression = bool(regression)
        if labels is not None and not regression:
            labels = [str(label) for label in labels]
            if len(set(labels)) != len(labels):
                raise UserError(f"labels must be distinct, got {labels}")
            if num_classes not in (None, len(labels)):
                raise UserError(f"num_classes={num_classes} but {len(labels)} labels were given; give one of them")
            num_classes = len(labels)
        num_classes = 2 if num_classes is None else num_classes
        if not regression and num_classes < 2:
            raise UserError(f"num_classes must be at least 2, got {num_classes} (regression=True for one score)")
        if classifier_head not in CLASSIFIER_HEADS:
            raise UserError(f"classifier_head must be one of {', '.join(CLASSIFIER_HEADS)}, got {classifier_head!r}")
        super().__init__(config, **kwargs)
        self.regression = regression
        self.num_classes = 1 if regression else num_classes
        self.labels = None if regression else labels
        self.pair = pair
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

    @property
    def label_names(self):
        """The label of each class, in id order ("0", "1", ... until names are given or learnt); None for regression."""
        if self.regression:
            return None
        return self.labels or [str(i) for i in range(self.num_classes)]

    # ---- checking what fit, evaluate and predict are given ----

    def _label_ids(self, y, rows, learn=False, what="y"):
        """`y` as int32 class ids (float32 scores for regression); with `learn`, names are learnt if not known."""
        y = inputs.values(y, what, rows)
        if self.regression:
            if y.dtype.kind not in "iuf":
                raise UserError(f"{what} must be numbers for a regression, got {_first_of_kind(y, 'iuf')}")
            return y.astype(np.float32)
        if y.dtype.kind in "USO":
            names = [v.decode() if isinstance(v, bytes) else v for v in y.tolist()]
            odd = next((v for v in names if not isinstance(v, str)), None)
            if odd is not None:
                raise UserError(f"{what} mixes label names with {inputs.a_type(odd)} ({odd!r}); give names or "
                                "class ids, not both")
            if self.labels is None:
                if not learn:
                    raise UserError(f"{what} holds label names but the classifier has none yet: fit it on named "
                                    "labels first, or build it with labels=[...]")
                self._learn_labels(names, what)
            ids = {name: i for i, name in enumerate(self.labels)}
            unknown = next((name for name in names if name not in ids), None)
            if unknown is not None:
                raise UserError(f"label {unknown!r} in {what} is not one of the classifier's labels "
                                f"({', '.join(self.labels)}); use one of those")
            return np.array([ids[name] for name in names], np.int32)
        if y.dtype.kind == "b" or (y.dtype.kind == "f" and not np.all(np.mod(y, 1) == 0)) or y.dtype.kind not in "iuf":
            raise UserError(f"{what} must be class ids (integers 0..{self.num_classes - 1}) or label names, got "
                            f"{_first_of_kind(y, 'iu')}")
        outside = y[(y < 0) | (y >= self.num_classes)]
        if outside.size:
            raise UserError(f"label {outside[0]:g} in {what} is outside the classes 0..{self.num_classes - 1} "
                            f"(num_classes={self.num_classes}); build the classifier with more classes or fix the "
                            "labels")
        if self.labels is None and learn:
            self.labels = self.label_names
        return y.astype(np.int32)

    def _learn_labels(self, names, what):
        found = sorted_labels(names)
        if len(found) != self.num_classes:
            listed = ", ".join(found[:6]) + (", ..." if len(found) > 6 else "")
            raise UserError(f"{what} names {len(found)} classes ({listed}) but the classifier has "
                            f"num_classes={self.num_classes}; build it with labels=[...] naming every class")
        self.labels = found

    def _text_dataset(self, texts, y, sample_weight, batch_size, shuffle):
        if self.preprocessor is None:
            raise UserError("raw text needs a preprocessor; build the classifier with from_pretrained or pass "
                            "preprocessor=ElectraPreprocessor(...)")
        rows = inputs.num_rows(texts[0])
        elements = (tuple(tf.constant(t) for t in texts) if len(texts) == 2 else tf.constant(texts[0]),)
        elements += tuple(v for v in (y, sample_weight) if v is not None)
        dataset = tf.data.Dataset.from_tensor_slices(elements)
        if shuffle:
            dataset = dataset.shuffle(rows, reshuffle_each_iteration=True)
        dataset = dataset.batch(batch_size or 32).map(lambda *args: self.preprocessor(*args),
                                                      num_parallel_calls=tf.data.AUTOTUNE)
        return dataset.prefetch(tf.data.AUTOTUNE), math.ceil(rows / (batch_size or 32))

    def _checked(self, x, y=None, sample_weight=None, learn=False, what="x"):
        """(texts or None, y, sample_weight) with the texts, labels and weights checked (labels as ids)."""
        texts = None if inputs.is_features(x) else inputs.texts(x, what)
        if texts is not None and self.pair is not None and (len(texts) == 2) != self.pair:
            raise UserError(f"the classifier was trained on {'sentence pairs' if self.pair else 'single texts'}; "
                            f"give {'a tuple of two lists' if self.pair else 'one list of texts'}")
        if isinstance(x, dict):
            rows = len(next(iter(x.values())))
        elif texts is not None:
            rows = inputs.num_rows(texts[0])
        else:
            return None, y, sample_weight  # a dataset: checked as it is read
        if sample_weight is not None:
            sample_weight = inputs.values(sample_weight, "sample_weight", rows).astype(np.float32)
        if y is not None:  # last: with `learn`, a valid y sets the label names
            y = self._label_ids(y, rows, learn, "y" if what == "x" else f"{what}'s labels")
        if texts is not None and learn:
            self.pair = len(texts) == 2
        return texts, y, sample_weight

    def _model_inputs(self, x, y=None, sample_weight=None, batch_size=None, shuffle=False, learn=False, what="x"):
        """Checked `(x, y, sample_weight, batch_size, batches per pass or None)` for Keras.

        Raw text becomes a dataset of features (labels and weights inside it,
        batched: the batch size moves into it too); features pass through.
        """
        texts, y, sample_weight = self._checked(x, y, sample_weight, learn, what)
        if texts is not None:
            dataset, batches = self._text_dataset(texts, y, sample_weight, batch_size, shuffle)
            return dataset, None, None, None, batches
        if isinstance(x, tf.data.Dataset) and self.preprocessor is not None:
            first = tf.nest.flatten(x.element_spec)[0]
            if first.dtype == tf.string:
                batches = int(x.cardinality())
                x = x.map(lambda *args: self.preprocessor(*args), num_parallel_calls=tf.data.AUTOTUNE)
                return x, y, sample_weight, batch_size, batches if batches > 0 else None
        return x, y, sample_weight, batch_size, None

    def fit(self, x=None, y=None, batch_size=None, epochs=1, sample_weight=None, shuffle=True, steps_per_epoch=None,
            validation_data=None, **kwargs):
        if y is None and not isinstance(x, tf.data.Dataset):
            raise UserError("fit needs the labels: fit(texts, labels), or a tf.data.Dataset of (texts, labels)")
        x, y, sample_weight, batch_size, batches = self._model_inputs(x, y, sample_weight, batch_size, shuffle,
                                                                      learn=True)
        if validation_data is not None:
            val_x, val_y, val_weight = keras.utils.unpack_x_y_sample_weight(validation_data)
            val_x, val_y, val_weight, _, _ = self._model_inputs(
                val_x, val_y, val_weight, kwargs.get("validation_batch_size"), what="validation_data")
            validation_data = keras.utils.pack_x_y_sample_weight(val_x, val_y, val_weight)
        if isinstance(x, tf.data.Dataset):
            shuffle = False  # a dataset comes shuffled (Keras would ignore it, with a warning)
        return self.fit_features(x, y, batches=steps_per_epoch or batches, epochs=epochs, batch_size=batch_size,
                                 sample_weight=sample_weight, shuffle=shuffle, steps_per_epoch=steps_per_epoch,
                                 validation_data=validation_data, **kwargs)

    def evaluate(self, x=None, y=None, batch_size=None, sample_weight=None, **kwargs):
        x, y, sample_weight, batch_size, _ = self._model_inputs(x, y, sample_weight, batch_size)
        return super().evaluate(x, y, batch_size=batch_size, sample_weight=sample_weight, **kwargs)

    def predict(self, x, batch_size=None, **kwargs):
        """Keras' predict: the logits [batch, num_classes] (or scores [batch, 1]); `x` may be raw text."""
        x, _, _, batch_size, _ = self._model_inputs(x, batch_size=batch_size)
        return super().predict(x, batch_size=batch_size, **kwargs)

    def classify(self, texts, top_k=1, batch_size=32):
        """Each text's label and its probability, as a transformers text-classification pipeline returns them.

        Args:
            texts: one string, a list of strings, or a tuple of two lists (sentence pairs).
            top_k: how many labels per text, most probable first; None for all. With 1, each text gets one
                dict; otherwise a list of them.
            batch_size: texts per prediction batch.

        Returns:
            A list with one entry per text: `{"label": name, "score": probability}` (a list of such dicts
            when `top_k` is not 1); for a regression, `{"score": value}`.

        Example:

        >>> vocab = os.path.join(tempfile.mkdtemp(), "vocab.txt")
        >>> _ = open(vocab, "w").write("\\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "gem", "dull"]))
        >>> config = ElectraConfig.for_size("tiny", max_seq_length=16, **special_token_ids(vocab))
        >>> classifier = ElectraClassifier(config, labels=["negative", "positive"],
        ...                                preprocessor=ElectraPreprocessor(vocab, sequence_length=16))
        >>> [result] = classifier.classify("a gem")
        >>> result["label"] in ("negative", "positive"), 0.0 <= result["score"] <= 1.0
        (True, True)
        >>> len(classifier.classify(["a gem", "dull"], top_k=None)[1])
        2
        """
        if isinstance(texts, str):
            texts = [texts]
        if top_k is not None and (not isinstance(top_k, int) or top_k < 1):
            raise UserError(f"top_k must be a positive integer or None, got {top_k!r}")
        outputs = self.predict(texts, batch_size=batch_size, verbose=0)
        if self.regression:
            return [{"score": float(value)} for value in outputs[:, 0]]
        probabilities = tf.nn.softmax(outputs, axis=-1).numpy()
        names = self.label_names
        results = []
        for row in probabilities:
            ranked = [{"label": names[i], "score": float(row[i])} for i in np.argsort(-row, kind="stable")]
            results.append(ranked[0] if top_k == 1 else ranked[:top_k])
        return results

    def export(self, filepath):
        """Writes the SavedModel run_finetuning writes: `serve_text` (raw strings -> labels), `serving_default` (ids).

        The tokenizer runs in its graph; `labels.txt`, `vocab.txt` and
        `finetuning_config.json` are written beside it, and it loads with
        `tf.saved_model.load` (after `import tensorflow_text`) in a process
        that does not import electra_tf. `serve_text` takes `text`, or
        `text_a` and `text_b` for a classifier fit on sentence pairs. See
        `electra_tf.serving.classifier_savedmodel`.

        Args:
            filepath: the directory to write (an export there is replaced only once the new one is complete).

        Returns:
            `filepath`.

        Example:

        >>> vocab = os.path.join(tempfile.mkdtemp(), "vocab.txt")
        >>> _ = open(vocab, "w").write("\\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "gem"]))
        >>> config = ElectraConfig.for_size("tiny", max_seq_length=16, **special_token_ids(vocab))
        >>> classifier = ElectraClassifier(config, labels=["negative", "positive"],
        ...                                preprocessor=ElectraPreprocessor(vocab, sequence_length=16))
        >>> export_dir = classifier.export(os.path.join(tempfile.mkdtemp(), "export"))
        >>> served = tf.saved_model.load(export_dir).signatures["serve_text"](text=tf.constant(["a gem"]))
        >>> served["label"].numpy()[0].decode() in ("negative", "positive")
        True
        """
        if self.preprocessor is None:
            raise UserError("export needs the tokenizer: build the classifier with from_pretrained or pass "
                            "preprocessor=ElectraPreprocessor(...)")
        record = {"labels": self.label_names, "regression": self.regression, "pair": bool(self.pair),
                  "lowercase": self.preprocessor.lowercase, "electra_config": self.config.to_dict()}
        return export_classifier(self, filepath, self.label_names, bool(self.pair), 1.0, record)

    # ---- construction ----

    @classmethod
    def from_pretrained(cls, path, num_classes=None, regression=None, sequence_length=128, hidden_dropout_prob=0.1,
                        attention_probs_dropout_prob=0.1, lowercase=None, load_weights=True, labels=None,
                        new_head=False, **kwargs):
        """A classifier around the discriminator at `path`, with a preprocessor for its vocabulary.

        A transformers `ElectraForSequenceClassification` directory comes with
        its head: `classifier_head="transformers"`, its label names
        (`id2label` in id order) and, for `problem_type` regression or one
        label, `regression=True`; the logits are transformers'. Head
        arguments given must agree with it (labels in another order are
        matched by name); `new_head=True` reads only its encoder. A
        `BertForSequenceClassification` has BERT's pooler (tanh) in its head,
        which no head here computes: it needs `new_head=True`.

        Args:
            path: a model_dir of run_pretraining or convert_checkpoint, a checkpoint prefix in one, an
                exported discriminator (`<model_dir>/export/discriminator`), a Hugging Face ELECTRA
                discriminator or BERT directory (or a transformers task model), a keras-hub ElectraBackbone
                or BertBackbone preset, or a fine-tuned model's preset (its encoder); see
                `electra_tf.finetuning.sources`. A local path: nothing is downloaded.
            num_classes: number of labels (default: as many as `labels`, else the head's, else 2).
            regression: one output trained with squared error (default: the head's, else False).
            sequence_length: tokens per example (at most the model's max_position_embeddings).
            hidden_dropout_prob: dropout in the encoder and on the [CLS] vector (the recipe's 0.1,
                whatever pre-training used).
            attention_probs_dropout_prob: dropout on attention probabilities.
            lowercase: for an export copied out of its model_dir, whether its vocabulary is uncased
                (default: yes); elsewhere it is read from the model_dir and must not disagree.
            load_weights: False keeps the random initialisation: the same model untrained, the baseline
                a pre-trained model is compared with.
            labels: the label names in class-id order (default: the head's, else learnt at the first fit).
            new_head: with a transformers task model, read its encoder only and start a new head.
            **kwargs: passed to the constructor (e.g. `name`, `classifier_head`, `pair`).

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
                                     lowercase, load_weights, new_head, num_classes=num_classes,
                                     regression=regression, labels=labels, **kwargs)

    def get_config(self):
        return {**super().get_config(), "num_classes": self.num_classes, "regression": self.regression,
                "dropout": self.dropout_rate, "classifier_head": self.classifier_head, "labels": self.labels,
                "pair": self.pair}


def _first_of_kind(values, kinds):
    """What the first value not of the NumPy `kinds` is, for a message."""
    for value in values.tolist():
        if np.asarray(value).dtype.kind not in kinds or isinstance(value, bool):
            return f"{inputs.a_type(value)} ({value!r})"
    return f"{values.dtype} values"
