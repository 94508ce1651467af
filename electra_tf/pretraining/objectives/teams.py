"""TEAMS: ELECTRA with multi-word selection, task-specific layers and partial layer sharing (Shen et al. 2021)."""

import tensorflow as tf

from electra_tf.modeling.models import ElectraDiscriminator, ElectraGenerator, build_tower
from electra_tf.pretraining.objectives.base import (
    at_positions,
    embeddings_for,
    update_rtd_metrics,
    weighted_share,
)
from electra_tf.pretraining.objectives.selection import (
    SelectionHead,
    SelectionObjective,
    TaskLayers,
    draw_candidates,
    update_selection_metrics,
)


class Teams(SelectionObjective):
    """`teams`: replaced-token detection from an intermediate layer, and multi-word selection at the masked positions.

    "Training ELECTRA Augmented with Multi-word Selection" (Shen et al.,
    Findings of ACL 2021, arXiv 2106.00139), as TF Model Garden's
    `official/projects/teams/` builds it:

    - the generator is ELECTRA's (MLM at the masked positions, its samples
      written in under stop-gradient); its bottom `shared_generator_layers`
      share of layers *are* the discriminator's bottom layers (and, with
      tied embeddings, the whole embedding set and projection);
    - the discriminator's `num_task_agnostic_layers` bottom layers feed
      `rtd_layers`, its detection task's own layers, then its head
      (dense, GELU, dense(1)): replaced or original, every real token;
    - its last layer feeds `mws_head`: at each masked position, a choice
      among `candidate_size` tokens, the original (index 0) and others the
      generator proposes (drawn without replacement, never the original nor
      a special token), scored against the discriminator's word embeddings.

    Loss: `gen_weight` x MLM + `teams_rtd_weight` x detection (mean over real
    tokens) + `mws_weight` x selection cross-entropy (mean over masked
    positions), Model Garden's 1, 5 and 2. The kept model is the
    discriminator's encoder (all its layers, Model Garden's `encoder`);
    `rtd_layers`, the detection head and `mws_head` are pre-training only.

    Args:
        config: the `ElectraConfig`.
        num_train_steps: the run's length (for a temperature schedule).

    Example:

    >>> config = ElectraConfig.for_size("tiny", objective="teams", generator_hidden_size=1.0)
    >>> objective = Teams(config)
    >>> objective.candidate_size, objective.export_name()
    (5, 'encoder')
    """

    name = "teams"
    metric_names = ("loss", "mlm_loss", "mlm_accuracy", "sampled_accuracy", "rtd_loss", "rtd_accuracy",
                    "rtd_precision", "rtd_recall", "rtd_auc", "mws_loss", "mws_accuracy", "masked_fraction",
                    "replaced_fraction")
    metric_groups = ("mlm", "rtd", "mws")
    progress_metric = ("mws_accuracy", "mws_acc")
    pretraining_only = "the detection task's own layers and head (rtd_layers, discriminator_predictions) and mws_head"
    default_candidate_size = 5

    def build_models(self, dtype):
        config = self.config
        generator_embeddings, main_embeddings = embeddings_for(config, dtype)
        self.embeddings = generator_embeddings
        self.discriminator = ElectraDiscriminator(config, main_embeddings, self.rematerialize, dtype=dtype)
        self.generator = ElectraGenerator(config, generator_embeddings, "generator", self.rematerialize, dtype=dtype)
        self.generator.encoder.share_bottom(self.discriminator.encoder, config.shared_generator_blocks,
                                            projection=generator_embeddings is main_embeddings)
        self.rtd_layers = TaskLayers(config, dtype=dtype)
        self.mws_head = SelectionHead(config, name="mws_head", dtype=dtype)
        return {"embeddings": generator_embeddings, "generator": self.generator, "discriminator": self.discriminator,
                "rtd_layers": self.rtd_layers, "mws_head": self.mws_head}

    def build(self, seq_length):
        build_tower(self.discriminator, seq_length)  # first, so the shared layers are named as its own
        super().build(seq_length)
        hidden = (None, seq_length, self.config.hidden_size)
        self.rtd_layers.build(hidden)
        self.mws_head.build(hidden)

    def forward(self, masked, step, training):
        outputs = self.generate(masked, step, training)
        candidates = draw_candidates(outputs["mlm_logits"], masked["masked_lm_ids"], self.candidate_size - 1,
                                     self.config, step, masked["example_index"], self.num_train_steps)
        layers = self.discriminator.encoder.layer_outputs(outputs["corrupted_ids"], masked["segment_ids"],
                                                          masked["input_mask"], training=training,
                                                          dropout_keys=masked["dropout_keys"])
        rtd_hidden = self.rtd_layers(layers[self.config.task_agnostic_layers - 1], masked["input_mask"],
                                     training=training, dropout_keys=masked["dropout_keys"])
        table = self.discriminator.embeddings.word_table()
        mws_logits = self.mws_head(at_positions(layers[-1], masked["masked_lm_positions"]),
                                   tf.gather(table, candidates))
        return {**outputs, "rtd_logits": self.discriminator.head(rtd_hidden), "candidate_ids": candidates,
                "candidate_positions": masked["masked_lm_positions"], "candidate_weights": masked["masked_lm_weights"],
                "candidate_logits": mws_logits, "candidate_labels": tf.zeros_like(candidates[..., 0])}

    def losses(self, outputs, num_masked, num_real):
        mlm_loss, mlm_losses = self.generator_loss(outputs, num_masked)
        rtd_losses = tf.nn.sigmoid_cross_entropy_with_logits(
            labels=tf.cast(outputs["rtd_labels"], tf.float32), logits=outputs["rtd_logits"])
        rtd_loss = weighted_share(rtd_losses, tf.cast(outputs["input_mask"], tf.float32), num_real)
        mws_losses = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=outputs["candidate_labels"],
                                                                    logits=outputs["candidate_logits"])
        mws_loss = weighted_share(mws_losses, outputs["masked_lm_weights"], num_masked)
        config = self.config
        total = config.gen_weight * mlm_loss + config.teams_rtd_weight * rtd_loss + config.mws_weight * mws_loss
        return total, {"mlm_losses": mlm_losses, "rtd_losses": rtd_losses, "mws_losses": mws_losses}

    def update_metrics(self, metrics, outputs, parts):
        self.update_generator_metrics(metrics, outputs, parts)
        update_rtd_metrics(metrics, outputs["rtd_labels"], outputs["rtd_logits"], parts["rtd_losses"],
                           tf.cast(outputs["input_mask"], tf.float32))
        update_selection_metrics(metrics, "mws", outputs["candidate_logits"], outputs["candidate_labels"],
                                 parts["mws_losses"], outputs["masked_lm_weights"])
