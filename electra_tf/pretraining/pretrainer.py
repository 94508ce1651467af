"""`ElectraPretrainer`: the models of a pre-training objective, trained by one `train_step`."""

import keras
import tensorflow as tf

from electra_tf.modeling.config import BuiltFromConfig
from electra_tf.modeling.models import standalone
from electra_tf.pretraining import objectives
from electra_tf.utils import keyed_random
from electra_tf.utils.replicas import global_sum, reduce_gradients_before_optimizer

ELECTRA_METRICS = objectives.OBJECTIVES["electra"].metric_names
MLM_METRICS = objectives.OBJECTIVES["mlm"].metric_names


def _example_index(batch_size, example_offset):
    """Each example's position in the global batch, whatever the replica split."""
    context = tf.distribute.get_replica_context()
    replica = 0 if context is None else tf.cast(context.replica_id_in_sync_group, tf.int32)
    return example_offset + replica * batch_size + tf.range(batch_size)


@keras.saving.register_keras_serializable(package="electra_tf")
class ElectraPretrainer(BuiltFromConfig, keras.Model):
    """The models of a pre-training objective, trained by `train_step`.

    `train_step(batch)` takes int32 `[batch, seq]` `input_ids`, `input_mask`,
    `segment_ids`, masks them, and minimises the objective's loss: for
    `objective="electra"` the generator fills the masks with its samples and
    the loss is `gen_weight * MLM + disc_weight * RTD`; the objectives are in
    `electra_tf.pretraining.objectives`. Masking, sampling and dropout are
    keyed by (config.seed, optimizer step, position in the global batch), so
    they are reproducible and independent of the replica layout (and of XLA). Gradients are
    all-reduced here, before the optimizer, so clipping sees the global
    gradient norm (Keras clips per replica otherwise).

    The objective's models are attributes: `embeddings` (the generator's,
    shared with the discriminator when tied), `generator`, `discriminator`
    (None for the masked-LM objectives and mc_bert) and any others it has
    (`main_mlm`, `all_tokens_head`, teams' `rtd_layers` and `mws_head`,
    mc_bert's `reject_option`). `kept_model()` is the one pre-training is for.

    Args:
        config: the `ElectraConfig`: the models' sizes and the objective's settings.
        num_train_steps: the run's length; needed when the sampling
            temperature is scheduled (`config.final_temperature`).
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

    def __init__(self, config, num_train_steps=None, rematerialize=False, **kwargs):
        kwargs.setdefault("name", "electra_pretrainer")
        super().__init__(**kwargs)
        self.config = config
        self.num_train_steps = num_train_steps
        self.rematerialize = rematerialize
        self.objective = objectives.create(config, num_train_steps, rematerialize)
        self.generator = self.discriminator = None
        # In the objective's order, which is the variables' order in checkpoints.
        for name, layer in self.objective.create_models(self.dtype_policy).items():
            setattr(self, name, layer)
        self._metrics_by_name = self.objective.create_metrics()
        # Global norm of the unclipped gradient, for logging; not a train_step metric.
        self.grad_norm_tracker = keras.metrics.Mean(name="grad_norm")
        self.build()

    @property
    def encoder(self):
        """The encoder of the kept model (see `kept_model`)."""
        return getattr(self, self.objective.kept).encoder

    def kept_model(self):
        """The model pre-training is for, with one embedding set of its own values (GDES folded in).

        An `ElectraDiscriminator` for the detection objectives and
        all_tokens_mlm, the discriminator-sized `ElectraGenerator` for mlm and
        replace_mlm. It is the model itself unless its embeddings are GDES's.
        """
        return standalone(getattr(self, self.objective.kept))

    @property
    def metrics(self):
        return list(self._metrics_by_name.values())

    def build(self, input_shape=None):
        if self.built:
            return
        self.objective.build(self.config.max_seq_length)
        self.built = True

    def get_config(self):
        return {**super().get_config(), "num_train_steps": self.num_train_steps, "rematerialize": self.rematerialize}

    def compile(self, optimizer="adam", **kwargs):
        super().compile(optimizer=optimizer, **kwargs)
        reduce_gradients_before_optimizer(self.optimizer)  # train_step all-reduces the gradients itself
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
        masked = self.objective.mask(input_ids, input_mask, step, example_index)
        dropout_keys = keyed_random.example_keys(self.config.seed, step, example_index, keyed_random.DROPOUT)
        return {**masked, "input_ids": input_ids, "input_mask": input_mask,
                "segment_ids": tf.cast(inputs["segment_ids"], tf.int32), "example_index": example_index,
                "dropout_keys": dropout_keys}

    def _forward(self, masked, step, training):
        return self.objective.forward(masked, step, training)

    def _denominators(self, masked_batches):
        """Masked positions and real tokens over the whole global batch, all micro-batches included.

        They depend on the inputs only, so they are known before any forward
        pass: each micro-batch's loss is then its exact share of the global one.
        """
        num_masked = tf.add_n([tf.reduce_sum(m["masked_lm_weights"]) for m in masked_batches])
        num_real = tf.add_n([tf.reduce_sum(tf.cast(m["input_mask"], tf.float32)) for m in masked_batches])
        return tf.maximum(global_sum(num_masked), 1.0), tf.maximum(global_sum(num_real), 1.0)

    def _compute_losses(self, outputs, num_masked, num_real):
        """This replica's share of the global loss (shares sum to it), and the per-token pieces."""
        return self.objective.losses(outputs, num_masked, num_real)

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
        grads = global_sum(grads)
        self.grad_norm_tracker.update_state(tf.linalg.global_norm(grads) / tf.cast(self._loss_scale(), tf.float32))
        self.optimizer.apply_gradients(zip(grads, variables))
        self._metrics_by_name["loss"].update_state(global_sum(total_loss))
        return self.get_metrics_result()

    def test_step(self, data):
        masked = self._mask(data, 0, 0)
        outputs = self._forward(masked, 0, training=False)
        loss, parts = self._compute_losses(outputs, *self._denominators([masked]))
        self._update_metrics(outputs, parts)
        self._metrics_by_name["loss"].update_state(global_sum(loss))
        return self.get_metrics_result()

    def _loss_scale(self):
        # Only Keras' LossScaleOptimizer (mixed_float16) scales the loss.
        return getattr(self.optimizer, "dynamic_scale", 1.0)

    def _update_metrics(self, outputs, parts):
        self.objective.update_metrics(self._metrics_by_name, outputs, parts)

    def get_metrics_result(self):
        return {name: metric.result() for name, metric in self._metrics_by_name.items()}
