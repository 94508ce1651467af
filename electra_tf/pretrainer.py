"""`ElectraPretrainer`: both towers and the replaced-token-detection objective."""

import keras
import tensorflow as tf

from electra_tf.config import ElectraConfig
from electra_tf.embeddings import ElectraEmbeddings
from electra_tf.masking import mask_tokens, scatter_at_positions
from electra_tf.models import ElectraDiscriminator, ElectraGenerator
from electra_tf.sampling import gumbel_sample

ELECTRA_METRICS = (
    "loss", "mlm_loss", "mlm_accuracy", "sampled_accuracy", "rtd_loss", "rtd_accuracy",
    "rtd_precision", "rtd_recall", "rtd_auc", "masked_fraction", "replaced_fraction",
)
MLM_METRICS = ("loss", "mlm_loss", "mlm_accuracy", "masked_fraction")


def _global_sum(value):
    """Sum over all replicas (identity outside a replica function)."""
    context = tf.distribute.get_replica_context()
    return value if context is None else context.all_reduce(tf.distribute.ReduceOp.SUM, value)


def _example_index(batch_size, example_offset):
    """Each example's position in the global batch, whatever the replica split."""
    context = tf.distribute.get_replica_context()
    replica = 0 if context is None else tf.cast(context.replica_id_in_sync_group, tf.int32)
    return example_offset + replica * batch_size + tf.range(batch_size)


@keras.saving.register_keras_serializable(package="electra_tf")
class ElectraPretrainer(keras.Model):
    """Generator + discriminator sharing embeddings, trained by `train_step`.

    `train_step(batch)` takes int32 `[batch, seq]` `input_ids`, `input_mask`,
    `segment_ids`, masks them, fills the masks with generator samples, and
    minimises `gen_weight * MLM + disc_weight * RTD`. Masking and sampling
    are keyed by (config.seed, optimizer step, position in the global batch),
    so they are reproducible and independent of the replica layout.
    Gradients are all-reduced here, before the optimizer, so clipping sees
    the global gradient norm (Keras clips per replica otherwise).

    With `objective="mlm"` it is the BERT-style baseline: one masked-LM of the
    discriminator's size, same masking, no discriminator.

    Example:

    >>> pretrainer = ElectraPretrainer(ElectraConfig.for_size("tiny"))
    >>> pretrainer.compile(optimizer=create_optimizer())
    >>> ids = np.random.randint(1000, 2000, (8, 32)).astype("int32")
    >>> batch = {"input_ids": ids, "input_mask": np.ones_like(ids), "segment_ids": 0 * ids}
    >>> metrics = pretrainer.train_step(batch)
    """

    def __init__(self, config, **kwargs):
        kwargs.setdefault("name", "electra_pretrainer")
        super().__init__(**kwargs)
        self.config = config
        self.embeddings = ElectraEmbeddings(config, dtype=self.dtype_policy)
        if config.objective == "electra":
            self.generator = ElectraGenerator(config, self.embeddings, "generator", dtype=self.dtype_policy)
            self.discriminator = ElectraDiscriminator(config, self.embeddings, dtype=self.dtype_policy)
        else:
            self.generator = ElectraGenerator(config, self.embeddings, "discriminator", dtype=self.dtype_policy)
            self.discriminator = None
        thresholded = {"rtd_precision": keras.metrics.Precision, "rtd_recall": keras.metrics.Recall,
                       "rtd_auc": keras.metrics.AUC}
        names = ELECTRA_METRICS if config.objective == "electra" else MLM_METRICS
        self._metrics_by_name = {name: thresholded.get(name, keras.metrics.Mean)(name=name) for name in names}
        # Global norm of the unclipped gradient, for logging; not a train_step metric.
        self.grad_norm_tracker = keras.metrics.Mean(name="grad_norm")
        self.build()

    @property
    def encoder(self):
        """The tower to fine-tune and export: the discriminator's (the MLM's for "mlm")."""
        return (self.discriminator or self.generator).encoder

    @property
    def metrics(self):
        return list(self._metrics_by_name.values())

    def build(self, input_shape=None):
        if self.built:
            return
        seq = self.config.max_seq_length
        self.generator.encoder.build((None, seq))
        self.generator.head.build((None, None, self.generator.encoder.hidden_size))
        if self.discriminator is not None:
            self.discriminator.encoder.build((None, seq))
            self.discriminator.head.build((None, seq, self.config.hidden_size))
            self.discriminator.built = True
        self.generator.built = True
        self.built = True

    def compile(self, optimizer="adam", **kwargs):
        super().compile(optimizer=optimizer, **kwargs)
        inner = getattr(self.optimizer, "inner_optimizer", self.optimizer)
        # train_step all-reduces gradients itself; a second reduction in the
        # optimizer would multiply them by the number of replicas.
        inner._all_reduce_sum_gradients = lambda grads_and_vars: grads_and_vars
        # Slot variables must exist before the first distributed step: they
        # cannot be created inside a replica function.
        self.optimizer.build(self.trainable_variables)

    def call(self, inputs, training=False, step=0, example_offset=0):
        """The full pre-training forward pass; returns the tensors of every stage.

        `step` and `example_offset` key the randomness: the same batch at the
        same step is masked and sampled identically.
        """
        config = self.config
        input_ids = tf.cast(inputs["input_ids"], tf.int32)
        input_mask = tf.cast(inputs["input_mask"], tf.int32)
        segment_ids = tf.cast(inputs["segment_ids"], tf.int32)
        example_index = _example_index(tf.shape(input_ids)[0], example_offset)
        masked = mask_tokens(input_ids, input_mask, config, config.seed, step, example_index)
        mlm_logits = self.generator({
            "input_ids": masked["masked_ids"], "input_mask": input_mask, "segment_ids": segment_ids,
            "masked_lm_positions": masked["masked_lm_positions"]}, training=training)
        outputs = {**masked, "input_ids": input_ids, "input_mask": input_mask, "mlm_logits": mlm_logits}
        if self.discriminator is None:
            return outputs
        sampled = gumbel_sample(mlm_logits, config.temperature, config.seed, step, example_index)
        corrupted = scatter_at_positions(
            masked["masked_ids"], masked["masked_lm_positions"], sampled, masked["masked_lm_weights"] > 0)
        # A sample equal to the original is "original", not "replaced".
        labels = tf.cast(tf.not_equal(corrupted, input_ids), tf.int32)
        disc = self.discriminator({"input_ids": corrupted, "input_mask": input_mask, "segment_ids": segment_ids},
                                  training=training)
        return {**outputs, "sampled_ids": sampled, "corrupted_ids": corrupted, "rtd_labels": labels,
                "rtd_logits": disc["logits"]}

    def _compute_losses(self, outputs):
        """Per-replica loss that sums to the global loss over replicas, and the pieces."""
        weights = outputs["masked_lm_weights"]
        mlm_losses = tf.nn.sparse_softmax_cross_entropy_with_logits(
            labels=outputs["masked_lm_ids"], logits=outputs["mlm_logits"])
        num_masked = _global_sum(tf.reduce_sum(weights))
        mlm_loss = tf.reduce_sum(mlm_losses * weights) / tf.maximum(num_masked, 1.0)
        parts = {"mlm_losses": mlm_losses}
        if self.discriminator is None:
            return mlm_loss, parts
        real = tf.cast(outputs["input_mask"], tf.float32)
        rtd_losses = tf.nn.sigmoid_cross_entropy_with_logits(
            labels=tf.cast(outputs["rtd_labels"], tf.float32), logits=outputs["rtd_logits"])
        num_real = _global_sum(tf.reduce_sum(real))
        rtd_loss = tf.reduce_sum(rtd_losses * real) / tf.maximum(num_real, 1.0)
        parts["rtd_losses"] = rtd_losses
        return self.config.gen_weight * mlm_loss + self.config.disc_weight * rtd_loss, parts

    def train_step(self, data, example_offset=0):
        """One optimizer update on `data`; returns the running metrics.

        `example_offset` is where this batch starts in the global batch
        (non-zero only for micro-batches of an accumulated batch).
        """
        step = self.optimizer.iterations
        with tf.GradientTape() as tape:
            outputs = self(data, training=True, step=step, example_offset=example_offset)
            loss, parts = self._compute_losses(outputs)
            scaled_loss = self.optimizer.scale_loss(loss)
        variables = self.trainable_variables
        grads = tape.gradient(scaled_loss, variables)
        grads = [tf.zeros_like(v) if g is None else g for g, v in zip(grads, variables)]
        grads = _global_sum(grads)
        self.grad_norm_tracker.update_state(tf.linalg.global_norm(grads) / tf.cast(self._loss_scale(), tf.float32))
        self.optimizer.apply_gradients(zip(grads, variables))
        self._update_metrics(outputs, parts, _global_sum(loss))
        return self.get_metrics_result()

    def test_step(self, data):
        outputs = self(data, training=False, step=0)
        loss, parts = self._compute_losses(outputs)
        self._update_metrics(outputs, parts, _global_sum(loss))
        return self.get_metrics_result()

    def _loss_scale(self):
        return getattr(self.optimizer, "dynamic_scale", 1.0) if hasattr(self.optimizer, "inner_optimizer") else 1.0

    def _update_metrics(self, outputs, parts, global_loss):
        m = self._metrics_by_name
        weights = outputs["masked_lm_weights"]
        real = tf.cast(outputs["input_mask"], tf.float32)
        num_real = tf.reduce_sum(real)
        original = outputs["masked_lm_ids"]
        predicted = tf.argmax(outputs["mlm_logits"], axis=-1, output_type=tf.int32)
        m["loss"].update_state(global_loss)
        m["mlm_loss"].update_state(parts["mlm_losses"], sample_weight=weights)
        m["mlm_accuracy"].update_state(tf.cast(predicted == original, tf.float32), sample_weight=weights)
        # Ratios of sums: weight each example's ratio by its denominator.
        m["masked_fraction"].update_state(tf.reduce_sum(weights) / tf.maximum(num_real, 1.0), sample_weight=num_real)
        if self.discriminator is None:
            return
        labels = outputs["rtd_labels"]
        probabilities = tf.sigmoid(outputs["rtd_logits"])
        predictions = tf.cast(outputs["rtd_logits"] > 0, tf.int32)
        m["sampled_accuracy"].update_state(
            tf.cast(outputs["sampled_ids"] == original, tf.float32), sample_weight=weights)
        m["rtd_loss"].update_state(parts["rtd_losses"], sample_weight=real)
        m["rtd_accuracy"].update_state(tf.cast(predictions == labels, tf.float32), sample_weight=real)
        m["rtd_precision"].update_state(labels, probabilities, sample_weight=real)
        m["rtd_recall"].update_state(labels, probabilities, sample_weight=real)
        m["rtd_auc"].update_state(labels, probabilities, sample_weight=real)
        num_replaced = tf.reduce_sum(tf.cast(labels, tf.float32) * real)
        m["replaced_fraction"].update_state(num_replaced / tf.maximum(num_real, 1.0), sample_weight=num_real)

    def get_metrics_result(self):
        return {name: metric.result() for name, metric in self._metrics_by_name.items()}

    def get_config(self):
        return {**super().get_config(), "config": self.config.to_dict()}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        return cls(ElectraConfig.from_dict(config.pop("config")), **config)
