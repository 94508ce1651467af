"""`ElectraPretrainer`: both towers and the replaced-token-detection objective."""

import keras
import tensorflow as tf

from electra_tf.modeling.config import BuiltFromConfig
from electra_tf.modeling.embeddings import ElectraEmbeddings
from electra_tf.modeling.models import ElectraDiscriminator, ElectraGenerator
from electra_tf.pretraining import keyed_random
from electra_tf.pretraining.masking import mask_tokens, scatter_at_positions
from electra_tf.pretraining.sampling import sample

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
class ElectraPretrainer(BuiltFromConfig, keras.Model):
    """Generator + discriminator sharing embeddings, trained by `train_step`.

    `train_step(batch)` takes int32 `[batch, seq]` `input_ids`, `input_mask`,
    `segment_ids`, masks them, fills the masks with generator samples, and
    minimises `gen_weight * MLM + disc_weight * RTD`. Masking, sampling and
    dropout are keyed by (config.seed, optimizer step, position in the global
    batch), so they are reproducible and independent of the replica layout.
    Gradients are all-reduced here, before the optimizer, so clipping sees
    the global gradient norm (Keras clips per replica otherwise).

    With `objective="mlm"` it is the BERT-style baseline: one masked-LM of the
    discriminator's size, same masking, no discriminator.

    Args:
        config: the `ElectraConfig`: both towers' sizes and the objective's settings.
        rematerialize: recompute each transformer block in the backward pass instead of
            keeping its activations (`ElectraEncoder`): the same update in less memory.
        **kwargs: `keras.Model` arguments (`name`, `dtype`).

    Example:

    >>> pretrainer = ElectraPretrainer(ElectraConfig.for_size("tiny"))
    >>> pretrainer.compile(optimizer=create_optimizer())
    >>> ids = np.random.randint(1000, 2000, (8, 32)).astype("int32")
    >>> batch = {"input_ids": ids, "input_mask": np.ones_like(ids), "segment_ids": 0 * ids}
    >>> metrics = pretrainer.train_step(batch)
    >>> sorted(metrics)[:4]
    ['loss', 'masked_fraction', 'mlm_accuracy', 'mlm_loss']
    >>> pretrainer.discriminator.count_params() < pretrainer.count_params()
    True
    """

    def __init__(self, config, rematerialize=False, **kwargs):
        kwargs.setdefault("name", "electra_pretrainer")
        super().__init__(**kwargs)
        self.config = config
        self.rematerialize = rematerialize
        self.embeddings = ElectraEmbeddings(config, dtype=self.dtype_policy)
        if config.objective == "electra":
            self.generator = ElectraGenerator(config, self.embeddings, "generator", rematerialize,
                                              dtype=self.dtype_policy)
            self.discriminator = ElectraDiscriminator(config, self.embeddings, rematerialize, dtype=self.dtype_policy)
        else:
            self.generator = ElectraGenerator(config, self.embeddings, "discriminator", rematerialize,
                                              dtype=self.dtype_policy)
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

    def get_config(self):
        return {**super().get_config(), "rematerialize": self.rematerialize}

    def compile(self, optimizer="adam", **kwargs):
        super().compile(optimizer=optimizer, **kwargs)
        inner = getattr(self.optimizer, "inner_optimizer", self.optimizer)
        # train_step all-reduces gradients itself; a second reduction in the
        # optimizer would multiply them by the number of replicas.
        inner._all_reduce_sum_gradients = lambda grads_and_vars: grads_and_vars
        # Slot variables must exist before the first distributed step: they
        # cannot be created inside a replica function.
        self.optimizer.build(self.trainable_variables)

    def compile_from_config(self, config):
        # How a .keras file restores the compiled state; compile() above takes only the optimizer.
        self.compile(optimizer=keras.optimizers.deserialize(config["optimizer"]))

    def call(self, inputs, training=False, step=0, example_offset=0):
        """The full pre-training forward pass; returns the tensors of every stage.

        `step` and `example_offset` (where this batch starts in the global
        batch) key the randomness: the same example at the same step and
        position is masked and sampled identically.
        """
        return self._forward(self._mask(inputs, step, example_offset), step, training)

    def _mask(self, inputs, step, example_offset):
        input_ids = tf.cast(inputs["input_ids"], tf.int32)
        input_mask = tf.cast(inputs["input_mask"], tf.int32)
        example_index = _example_index(tf.shape(input_ids)[0], example_offset)
        masked = mask_tokens(input_ids, input_mask, self.config, self.config.seed, step, example_index)
        return {**masked, "input_ids": input_ids, "input_mask": input_mask,
                "segment_ids": tf.cast(inputs["segment_ids"], tf.int32), "example_index": example_index}

    def _forward(self, masked, step, training):
        config = self.config
        input_mask, segment_ids = masked["input_mask"], masked["segment_ids"]
        dropout_keys = keyed_random.example_keys(config.seed, step, masked["example_index"], keyed_random.DROPOUT)
        mlm_logits = self.generator({
            "input_ids": masked["masked_ids"], "input_mask": input_mask, "segment_ids": segment_ids,
            "masked_lm_positions": masked["masked_lm_positions"]}, training=training, dropout_keys=dropout_keys)
        outputs = {**masked, "mlm_logits": mlm_logits}
        if self.discriminator is None:
            return outputs
        sampled = sample(mlm_logits, config, step, masked["example_index"])
        corrupted = scatter_at_positions(
            masked["masked_ids"], masked["masked_lm_positions"], sampled, masked["masked_lm_weights"] > 0)
        # A sample equal to the original is "original", not "replaced".
        labels = tf.cast(tf.not_equal(corrupted, masked["input_ids"]), tf.int32)
        disc = self.discriminator({"input_ids": corrupted, "input_mask": input_mask, "segment_ids": segment_ids},
                                  training=training, dropout_keys=dropout_keys)
        return {**outputs, "sampled_ids": sampled, "corrupted_ids": corrupted, "rtd_labels": labels,
                "rtd_logits": disc["logits"]}

    def _denominators(self, masked_batches):
        """Masked positions and real tokens over the whole global batch, all micro-batches included.

        They depend on the inputs only, so they are known before any forward
        pass: each micro-batch's loss is then its exact share of the global one.
        """
        num_masked = tf.add_n([tf.reduce_sum(m["masked_lm_weights"]) for m in masked_batches])
        num_real = tf.add_n([tf.reduce_sum(tf.cast(m["input_mask"], tf.float32)) for m in masked_batches])
        return tf.maximum(_global_sum(num_masked), 1.0), tf.maximum(_global_sum(num_real), 1.0)

    def _compute_losses(self, outputs, num_masked, num_real):
        """This replica's share of the global loss (shares sum to it), and the per-token pieces."""
        weights = outputs["masked_lm_weights"]
        mlm_losses = tf.nn.sparse_softmax_cross_entropy_with_logits(
            labels=outputs["masked_lm_ids"], logits=outputs["mlm_logits"])
        mlm_loss = tf.reduce_sum(mlm_losses * weights) / num_masked
        parts = {"mlm_losses": mlm_losses}
        if self.discriminator is None:
            return mlm_loss, parts
        real = tf.cast(outputs["input_mask"], tf.float32)
        rtd_losses = tf.nn.sigmoid_cross_entropy_with_logits(
            labels=tf.cast(outputs["rtd_labels"], tf.float32), logits=outputs["rtd_logits"])
        rtd_loss = tf.reduce_sum(rtd_losses * real) / num_real
        parts["rtd_losses"] = rtd_losses
        return self.config.gen_weight * mlm_loss + self.config.disc_weight * rtd_loss, parts

    def train_step(self, data):
        """One optimizer update; returns the running metrics.

        `data` is a batch, or a list of K micro-batches that together form
        the batch (gradient accumulation): the update equals that of one
        batch K times as large, randomness included.
        """
        micro_batches = list(data) if isinstance(data, (list, tuple)) else [data]
        step = self.optimizer.iterations
        size = tf.shape(micro_batches[0]["input_ids"])[0]
        context = tf.distribute.get_replica_context()
        replicas = 1 if context is None else context.num_replicas_in_sync
        masked = [self._mask(batch, step, k * size * replicas) for k, batch in enumerate(micro_batches)]
        num_masked, num_real = self._denominators(masked)
        variables = self.trainable_variables
        grads, total_loss = None, 0.0
        for batch in masked:
            with tf.GradientTape() as tape:
                outputs = self._forward(batch, step, training=True)
                loss, parts = self._compute_losses(outputs, num_masked, num_real)
                scaled_loss = self.optimizer.scale_loss(loss)
            micro_grads = tape.gradient(scaled_loss, variables)
            # Dense, so micro-batch gradients add (embedding gradients arrive as IndexedSlices).
            micro_grads = [tf.zeros_like(v) if g is None else tf.convert_to_tensor(g)
                           for g, v in zip(micro_grads, variables)]
            grads = micro_grads if grads is None else [a + b for a, b in zip(grads, micro_grads)]
            total_loss += loss
            self._update_metrics(outputs, parts)
        grads = _global_sum(grads)
        self.grad_norm_tracker.update_state(tf.linalg.global_norm(grads) / tf.cast(self._loss_scale(), tf.float32))
        self.optimizer.apply_gradients(zip(grads, variables))
        self._metrics_by_name["loss"].update_state(_global_sum(total_loss))
        return self.get_metrics_result()

    def test_step(self, data):
        masked = self._mask(data, 0, 0)
        outputs = self._forward(masked, 0, training=False)
        loss, parts = self._compute_losses(outputs, *self._denominators([masked]))
        self._update_metrics(outputs, parts)
        self._metrics_by_name["loss"].update_state(_global_sum(loss))
        return self.get_metrics_result()

    def _loss_scale(self):
        # Only Keras' LossScaleOptimizer (mixed_float16) scales the loss.
        return getattr(self.optimizer, "dynamic_scale", 1.0)

    def _update_metrics(self, outputs, parts):
        m = self._metrics_by_name
        weights = outputs["masked_lm_weights"]
        real = tf.cast(outputs["input_mask"], tf.float32)
        num_real = tf.reduce_sum(real)
        original = outputs["masked_lm_ids"]
        predicted = tf.argmax(outputs["mlm_logits"], axis=-1, output_type=tf.int32)
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
