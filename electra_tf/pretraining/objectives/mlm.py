"""The BERT-style masked-LM baseline (BERT in the paper's Table 5)."""

from electra_tf.modeling.embeddings import ElectraEmbeddings
from electra_tf.modeling.models import ElectraGenerator
from electra_tf.pretraining.objectives.base import (
    Objective,
    predict_masked,
    token_cross_entropy,
    update_mlm_metrics,
    weighted_share,
)


class Mlm(Objective):
    """`mlm`: one masked LM of the discriminator's size, predicting the masked tokens; no generator.

    The masking is ELECTRA's (85% [MASK], 15% kept), so the baseline differs
    from ELECTRA in the objective only. Loss: the MLM's cross-entropy, mean
    over masked positions (no weight). The model is held as `generator`, the
    name its checkpoints have always used.

    Args:
        config: the `ElectraConfig`.
        num_train_steps: unused (nothing is scheduled).

    Example:

    >>> Mlm(ElectraConfig.for_size("tiny")).kept
    'generator'
    """

    name = "mlm"
    kept = "generator"
    metric_names = ("loss", "mlm_loss", "mlm_accuracy", "masked_fraction")
    metric_groups = ("mlm",)

    def build_models(self, dtype):
        self.embeddings = ElectraEmbeddings(self.config, dtype=dtype)
        self.generator = ElectraGenerator(self.config, self.embeddings, "discriminator", self.rematerialize,
                                          dtype=dtype)
        self.discriminator = None
        return {"embeddings": self.embeddings, "generator": self.generator}

    def forward(self, masked, step, training):
        mlm_logits = predict_masked(self.generator, masked, masked["masked_ids"], training)
        return {**masked, "mlm_logits": mlm_logits}

    def losses(self, outputs, num_masked, num_real):
        mlm_losses = token_cross_entropy(outputs["mlm_logits"], outputs["masked_lm_ids"])
        return weighted_share(mlm_losses, outputs["masked_lm_weights"], num_masked), {"mlm_losses": mlm_losses}

    def update_metrics(self, metrics, outputs, parts):
        update_mlm_metrics(metrics, outputs, parts)
