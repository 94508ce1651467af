"""What an objective is, and the pieces several objectives share."""

import keras
import tensorflow as tf

from electra_tf.modeling.embeddings import ElectraEmbeddings, GdesEmbeddings
from electra_tf.modeling.models import ElectraDiscriminator, ElectraGenerator, build_tower
from electra_tf.pretraining.masking import mask_tokens, scatter_at_positions
from electra_tf.pretraining.sampling import sample, temperature_at

# Metrics that need thresholds rather than a running mean.
_THRESHOLDED = {"rtd_precision": keras.metrics.Precision, "rtd_recall": keras.metrics.Recall,
                "rtd_auc": keras.metrics.AUC}


class Objective:
    """One pre-training objective: its models, corruption, forward pass, losses and metrics.

    `ElectraPretrainer` keeps what every objective shares: the masking keyed
    by (seed, step, example), gradient accumulation, the all-reduce before
    clipping, the metric bookkeeping. A subclass supplies the rest:

    - `build_models(dtype)`: `{attribute name: layer}` (`create_models` keeps it
      as `self.models`; `build` builds the towers among them). The pretrainer sets
      them as its attributes in that order, which fixes the order of its
      variables in checkpoints; `generator` and `discriminator` are None
      unless given. `embeddings` comes first.
    - `kept`: the name of the model pre-training is for, an
      `ElectraDiscriminator` or an `ElectraGenerator` of the discriminator's
      size; it is exported, converted and fine-tuned.
    - `mask(input_ids, input_mask, step, example_index)`: which positions to
      predict and what the input shows there (the original's masking).
    - `forward(masked, step, training)`: a dict of tensors, `masked`'s included; every tower is
      called with `dropout_keys=masked["dropout_keys"]`.
    - `losses(outputs, num_masked, num_real)`: this replica's share of the
      total loss (the global masked and real-token counts are given, so the
      shares of all replicas and micro-batches add up to it) and a dict of
      per-token pieces for the metrics.
    - `metric_names` and `update_metrics(metrics, outputs, parts)`. Names
      are `<group>_<what>` (TensorBoard groups them, training/summaries.py).

    Args:
        config: the `ElectraConfig`.
        num_train_steps: the run's length, for schedules over training (the
            sampling temperature); None when nothing is scheduled.
        rematerialize: build the towers to recompute their blocks in the backward pass.

    Example:

    >>> from electra_tf.pretraining.objectives import create
    >>> objective = create(ElectraConfig.for_size("tiny", objective="electra_15"))
    >>> objective.kept, objective.metric_names[:3]
    ('discriminator', ('loss', 'mlm_loss', 'mlm_accuracy'))
    """

    name = None
    kept = "discriminator"
    metric_names = ("loss",)
    # The metric the progress line shows, and its short label.
    progress_metric = ("mlm_accuracy", "mlm_acc")
    # Whether the kept discriminator's head judges its last layer (ELECTRA's); when not, exports hold
    # its encoder alone and say what they drop (`pretraining_only`).
    detection_head = True
    pretraining_only = ""

    @classmethod
    def export_name(cls):
        """What the kept model exports as: "discriminator" (with rtd_probabilities) or "encoder"."""
        return "discriminator" if cls.kept == "discriminator" and cls.detection_head else "encoder"

    def __init__(self, config, num_train_steps=None, rematerialize=False):
        self.config = config
        self.num_train_steps = num_train_steps
        self.rematerialize = rematerialize
        self.generator = self.discriminator = None

    def create_models(self, dtype):
        """`build_models`'s dict, also kept as `self.models`."""
        self.models = self.build_models(dtype)
        return self.models

    def build_models(self, dtype):
        raise NotImplementedError

    def build(self, seq_length):
        """Creates every variable (the pretrainer builds before the first step): here, the towers'."""
        for model in self.models.values():
            if isinstance(model, (ElectraDiscriminator, ElectraGenerator)):
                build_tower(model, seq_length)

    def mask(self, input_ids, input_mask, step, example_index):
        return mask_tokens(input_ids, input_mask, self.config, self.config.seed, step, example_index)

    def forward(self, masked, step, training):
        raise NotImplementedError

    def losses(self, outputs, num_masked, num_real):
        raise NotImplementedError

    def create_metrics(self):
        return {name: _THRESHOLDED.get(name, keras.metrics.Mean)(name=name) for name in self.metric_names}

    def update_metrics(self, metrics, outputs, parts):
        raise NotImplementedError


# ------------------------------------------------------------------ shared pieces


def token_cross_entropy(logits, ids):
    """-log softmax(logits)[ids], per position."""
    return tf.nn.sparse_softmax_cross_entropy_with_logits(labels=ids, logits=logits)


def weighted_share(values, weights, denominator):
    """sum(values * weights) / denominator: this replica's share of a global weighted mean."""
    return tf.reduce_sum(values * weights) / denominator


def at_positions(values, positions):
    """`values[b, positions[b, p]]`: per-position tensors gathered at the masked positions."""
    return tf.gather(values, positions, batch_dims=1)


def masked_indicator(outputs):
    """float32 [B, S]: 1 at the masked positions (those with a prediction), else 0."""
    positions, weights = outputs["masked_lm_positions"], outputs["masked_lm_weights"]
    zeros = tf.zeros_like(outputs["input_ids"])
    return tf.cast(scatter_at_positions(zeros, positions, tf.ones_like(positions), weights > 0), tf.float32)


def predict_masked(mlm, masked, input_ids, training):
    """A masked LM's logits at `masked`'s positions, reading `input_ids`."""
    return mlm({"input_ids": input_ids, "input_mask": masked["input_mask"], "segment_ids": masked["segment_ids"],
                "masked_lm_positions": masked["masked_lm_positions"]}, training=training,
               dropout_keys=masked["dropout_keys"])


def update_fraction(metric, numerator, denominator):
    # A ratio of sums: weight each batch's ratio by its denominator.
    metric.update_state(numerator / tf.maximum(denominator, 1.0), sample_weight=denominator)


def update_mlm_metrics(metrics, outputs, parts):
    """mlm_loss, mlm_accuracy and masked_fraction of the masked LM whose logits are `outputs["mlm_logits"]`."""
    weights = outputs["masked_lm_weights"]
    predicted = tf.argmax(outputs["mlm_logits"], axis=-1, output_type=tf.int32)
    metrics["mlm_loss"].update_state(parts["mlm_losses"], sample_weight=weights)
    metrics["mlm_accuracy"].update_state(tf.cast(predicted == outputs["masked_lm_ids"], tf.float32),
                                         sample_weight=weights)
    num_real = tf.reduce_sum(tf.cast(outputs["input_mask"], tf.float32))
    update_fraction(metrics["masked_fraction"], tf.reduce_sum(weights), num_real)


def update_rtd_metrics(metrics, labels, logits, losses, weights):
    """rtd_loss, rtd_accuracy, rtd_precision, rtd_recall and rtd_auc over the positions `weights` selects."""
    probabilities = tf.sigmoid(logits)
    predictions = tf.cast(logits > 0, tf.int32)
    metrics["rtd_loss"].update_state(losses, sample_weight=weights)
    metrics["rtd_accuracy"].update_state(tf.cast(predictions == labels, tf.float32), sample_weight=weights)
    for name in ("rtd_precision", "rtd_recall", "rtd_auc"):
        metrics[name].update_state(labels, probabilities, sample_weight=weights)


def embeddings_for(config, dtype):
    """(generator's embeddings, main model's embeddings) for `config.sharing`.

    tied: one set for both; untied: the generator's own, of its hidden width
    (the original's `untied_generator_embeddings`); gdes: the main model
    reads the generator's through `GdesEmbeddings`.
    """
    generator = ElectraEmbeddings(config, "generator", dtype=dtype)
    if config.sharing == "tied":
        return generator, generator
    if config.sharing == "untied":
        return generator, ElectraEmbeddings(config, "discriminator", dtype=dtype)
    return generator, GdesEmbeddings(config, generator, dtype=dtype)


class GeneratorObjective(Objective):
    """A small generator fills the masked positions with its samples; a main model learns from the result.

    The generator is a masked LM of `generator_hidden_size` x the width and
    `generator_layers` x the depth, trained with `gen_weight` x its MLM loss
    on the masked input. Its samples (temperature `temperature_at`, the
    original token excluded under `disallow_correct`) replace every masked
    position, under stop-gradient. Subclasses add the main model
    (`build_main`) and what it learns.
    """

    generator_metrics = ("mlm_loss", "mlm_accuracy", "sampled_accuracy")

    def __init__(self, config, num_train_steps=None, rematerialize=False):
        super().__init__(config, num_train_steps, rematerialize)
        if config.final_temperature:
            self.metric_names = self.metric_names + ("temperature",)

    def build_models(self, dtype):
        generator_embeddings, main_embeddings = embeddings_for(self.config, dtype)
        self.embeddings = generator_embeddings
        self.generator = ElectraGenerator(self.config, generator_embeddings, "generator", self.rematerialize,
                                          dtype=dtype)
        return {"embeddings": generator_embeddings, "generator": self.generator,
                **self.build_main(main_embeddings, dtype)}

    def build_main(self, embeddings, dtype):
        raise NotImplementedError

    def generate(self, masked, step, training, mlm_logits=None):
        """The generator's logits at the masked positions, its samples, and the input with them written in.

        `mlm_logits`, if given, are those logits, computed by the caller.
        """
        if mlm_logits is None:
            mlm_logits = predict_masked(self.generator, masked, masked["masked_ids"], training)
        disallow = masked["masked_lm_ids"] if self.config.disallow_correct else None
        temperature = temperature_at(self.config, step, self.num_train_steps)
        sampled = sample(mlm_logits, self.config, temperature, step, masked["example_index"], disallow)
        corrupted = scatter_at_positions(
            masked["masked_ids"], masked["masked_lm_positions"], sampled, masked["masked_lm_weights"] > 0)
        # A sample equal to the original is "original", not "replaced".
        labels = tf.cast(tf.not_equal(corrupted, masked["input_ids"]), tf.int32)
        outputs = {**masked, "mlm_logits": mlm_logits, "sampled_ids": sampled, "corrupted_ids": corrupted,
                   "rtd_labels": labels}
        if self.config.final_temperature:
            outputs["temperature"] = temperature
        return outputs

    def generator_loss(self, outputs, num_masked):
        """The generator's MLM loss share, and its per-position losses."""
        mlm_losses = token_cross_entropy(outputs["mlm_logits"], outputs["masked_lm_ids"])
        return weighted_share(mlm_losses, outputs["masked_lm_weights"], num_masked), mlm_losses

    def update_generator_metrics(self, metrics, outputs, parts):
        update_mlm_metrics(metrics, outputs, parts)
        metrics["sampled_accuracy"].update_state(
            tf.cast(outputs["sampled_ids"] == outputs["masked_lm_ids"], tf.float32),
            sample_weight=outputs["masked_lm_weights"])
        real = tf.cast(outputs["input_mask"], tf.float32)
        update_fraction(metrics["replaced_fraction"], tf.reduce_sum(tf.cast(outputs["rtd_labels"], tf.float32) * real),
                        tf.reduce_sum(real))
        if "temperature" in metrics:
            metrics["temperature"].update_state(outputs["temperature"])
