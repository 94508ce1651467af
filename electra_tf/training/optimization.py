"""The original optimizer recipe: AdamW without bias correction, warmup x polynomial decay."""

import keras
import tensorflow as tf
from keras import ops

from electra_tf.training.optimizer_config import OptimizerConfig

# Matched against `variable.name`: LayerNorm's gamma/beta and every bias
# (including the generator's output_bias), as the original excludes
# "LayerNorm", "layer_norm" and "bias".
NO_WEIGHT_DECAY = ("bias", "gamma", "beta")


@keras.saving.register_keras_serializable(package="electra_tf")
class WarmupPolynomialDecay(keras.optimizers.schedules.LearningRateSchedule):
    """LR(step) = peak * (1 - step/total) ** power * min(1, step/warmup).

    The warmup multiplies the decay curve rather than preceding it, as in
    the original; at step 0 the rate is 0.

    Args:
        peak_learning_rate: the rate the curve is scaled to.
        num_train_steps: where the rate reaches 0.
        num_warmup_steps: length of the linear ramp (0: none).
        power: power of the decay (1.0: linear).

    Example:

    >>> schedule = WarmupPolynomialDecay(5e-4, num_train_steps=100, num_warmup_steps=10)
    >>> round(float(schedule(5)), 8)  # 5e-4 * (1 - 5/100) * (5/10)
    0.0002375
    """

    def __init__(self, peak_learning_rate, num_train_steps, num_warmup_steps=0, power=1.0):
        self.peak_learning_rate = peak_learning_rate
        self.num_train_steps = num_train_steps
        self.num_warmup_steps = num_warmup_steps
        self.power = power

    def __call__(self, step):
        step = ops.cast(step, "float32")
        progress = ops.minimum(step, float(self.num_train_steps)) / float(self.num_train_steps)
        rate = self.peak_learning_rate * ops.power(1.0 - progress, self.power)
        if self.num_warmup_steps:
            rate = rate * ops.minimum(1.0, step / float(self.num_warmup_steps))
        return rate

    def get_config(self):
        return {
            "peak_learning_rate": self.peak_learning_rate,
            "num_train_steps": self.num_train_steps,
            "num_warmup_steps": self.num_warmup_steps,
            "power": self.power,
        }


@keras.saving.register_keras_serializable(package="electra_tf")
class ElectraAdamW(keras.optimizers.Optimizer):
    """Adam with decoupled weight decay, as the original's AdamWeightDecayOptimizer.

    update = m / (sqrt(v) + eps) [+ bias correction if asked];
    w -= lr * (update + weight_decay * w), the decay skipped for LayerNorm
    parameters and biases. Global-norm clipping uses Keras' own
    `global_clipnorm`; `ElectraPretrainer` and `ElectraClassifier` all-reduce
    gradients before the optimizer sees them, so the norm is that of the
    global gradient.

    Args:
        learning_rate: a float or a schedule such as `WarmupPolynomialDecay`.
        weight_decay: the decoupled decay rate (0.01).
        beta_1: Adam's beta1 (0.9, as the original).
        beta_2: Adam's beta2 (0.999, as the original).
        epsilon: Adam's epsilon (1e-6, as the original).
        bias_correction: apply Adam's bias correction (the original does not).
        global_clipnorm: clip the gradients to this global norm (1.0; None: don't).
        learning_rate_multipliers: `{variable.path: multiplier}`; a listed
            variable is updated (decay included) with the learning rate times
            its multiplier, as the original's per-layer learning rates
            (`electra_tf.finetuning.optimization.layerwise_lr_multipliers`).
            Unlisted variables use the learning rate itself.
        name: the optimizer's name.
        **kwargs: `keras.optimizers.Optimizer` arguments.

    Example:

    >>> optimizer = ElectraAdamW(WarmupPolynomialDecay(5e-4, 1000, 100))
    >>> weight = keras.Variable([1.0, -1.0], name="kernel")
    >>> for _ in range(11):
    ...     _ = optimizer.apply_gradients([(keras.ops.convert_to_tensor([0.5, 0.5]), weight)])
    >>> [round(float(w), 4) for w in weight.numpy()]  # 10 updates (step 0 has rate 0), against the gradient
    [0.9983, -1.0017]
    >>> head_only = ElectraAdamW(1e-4, learning_rate_multipliers={"encoder/layer_0/kernel": 0.5})
    """

    def __init__(self, learning_rate=5e-4, weight_decay=0.01, beta_1=0.9, beta_2=0.999, epsilon=1e-6,
                 bias_correction=False, global_clipnorm=1.0, learning_rate_multipliers=None, name="electra_adamw",
                 **kwargs):
        super().__init__(learning_rate=learning_rate, weight_decay=weight_decay,
                         global_clipnorm=global_clipnorm, name=name, **kwargs)
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.bias_correction = bias_correction
        self.learning_rate_multipliers = dict(learning_rate_multipliers or {})
        self.exclude_from_weight_decay(var_names=list(NO_WEIGHT_DECAY))

    def build(self, var_list):
        if self.built:
            return
        super().build(var_list)
        self._momentums, self._velocities = self.add_optimizer_variables(var_list, ["momentum", "velocity"])
        # By position, as Keras indexes the slots: update_step may see the underlying tf.Variable,
        # whose name is not the Keras path.
        self._multipliers = [float(self.learning_rate_multipliers.get(getattr(v, "path", v.name), 1.0))
                            for v in var_list]

    def apply(self, grads, trainable_variables=None):
        # An embedding's gradient arrives as IndexedSlices with a row per occurrence of a token: clipping
        # would take the norm of those rows, and the update square them, before they are summed.
        grads = [tf.convert_to_tensor(g) if isinstance(g, tf.IndexedSlices) else g for g in grads]
        return super().apply(grads, trainable_variables)

    def _apply_weight_decay(self, variables):
        # Applied in update_step instead, where each variable's own learning rate is known.
        return

    def update_step(self, gradient, variable, learning_rate):
        lr = ops.cast(learning_rate, variable.dtype)
        multiplier = self._multipliers[self._get_variable_index(variable)]
        if multiplier != 1.0:
            lr = ops.multiply(lr, ops.cast(multiplier, variable.dtype))
        if self.weight_decay is not None and self._use_weight_decay(variable):
            # Before the Adam step and from the same expression as Keras' own decay, so a run
            # without multipliers updates bit for bit as before.
            self.assign_sub(variable, variable * ops.cast(self.weight_decay, variable.dtype) * lr)
        gradient = ops.cast(gradient, variable.dtype)
        m = self._momentums[self._get_variable_index(variable)]
        v = self._velocities[self._get_variable_index(variable)]
        self.assign_add(m, ops.multiply(ops.subtract(gradient, m), 1 - self.beta_1))
        self.assign_add(v, ops.multiply(ops.subtract(ops.square(gradient), v), 1 - self.beta_2))
        m_hat, v_hat = m, v
        if self.bias_correction:
            t = ops.cast(self.iterations + 1, variable.dtype)
            m_hat = ops.divide(m, 1 - ops.power(ops.cast(self.beta_1, variable.dtype), t))
            v_hat = ops.divide(v, 1 - ops.power(ops.cast(self.beta_2, variable.dtype), t))
        self.assign_sub(variable, ops.multiply(lr, ops.divide(m_hat, ops.add(ops.sqrt(v_hat), self.epsilon))))

    def get_config(self):
        config = super().get_config()
        config.update(beta_1=self.beta_1, beta_2=self.beta_2, epsilon=self.epsilon,
                      bias_correction=self.bias_correction, learning_rate_multipliers=self.learning_rate_multipliers)
        return config


def create_optimizer(config=None):
    """The original recipe from an `OptimizerConfig` (ELECTRA-Small's by default).

    Args:
        config: an `OptimizerConfig`; `OptimizerConfig()` if omitted.

    Returns:
        An `ElectraAdamW` on a `WarmupPolynomialDecay` schedule, with global-norm clipping.

    Example:

    >>> optimizer = create_optimizer(OptimizerConfig(learning_rate=1e-3, num_train_steps=100, num_warmup_steps=10))
    >>> float(optimizer.learning_rate)  # step 0 of the warmup
    0.0
    """
    config = config or OptimizerConfig()
    schedule = WarmupPolynomialDecay(config.learning_rate, config.num_train_steps,
                                     config.num_warmup_steps, config.lr_decay_power)
    return ElectraAdamW(schedule, weight_decay=config.weight_decay_rate, beta_1=config.adam_beta1,
                        beta_2=config.adam_beta2, epsilon=config.adam_epsilon,
                        bias_correction=config.bias_correction, global_clipnorm=config.clip_norm or None)
