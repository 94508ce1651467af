"""ELECTRA's replaced-token detection (Clark et al. 2020): on every token, or on the masked ones (the ablation)."""

import tensorflow as tf

from electra_tf.modeling.models import ElectraDiscriminator
from electra_tf.pretraining.objectives.base import (
    GeneratorObjective,
    masked_indicator,
    update_rtd_metrics,
    weighted_share,
)


class Electra(GeneratorObjective):
    """`electra`: the discriminator tells, for every real token, whether the generator replaced it.

    Loss: `gen_weight` x MLM (mean over masked positions) + `disc_weight` x
    sigmoid cross-entropy (mean over real tokens), the original's. A sample
    equal to the original token is labelled original.

    Args:
        config: the `ElectraConfig`.
        num_train_steps: the run's length (for a temperature schedule).

    Example:

    >>> Electra(ElectraConfig.for_size("tiny")).metric_names[:4]
    ('loss', 'mlm_loss', 'mlm_accuracy', 'sampled_accuracy')
    """

    name = "electra"
    metric_names = ("loss", "mlm_loss", "mlm_accuracy", "sampled_accuracy", "rtd_loss", "rtd_accuracy",
                    "rtd_precision", "rtd_recall", "rtd_auc", "masked_fraction", "replaced_fraction")
    metric_groups = ("mlm", "rtd")
    progress_metric = ("rtd_accuracy", "rtd_acc")

    def build_main(self, embeddings, dtype):
        self.discriminator = ElectraDiscriminator(self.config, embeddings, self.rematerialize, dtype=dtype)
        return {"discriminator": self.discriminator}

    def forward(self, masked, step, training):
        outputs = self.generate(masked, step, training)
        disc = self.discriminator({"input_ids": outputs["corrupted_ids"], "input_mask": masked["input_mask"],
                                   "segment_ids": masked["segment_ids"]},
                                  training=training, dropout_keys=masked["dropout_keys"])
        return {**outputs, "rtd_logits": disc["logits"]}

    def detection_weights(self, outputs):
        """Where the detection loss is taken: every real token."""
        return tf.cast(outputs["input_mask"], tf.float32)

    def detection_count(self, num_masked, num_real):
        """The global number of positions `detection_weights` selects."""
        return num_real

    def losses(self, outputs, num_masked, num_real):
        mlm_loss, mlm_losses = self.generator_loss(outputs, num_masked)
        rtd_losses = tf.nn.sigmoid_cross_entropy_with_logits(
            labels=tf.cast(outputs["rtd_labels"], tf.float32), logits=outputs["rtd_logits"])
        rtd_loss = weighted_share(rtd_losses, self.detection_weights(outputs),
                                  self.detection_count(num_masked, num_real))
        total = self.config.gen_weight * mlm_loss + self.config.disc_weight * rtd_loss
        return total, {"mlm_losses": mlm_losses, "rtd_losses": rtd_losses}

    def update_metrics(self, metrics, outputs, parts):
        self.update_generator_metrics(metrics, outputs, parts)
        update_rtd_metrics(metrics, outputs["rtd_labels"], outputs["rtd_logits"], parts["rtd_losses"],
                           self.detection_weights(outputs))


class Electra15(Electra):
    """`electra_15`: ELECTRA with the detection loss on the masked positions only (the paper's "ELECTRA 15%").

    The paper (section 3.5) keeps everything else as in ELECTRA; it does not
    say how the loss is normalised. Here it is the mean over masked
    positions, as the original's code computes its mean over the positions
    its weights select, times the same `disc_weight`. The rtd_* metrics are
    over the masked positions too.

    Args:
        config: the `ElectraConfig`.
        num_train_steps: the run's length (for a temperature schedule).

    Example:

    >>> Electra15(ElectraConfig.for_size("tiny")).name
    'electra_15'
    """

    name = "electra_15"

    def detection_weights(self, outputs):
        return masked_indicator(outputs)

    def detection_count(self, num_masked, num_real):
        return num_masked
