"""All-Tokens MLM with the copy mechanism, the paper's ablation (Clark et al. 2020, section 3.5)."""

import tensorflow as tf

from electra_tf.modeling.heads import GeneratorHead
from electra_tf.modeling.models import ElectraDiscriminator
from electra_tf.pretraining.objectives.base import GeneratorObjective, at_positions, update_fraction, weighted_share


def copy_mixture_log_prob(replaced_logits, vocab_logits, input_ids, target_ids):
    """log p(target) under the copy mechanism, per position.

    p(w) = D * 1[w = input] + (1 - D) * softmax(vocab_logits)(w), with the
    copy probability D = sigmoid(-replaced_logits): the head's logit says
    "not copied" (positive = replaced, like a discriminator's). Computed in
    log space: log D = -softplus(r), log(1 - D) = -softplus(-r).

    Args:
        replaced_logits: float32 `[B, S]`.
        vocab_logits: float32 `[B, S, V]`.
        input_ids, target_ids: int32 `[B, S]`: the token shown and the token to predict.

    Example:

    >>> vocab = tf.math.log([[[0.5, 0.25, 0.25]]])  # a softmax of (0.5, 0.25, 0.25)
    >>> p = lambda r, shown, target: float(tf.exp(copy_mixture_log_prob(
    ...     tf.constant([[r]]), vocab, tf.constant([[shown]]), tf.constant([[target]]))[0, 0]))
    >>> round(p(0.0, 1, 1), 4), round(p(0.0, 1, 0), 4)  # D = 0.5: 0.5 + 0.5 * 0.25, and 0.5 * 0.5
    (0.625, 0.25)
    """
    log_copy = -tf.nn.softplus(replaced_logits)
    log_not_copy = -tf.nn.softplus(-replaced_logits)
    log_vocab = -tf.nn.sparse_softmax_cross_entropy_with_logits(labels=target_ids, logits=vocab_logits)
    from_vocab = log_not_copy + log_vocab
    with_copy = tf.reduce_logsumexp(tf.stack([log_copy, from_vocab], axis=-1), axis=-1)
    return tf.where(tf.equal(input_ids, target_ids), with_copy, from_vocab)


def copy_mixture_prediction(replaced_logits, vocab_logits, input_ids):
    """The most probable token of the copy mixture: the input token, or the softmax's best."""
    copy = tf.sigmoid(-replaced_logits)
    log_normaliser = tf.reduce_logsumexp(vocab_logits, axis=-1)
    best = tf.argmax(vocab_logits, axis=-1, output_type=tf.int32)
    best_p = tf.exp(tf.reduce_max(vocab_logits, axis=-1) - log_normaliser)
    input_p = tf.exp(tf.gather(vocab_logits, input_ids, batch_dims=2) - log_normaliser)
    keeps = copy + (1 - copy) * input_p >= (1 - copy) * best_p
    return tf.where(keeps, input_ids, best)


class AllTokensMlm(GeneratorObjective):
    """`all_tokens_mlm`: predict the identity of every input token, with a copy mechanism.

    The corruption is Replace MLM's (ELECTRA's generator fills the masked
    positions). The main model is a discriminator-sized encoder with two
    heads: a vocabulary softmax at every position (`all_tokens_head`, tied
    to its word embeddings) and a sigmoid per token giving the copy
    probability D, which weighs "keep the input token" against the softmax
    (`copy_mixture_log_prob`). Without the generator's replacements the
    model could copy everywhere but at [MASK]; with them it must judge every
    token. Loss: `gen_weight` x the generator's MLM - mean over real tokens of
    log p(original token) (weight 1; the paper states neither weights nor
    normalisation, and gives D no supervision of its own).

    The encoder and the copy head form an `ElectraDiscriminator` (the head's
    logit says "not copied", i.e. replaced), so the main model exports,
    converts and fine-tunes as a discriminator; its exported
    rtd_probabilities are 1 - D.

    Args:
        config: the `ElectraConfig`.
        num_train_steps: the run's length (for a temperature schedule).

    Example:

    >>> AllTokensMlm(ElectraConfig.for_size("tiny")).kept
    'discriminator'
    """

    name = "all_tokens_mlm"
    metric_names = ("loss", "mlm_loss", "mlm_accuracy", "sampled_accuracy", "main_loss", "main_accuracy",
                    "main_masked_accuracy", "main_copy_probability", "masked_fraction", "replaced_fraction")
    metric_groups = ("mlm", "main")
    progress_metric = ("main_accuracy", "main_acc")

    def build_main(self, embeddings, dtype):
        self.discriminator = ElectraDiscriminator(self.config, embeddings, self.rematerialize, dtype=dtype)
        self.all_tokens_head = GeneratorHead(self.config, embeddings.word_embeddings, name="all_tokens_predictions",
                                             dtype=dtype)
        return {"discriminator": self.discriminator, "all_tokens_head": self.all_tokens_head}

    def build(self, seq_length):
        super().build(seq_length)
        self.all_tokens_head.build((None, seq_length, self.config.hidden_size))

    def forward(self, masked, step, training):
        outputs = self.generate(masked, step, training)
        main = self.discriminator({"input_ids": outputs["corrupted_ids"], "input_mask": masked["input_mask"],
                                   "segment_ids": masked["segment_ids"]},
                                  training=training, dropout_keys=masked["dropout_keys"])
        hidden = main["sequence_output"]
        every_position = tf.broadcast_to(tf.range(tf.shape(hidden)[1]), tf.shape(hidden)[:2])
        return {**outputs, "rtd_logits": main["logits"], "main_logits": self.all_tokens_head(hidden, every_position)}

    def losses(self, outputs, num_masked, num_real):
        mlm_loss, mlm_losses = self.generator_loss(outputs, num_masked)
        main_losses = -copy_mixture_log_prob(outputs["rtd_logits"], outputs["main_logits"], outputs["corrupted_ids"],
                                             outputs["input_ids"])
        main_loss = weighted_share(main_losses, tf.cast(outputs["input_mask"], tf.float32), num_real)
        return self.config.gen_weight * mlm_loss + main_loss, {"mlm_losses": mlm_losses, "main_losses": main_losses}

    def update_metrics(self, metrics, outputs, parts):
        self.update_generator_metrics(metrics, outputs, parts)
        real = tf.cast(outputs["input_mask"], tf.float32)
        predicted = copy_mixture_prediction(outputs["rtd_logits"], outputs["main_logits"], outputs["corrupted_ids"])
        correct = tf.cast(predicted == outputs["input_ids"], tf.float32)
        metrics["main_loss"].update_state(parts["main_losses"], sample_weight=real)
        metrics["main_accuracy"].update_state(correct, sample_weight=real)
        metrics["main_masked_accuracy"].update_state(at_positions(correct, outputs["masked_lm_positions"]),
                                                     sample_weight=outputs["masked_lm_weights"])
        update_fraction(metrics["main_copy_probability"], tf.reduce_sum(tf.sigmoid(-outputs["rtd_logits"]) * real),
                        tf.reduce_sum(real))
