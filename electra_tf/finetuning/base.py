"""`FinetuningModel`: what every fine-tuning model shares (the encoder, the original recipe as compile defaults).

The classifier, the tagger and the question answerer are the discriminator's
encoder with a task head named `head` (the optimizer gives its variables the
head's learning rate: electra_tf/finetuning/optimization.py). `compile()`
without an optimizer sets the original recipe (google-research/electra
`model/optimization.py`), sized at each `fit` for its number of updates;
the train step sums the gradients over replicas before the optimizer clips
them, as the original clips the gradient of the whole batch.

`from_pretrained` reads its model through `electra_tf.finetuning.sources`,
the one resolver of model sources (this project's runs and exports, Hugging
Face and keras-hub directories through electra_tf.convert); a transformers
task model of the model's task comes with its head.
"""

import math

import keras
import tensorflow as tf
from keras.src.losses.loss import unscale_loss_for_distribution

from electra_tf.finetuning import presets
from electra_tf.finetuning.config import FinetuningConfig
from electra_tf.finetuning.optimization import create_finetuning_optimizer
from electra_tf.finetuning.preprocessing import ElectraPreprocessor
from electra_tf.modeling.config import ElectraConfig
from electra_tf.modeling.embeddings import ElectraEmbeddings
from electra_tf.modeling.encoder import ElectraEncoder
from electra_tf.utils.errors import UserError
from electra_tf.utils.replicas import reduce_gradients_before_optimizer, sum_gradients


class FinetuningModel(keras.Model):
    """Base of the fine-tuning models: `embeddings`, `encoder`, and the recipe in compile and fit.

    Subclasses build `self.head` and define `call`, `default_loss` and
    `default_metrics`.

    Args:
        config: the `ElectraConfig` of the pre-trained model (its dropout rates apply to the encoder).
        **kwargs: passed to keras.Model (e.g. `name`).

    Example:

    >>> classifier = ElectraClassifier(ElectraConfig.for_size("tiny"), num_classes=2)
    >>> isinstance(classifier, FinetuningModel)
    True
    """

    def __init__(self, config, **kwargs):
        super().__init__(**kwargs)
        self.config = config
        # The encoder owns the embeddings: tracked there only, so summary() lists and counts them once.
        self.encoder = ElectraEncoder(config, "discriminator", ElectraEmbeddings(config, dtype=self.dtype_policy),
                                      dtype=self.dtype_policy)
        self._auto_optimizer = None
        self.preprocessor = None

    @property
    def embeddings(self):
        """The encoder's `ElectraEmbeddings`."""
        return self.encoder.embeddings

    def encode(self, inputs, training=None):
        """The final hidden states [batch, sequence, hidden] of the features dict `inputs`."""
        return self.encoder(inputs["input_ids"], inputs["segment_ids"], inputs["input_mask"], training=training)

    def default_loss(self):
        return None

    def default_metrics(self):
        return []

    def compile(self, optimizer="auto", loss="auto", metrics="auto", **kwargs):
        """Like keras.Model.compile; "auto" gives the original recipe (see the class docstring)."""
        self._auto_optimizer = optimizer == "auto"
        if self._auto_optimizer:
            # Sized for the run at each fit (the schedule needs the number of updates).
            optimizer = self._recipe_optimizer(1)
        if loss == "auto":
            loss = self.default_loss()
        if metrics == "auto":
            metrics = self.default_metrics()
        # Kept for fit's re-compile, outside Keras' tracking (metrics are tracked once compiled).
        self.__dict__["_compile_arguments"] = dict(loss=loss, metrics=metrics, **kwargs)
        super().compile(optimizer=optimizer, loss=loss, metrics=metrics, **kwargs)
        reduce_gradients_before_optimizer(self.optimizer)

    def _recipe_optimizer(self, num_train_steps):
        recipe = FinetuningConfig().resolve("", self.config.num_layers, self.config.hidden_size)
        return create_finetuning_optimizer(
            self, num_train_steps, learning_rate=recipe.learning_rate, layerwise_lr_decay=recipe.layerwise_lr_decay,
            warmup_proportion=recipe.warmup_proportion, weight_decay_rate=recipe.weight_decay_rate,
            clip_norm=recipe.clip_norm, epsilon=recipe.adam_epsilon)

    def train_step(self, data):
        # Keras' train step, with the gradients summed over replicas before the optimizer clips them.
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        with tf.GradientTape() as tape:
            y_pred = self(x, training=True)
            loss = self.compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sample_weight, training=True)
            self._loss_tracker.update_state(unscale_loss_for_distribution(loss),
                                            sample_weight=tf.shape(x["input_ids"])[0])
            scaled_loss = self.optimizer.scale_loss(loss)
        variables = self.trainable_weights
        gradients = sum_gradients(tape.gradient(scaled_loss, variables), variables)
        self.optimizer.apply_gradients(zip(gradients, variables))
        return self.compute_metrics(x, y, y_pred, sample_weight=sample_weight)

    def fit_features(self, x, y=None, batches=None, epochs=1, **kwargs):
        """keras fit, after re-sizing the recipe's schedule to `batches` per epoch x `epochs` updates."""
        if batches is None and isinstance(x, tf.data.Dataset) and int(x.cardinality()) > 0:
            batches = int(x.cardinality())
        elif batches is None and x is not None and not isinstance(x, tf.data.Dataset):
            rows = len(next(iter(x.values()))) if isinstance(x, dict) else len(x)
            batches = math.ceil(rows / (kwargs.get("batch_size") or 32))
        if self._auto_optimizer:
            if not batches:
                raise ValueError("the recipe's schedule needs the number of updates: pass steps_per_epoch, or "
                                 "compile with an optimizer of your own")
            with self.distribute_strategy.scope():
                keras.Model.compile(self, optimizer=self._recipe_optimizer(max(1, int(batches * epochs))),
                                    **self._compile_arguments)
                reduce_gradients_before_optimizer(self.optimizer)
        return keras.Model.fit(self, x, y, epochs=epochs, **kwargs)

    # ---- construction ----

    # The task family of the model ("classification", "tagging", "qa"): which transformers head it takes.
    TASK_FAMILY = None

    @classmethod
    def _build_pretrained(cls, path, sequence_length, hidden_dropout_prob, attention_probs_dropout_prob, lowercase,
                          load_weights, new_head=False, **kwargs):
        """`cls(config, preprocessor=..., **kwargs)` around the model at `path` (its weights if asked).

        A transformers task model's head comes too, its settings filling the head arguments left None
        (`hf_task_models.pretrained_arguments`), unless `new_head`.
        """
        import dataclasses

        from electra_tf.finetuning import hf_task_models, sources

        source = sources.resolve(path, lowercase)
        if new_head:
            source = dataclasses.replace(source, head=None)
        elif source.head is not None:
            kwargs = hf_task_models.pretrained_arguments(source.head, cls.TASK_FAMILY, kwargs)
        config = with_finetuning_settings(source.config, sequence_length, hidden_dropout_prob,
                                          attention_probs_dropout_prob, path)
        preprocessor = ElectraPreprocessor(source.vocab_file, source.lowercase, sequence_length)
        model = cls(config, preprocessor=preprocessor, **kwargs)
        if load_weights:
            source.load_weights(model)
        return model

    def save_to_preset(self, preset_dir):
        """Saves the model, its weights and its tokenizer in keras-hub's preset layout.

        `preset_dir` gets config.json, model.weights.h5, tokenizer.json,
        assets/tokenizer/vocabulary.txt and metadata.json
        (electra_tf/finetuning/presets.py); `from_preset` loads it back with
        the same predictions. It is written beside its destination and
        renamed into place.

        Args:
            preset_dir: the directory to write: absent, empty, or a preset to replace.

        Example:

        >>> vocab = os.path.join(tempfile.mkdtemp(), "vocab.txt")
        >>> _ = open(vocab, "w").write("\\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "gem"]))
        >>> config = ElectraConfig.for_size("tiny", max_seq_length=16, **special_token_ids(vocab))
        >>> classifier = ElectraClassifier(config, labels=["no", "yes"],
        ...                                preprocessor=ElectraPreprocessor(vocab, sequence_length=16))
        >>> preset = os.path.join(tempfile.mkdtemp(), "my_classifier")
        >>> classifier.save_to_preset(preset)
        >>> restored = ElectraClassifier.from_preset(preset)
        >>> same = restored.predict(["a gem"], verbose=0) == classifier.predict(["a gem"], verbose=0)
        >>> restored.labels, bool(same.all())
        (['no', 'yes'], True)
        """
        presets.save_preset(self, preset_dir)

    @classmethod
    def from_preset(cls, preset):
        """The model `save_to_preset` wrote to the directory `preset`, with its weights, tokenizer and labels.

        Nothing is downloaded: `preset` is a local directory. For a
        pre-trained model (keras-hub backbone, Hugging Face directory, a
        pre-training run) use `from_pretrained`.

        Args:
            preset: a directory written by `save_to_preset`.

        Example:

        >>> vocab = os.path.join(tempfile.mkdtemp(), "vocab.txt")
        >>> _ = open(vocab, "w").write("\\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "cat"]))
        >>> config = ElectraConfig.for_size("tiny", max_seq_length=16, **special_token_ids(vocab))
        >>> preprocessor = ElectraPreprocessor(vocab, sequence_length=16)
        >>> preset = os.path.join(tempfile.mkdtemp(), "my_tagger")
        >>> ElectraTagger(config, tags=["DT", "NN"], preprocessor=preprocessor).save_to_preset(preset)
        >>> ElectraTagger.from_preset(preset).tags
        ['DT', 'NN']
        """
        return presets.load_preset(cls, preset)

    def get_config(self):
        return {**super().get_config(), "config": self.config.to_dict(),
                "preprocessor": None if self.preprocessor is None else keras.layers.serialize(self.preprocessor)}

    @classmethod
    def _arguments_from_config(cls, config):
        """The constructor's other arguments from get_config's dict (what JSON cannot hold as it is)."""
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        preprocessor = config.pop("preprocessor", None)
        if preprocessor is not None:
            preprocessor = keras.layers.deserialize(preprocessor)
        return cls(ElectraConfig.from_dict(config.pop("config")), preprocessor=preprocessor,
                   **cls._arguments_from_config(config))


def with_finetuning_settings(config, sequence_length, hidden_dropout_prob, attention_probs_dropout_prob, source):
    """The pre-trained model's config with fine-tuning's sequence length and dropout."""
    if sequence_length > config.max_position_embeddings:
        raise UserError(f"max_seq_length {sequence_length} exceeds the {config.max_position_embeddings} positions "
                        f"of {source}; use at most {config.max_position_embeddings}")
    return config.replace(max_seq_length=sequence_length, hidden_dropout_prob=hidden_dropout_prob,
                          attention_probs_dropout_prob=attention_probs_dropout_prob)
