"""MC-BERT: a multi-choice cloze test with a reject option, its candidates from a meta controller (Xu et al. 2020)."""

import keras
import tensorflow as tf

from electra_tf.modeling.config import BuiltFromConfig
from electra_tf.modeling.embeddings import initializer
from electra_tf.modeling.models import ElectraGenerator
from electra_tf.pretraining.objectives.base import at_positions, predict_masked, weighted_share
from electra_tf.pretraining.objectives.selection import (
    SelectionObjective,
    candidate_logits,
    draw_candidates,
    special_ids,
    update_selection_metrics,
)

# Where a candidate set holds the reject option ("the input token is the original") and the original.
REJECT, ORIGINAL = 0, 1


@keras.saving.register_keras_serializable(package="electra_tf")
class RejectOption(BuiltFromConfig, keras.layers.Layer):
    """The reject option's embedding and bias: a candidate that is no token of the vocabulary.

    MC-BERT's code adds a `<neither>` token to its dictionary; a vocabulary
    given by the user has none, so the option has an embedding of its own,
    scored like a token's (embedding . transformed state + bias).

    Args:
        config: the `ElectraConfig` (embedding size, initializer range).
        **kwargs: `keras.layers.Layer` arguments (`name`, `dtype`).

    Example:

    >>> option = RejectOption(ElectraConfig.for_size("tiny"))
    >>> option.build()
    >>> tuple(option.embedding.shape), tuple(option.bias.shape)
    ((32,), ())
    """

    def __init__(self, config, **kwargs):
        kwargs.setdefault("name", "reject_option")
        super().__init__(**kwargs)
        self.config = config

    def build(self, input_shape=None):
        self.embedding = self.add_weight(shape=(self.config.embedding_size,), initializer=initializer(self.config),
                                         name="embedding")
        self.bias = self.add_weight(shape=(), initializer="zeros", name="bias")
        self.built = True


class McBert(SelectionObjective):
    """`mc_bert`: at every token, which candidate is the original, or is the input token itself the original?

    "MC-BERT: Efficient Language Pre-Training via a Meta Controller" (Xu et
    al. 2020, arXiv 2006.05744), after its fairseq code (MC-BERT/MC-BERT):

    - the meta controller is ELECTRA's generator (`generator`): an MLM,
      trained at the masked positions, whose samples replace them under
      stop-gradient; its softmax is taken at every position, to propose
      candidates there;
    - the main model (`main_mlm`, the discriminator's size) reads the
      corrupted input and, at every real token that is not a special one,
      chooses among `candidate_size` options: the reject option (index 0:
      "this token is the original"), the original token (index 1), and
      others the meta controller proposes (drawn without replacement, never
      the original nor a special token). The answer is the original where
      the token was replaced, the reject option elsewhere;
    - its scores are its MLM head's transform (dense, GELU, LayerNorm) . the
      candidate's word embedding + the candidate's output bias.

    Loss: `gen_weight` x MLM + `disc_weight` (the code's lambda, 50) x the
    choice's cross-entropy summed over the scored tokens / the real tokens.
    The kept model is `main_mlm`'s encoder; its head and `reject_option` are
    pre-training only.

    Args:
        config: the `ElectraConfig`.
        num_train_steps: the run's length (for a temperature schedule).

    Example:

    >>> objective = McBert(ElectraConfig.for_size("tiny", objective="mc_bert"))
    >>> objective.candidate_size, objective.kept, objective.export_name()
    (10, 'main_mlm', 'encoder')
    """

    name = "mc_bert"
    kept = "main_mlm"
    metric_names = ("loss", "mlm_loss", "mlm_accuracy", "sampled_accuracy", "mc_loss", "mc_accuracy",
                    "mc_replaced_accuracy", "masked_fraction", "replaced_fraction")
    metric_groups = ("mlm", "mc")
    progress_metric = ("mc_accuracy", "mc_acc")
    pretraining_only = "the multi-choice head (main_mlm's head and reject_option)"
    default_candidate_size = 10

    def build_main(self, embeddings, dtype):
        self.main_mlm = ElectraGenerator(self.config, embeddings, "discriminator", self.rematerialize, name="main_mlm",
                                         dtype=dtype)
        self.reject_option = RejectOption(self.config, dtype=dtype)
        return {"main_mlm": self.main_mlm, "reject_option": self.reject_option}

    def build(self, seq_length):
        super().build(seq_length)
        self.reject_option.build()

    def forward(self, masked, step, training):
        input_ids = masked["input_ids"]
        every_position = tf.broadcast_to(tf.range(tf.shape(input_ids)[1]), tf.shape(input_ids))
        proposals = predict_masked(self.generator, {**masked, "masked_lm_positions": every_position},
                                   masked["masked_ids"], training)
        outputs = self.generate(masked, step, training,
                                mlm_logits=at_positions(proposals, masked["masked_lm_positions"]))
        drawn = draw_candidates(proposals, input_ids, self.candidate_size - 2, self.config, step,
                                masked["example_index"], self.num_train_steps)
        candidates = tf.concat([-tf.ones_like(drawn[..., :1]), drawn], axis=-1)  # the reject option is id -1
        scored = tf.cast(masked["input_mask"], tf.bool)
        for special in special_ids(self.config):
            scored &= tf.not_equal(input_ids, special)

        hidden = self.main_mlm.encoder(outputs["corrupted_ids"], masked["segment_ids"], masked["input_mask"],
                                       training=training, dropout_keys=masked["dropout_keys"])
        head = self.main_mlm.head
        table = self.main_mlm.embeddings.word_table()
        words = tf.maximum(candidates, 0)
        is_reject = (candidates < 0)[..., None]
        embeddings = tf.where(is_reject, tf.cast(self.reject_option.embedding, table.dtype), tf.gather(table, words))
        bias = tf.where(candidates < 0, self.reject_option.bias, tf.gather(head.output_bias, words))
        logits = candidate_logits(head.layer_norm(head.dense(hidden)), embeddings, bias)
        labels = tf.where(outputs["rtd_labels"] > 0, ORIGINAL, REJECT)
        # log P(not rejected) - log P(rejected): "replaced" as the main model sees it (the text example's column).
        replaced_logits = tf.reduce_logsumexp(logits[..., 1:], axis=-1) - logits[..., REJECT]
        return {**outputs, "rtd_logits": replaced_logits, "candidate_ids": candidates,
                "candidate_positions": every_position, "candidate_weights": tf.cast(scored, tf.float32),
                "candidate_logits": logits, "candidate_labels": labels}

    def losses(self, outputs, num_masked, num_real):
        mlm_loss, mlm_losses = self.generator_loss(outputs, num_masked)
        mc_losses = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=outputs["candidate_labels"],
                                                                   logits=outputs["candidate_logits"])
        # Over the real tokens, as the code's mean over non-padding (where [CLS] and [SEP] are trivially
        # "reject"); they are not scored here, so that no set holds a special token.
        mc_loss = weighted_share(mc_losses, outputs["candidate_weights"], num_real)
        total = self.config.gen_weight * mlm_loss + self.config.disc_weight * mc_loss
        return total, {"mlm_losses": mlm_losses, "mc_losses": mc_losses}

    def update_metrics(self, metrics, outputs, parts):
        self.update_generator_metrics(metrics, outputs, parts)
        weights = outputs["candidate_weights"]
        update_selection_metrics(metrics, "mc", outputs["candidate_logits"], outputs["candidate_labels"],
                                 parts["mc_losses"], weights)
        predicted = tf.argmax(outputs["candidate_logits"], axis=-1, output_type=tf.int32)
        replaced = tf.cast(outputs["rtd_labels"], tf.float32)
        metrics["mc_replaced_accuracy"].update_state(tf.cast(predicted == ORIGINAL, tf.float32),
                                                     sample_weight=weights * replaced)
