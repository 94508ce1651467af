"""`OptimizerConfig`: the optimizer and schedule hyperparameters, importable without TensorFlow."""

import dataclasses


@dataclasses.dataclass(frozen=True)
class OptimizerConfig:
    """Optimizer and schedule hyperparameters; defaults are ELECTRA-Small's (configure_pretraining.py).

    Args:
        learning_rate: peak learning rate.
        num_train_steps: total steps; the rate decays to 0 there.
        num_warmup_steps: steps of the linear warmup, which multiplies the decay curve.
        lr_decay_power: power of the polynomial decay (1.0: linear).
        weight_decay_rate: decoupled weight decay, not applied to LayerNorm parameters and biases.
        adam_beta1, adam_beta2, adam_epsilon: Adam's constants.
        clip_norm: global-norm clipping (0 turns it off).
        bias_correction: Adam bias correction (off, as in the original).

    Example:

    >>> OptimizerConfig(learning_rate=2e-4).num_warmup_steps
    10000
    """

    learning_rate: float = 5e-4
    num_train_steps: int = 1_000_000
    num_warmup_steps: int = 10_000
    lr_decay_power: float = 1.0
    weight_decay_rate: float = 0.01
    adam_beta1: float = 0.9
    adam_beta2: float = 0.999
    adam_epsilon: float = 1e-6
    clip_norm: float = 1.0
    # Off by default: the original has none, and with warmup it matters
    # little; off keeps the update identical to the original's, so a
    # checkpoint converted from it resumes with the same dynamics.
    bias_correction: bool = False

    def __post_init__(self):
        if self.num_train_steps <= 0:
            raise ValueError(f"num_train_steps must be positive, got {self.num_train_steps}")
        if self.num_warmup_steps < 0:
            raise ValueError(f"num_warmup_steps must be >= 0, got {self.num_warmup_steps}")
        if self.learning_rate <= 0:
            raise ValueError(f"learning_rate must be positive, got {self.learning_rate}")


# Help text for the flags generated from these fields (electra_tf.training.run_flags).
FIELD_HELP = {
    "learning_rate": "Peak learning rate (5e-4 small, 2e-4 base and large).",
    "num_train_steps": "Total optimizer steps; the learning rate decays to 0 there.",
    "num_warmup_steps": "Linear warmup steps (multiplies the decay curve).",
    "lr_decay_power": "Power of the polynomial decay (1.0 = linear).",
    "weight_decay_rate": "Decoupled weight decay; not applied to LayerNorm parameters and biases.",
    "adam_beta1": "Adam beta1.",
    "adam_beta2": "Adam beta2.",
    "adam_epsilon": "Adam epsilon.",
    "clip_norm": "Clip gradients to this global norm (0 disables).",
    "bias_correction": "Apply Adam bias correction (the original does not).",
}
