"""Replace MLM, the paper's ablation (Clark et al. 2020, section 3.5)."""

import tensorflow as tf

from electra_tf.modeling.models import ElectraGenerator
from electra_tf.pretraining.objectives.base import (
    GeneratorObjective,
    at_positions,
    predict_masked,
    token_cross_entropy,
    weighted_share,
)


class ReplaceMlm(GeneratorObjective):
    """`replace_mlm`: masked LM whose masked positions hold generator samples instead of [MASK].

    The generator is ELECTRA's; the main model, a masked LM of the
    discriminator's size (`main_mlm`), reads the corrupted input and predicts
    the original token at every masked position. Loss: `gen_weight` x the
    generator's MLM + the main model's MLM (mean over masked positions,
    weight 1, as BERT's; the paper gives no weight; `disc_weight` weighs
    detection losses only).

    Args:
        config: the `ElectraConfig`.
        num_train_steps: the run's length (for a temperature schedule).

    Example:

    >>> ReplaceMlm(ElectraConfig.for_size("tiny")).kept
    'main_mlm'
    """

    name = "replace_mlm"
    kept = "main_mlm"
    metric_names = ("loss", "mlm_loss", "mlm_accuracy", "sampled_accuracy", "main_loss", "main_accuracy",
                    "main_replaced_accuracy", "masked_fraction", "replaced_fraction")
    metric_groups = ("mlm", "main")
    progress_metric = ("main_accuracy", "main_acc")

    def build_main(self, embeddings, dtype):
        self.main_mlm = ElectraGenerator(self.config, embeddings, "discriminator", self.rematerialize, name="main_mlm",
                                         dtype=dtype)
        return {"main_mlm": self.main_mlm}

    def forward(self, masked, step, training):
        outputs = self.generate(masked, step, training)
        return {**outputs, "main_logits": predict_masked(self.main_mlm, masked, outputs["corrupted_ids"], training)}

    def losses(self, outputs, num_masked, num_real):
        mlm_loss, mlm_losses = self.generator_loss(outputs, num_masked)
        main_losses = token_cross_entropy(outputs["main_logits"], outputs["masked_lm_ids"])
        main_loss = weighted_share(main_losses, outputs["masked_lm_weights"], num_masked)
        return self.config.gen_weight * mlm_loss + main_loss, {"mlm_losses": mlm_losses, "main_losses": main_losses}

    def update_metrics(self, metrics, outputs, parts):
        self.update_generator_metrics(metrics, outputs, parts)
        weights = outputs["masked_lm_weights"]
        correct = tf.cast(tf.argmax(outputs["main_logits"], -1, output_type=tf.int32) == outputs["masked_lm_ids"],
                          tf.float32)
        replaced = tf.cast(at_positions(outputs["rtd_labels"], outputs["masked_lm_positions"]), tf.float32)
        metrics["main_loss"].update_state(parts["main_losses"], sample_weight=weights)
        metrics["main_accuracy"].update_state(correct, sample_weight=weights)
        metrics["main_replaced_accuracy"].update_state(correct, sample_weight=weights * replaced)
