"""`OptimizerConfig`: the optimizer and schedule hyperparameters, importable without TensorFlow."""

import dataclasses
import warnings

# The paper's warmup: 10,000 of ELECTRA-Small's 1,000,000 steps (google-research/electra,
# configure_pretraining.py: num_warmup_steps=10000, num_train_steps=1000000).
PAPER_WARMUP_STEPS = 10_000
PAPER_TRAIN_STEPS = 1_000_000


def default_warmup_steps(num_train_steps):
    """The warmup of a run that names none: the paper's share of it, 1%, and at most the paper's 10,000 steps.

    A fixed 10,000 would leave any run shorter than that still warming up
    at its end; 1% keeps the paper's proportion (10,000 of ELECTRA-Small's
    1,000,000 steps, google-research/electra configure_pretraining.py).

    Args:
        num_train_steps: the run's length.

    Example:

    >>> default_warmup_steps(1_000_000), default_warmup_steps(20_000), default_warmup_steps(20)
    (10000, 200, 0)
    """
    return min(PAPER_WARMUP_STEPS, num_train_steps * PAPER_WARMUP_STEPS // PAPER_TRAIN_STEPS)


def long_warmup_message(config):
    """What is wrong with a warmup that takes more than half of the run, in one line; None if it does not.

    `OptimizerConfig` warns with it (`warnings.warn`); run_pretraining prints it as `warning: --...`.

    Args:
        config: an `OptimizerConfig`.

    Example:

    >>> long_warmup_message(OptimizerConfig(num_train_steps=1000, num_warmup_steps=800))[:46]
    'num_warmup_steps 800 is over half of the 1,000'
    """
    if config.num_warmup_steps * 2 <= config.num_train_steps:
        return None
    return (f"num_warmup_steps {config.num_warmup_steps:,} is over half of the {config.num_train_steps:,} "
            "training steps, so the learning rate stays low for most of the run; leave it out for 1% of the run "
            f"({default_warmup_steps(config.num_train_steps):,} steps) or lower it")


@dataclasses.dataclass(frozen=True)
class OptimizerConfig:
    """Optimizer and schedule hyperparameters; defaults are ELECTRA-Small's (configure_pretraining.py).

    Args:
        learning_rate: peak learning rate.
        num_train_steps: total steps; the rate decays to 0 there.
        num_warmup_steps: steps of the linear warmup, which multiplies the decay curve. None (the
            default): 1% of `num_train_steps`, at most 10,000, the paper's 10,000 of ELECTRA-Small's
            1,000,000 steps (google-research/electra configure_pretraining.py) kept in proportion for
            shorter runs (`default_warmup_steps`).
        lr_decay_power: power of the polynomial decay (1.0: linear).
        weight_decay_rate: decoupled weight decay, not applied to LayerNorm parameters and biases.
        adam_beta1: Adam's beta1 (0.9).
        adam_beta2: Adam's beta2 (0.999).
        adam_epsilon: Adam's epsilon (1e-6).
        clip_norm: global-norm clipping (0 turns it off).
        bias_correction: Adam bias correction (off, as in the original).

    Example:

    >>> OptimizerConfig(learning_rate=2e-4).num_warmup_steps
    10000
    >>> OptimizerConfig(num_train_steps=10_000).num_warmup_steps
    100
    """

    learning_rate: float = 5e-4
    num_train_steps: int = 1_000_000
    num_warmup_steps: int = None
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
        if self.num_warmup_steps is None:
            object.__setattr__(self, "num_warmup_steps", default_warmup_steps(self.num_train_steps))
        if self.num_warmup_steps < 0:
            raise ValueError(f"num_warmup_steps must be >= 0, got {self.num_warmup_steps}")
        if self.learning_rate <= 0:
            raise ValueError(f"learning_rate must be positive, got {self.learning_rate}")
        message = long_warmup_message(self)
        if message:
            warnings.warn(message, stacklevel=3)


# Help text for the flags generated from these fields (electra_tf.training.run_flags).
FIELD_HELP = {
    "learning_rate": "Peak learning rate (5e-4 small, 2e-4 base and large).",
    "num_train_steps": "Total optimizer steps; the learning rate decays to 0 there.",
    "num_warmup_steps": "Linear warmup steps (multiplies the decay curve). Default: 1% of --num_train_steps, at "
                        "most 10,000: the paper's 10,000 of ELECTRA-Small's 1,000,000 steps (google-research/"
                        "electra configure_pretraining.py), in proportion for shorter runs. A warmup over half "
                        "of the run is warned about.",
    "lr_decay_power": "Power of the polynomial decay (1.0 = linear).",
    "weight_decay_rate": "Decoupled weight decay; not applied to LayerNorm parameters and biases.",
    "adam_beta1": "Adam beta1.",
    "adam_beta2": "Adam beta2.",
    "adam_epsilon": "Adam epsilon.",
    "clip_norm": "Clip gradients to this global norm (0 disables).",
    "bias_correction": "Apply Adam bias correction (the original does not).",
}
