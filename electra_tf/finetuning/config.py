"""`FinetuningConfig`: the fine-tuning hyperparameters, importable without TensorFlow.

Defaults are the original's (google-research/electra `configure_finetuning.py`);
the ones that depend on the model size or the task are None here and resolved
by `resolve`.
"""

import dataclasses
import os

# configure_finetuning.py: 10 epochs for RTE and STS-B, 2 for SQuAD, 3 for the other tasks.
TASK_EPOCHS = {"rte": 10, "stsb": 10, "squad_v1": 2, "squad_v2": 2}
# configure_finetuning.py: sequences of 512 for SQuAD and 256 for chunking when --max_seq_length is not given.
TASK_MAX_SEQ_LENGTH = {"squad_v1": 512, "squad_v2": 512, "chunk": 256}
DEFAULT_EPOCHS = 3
# configure_finetuning.py sets learning rate 5e-5 and layer-wise decay 0.9 for large; small and base
# keep the defaults 1e-4 and 0.8. The paper's Table 7 gives 3e-4 for Small; the code's 1e-4 is used.
LARGE_LEARNING_RATE, LEARNING_RATE = 5e-5, 1e-4
LARGE_LAYERWISE_LR_DECAY, LAYERWISE_LR_DECAY = 0.9, 0.8
# The classifier's head: the original's single dense layer on [CLS], or transformers'
# ElectraForSequenceClassification head (dense -> GELU -> dense), which converts to it exactly.
CLASSIFIER_HEADS = ("original", "transformers")
# The paper's Large: 24 layers of 1024.
_LARGE = (24, 1024)


@dataclasses.dataclass(frozen=True)
class FinetuningConfig:
    """Hyperparameters of a fine-tuning run; None means "the original's value for this model and task".

    Args:
        learning_rate: peak learning rate (None: 1e-4, 5e-5 for a large model).
        layerwise_lr_decay: the learning rate of a variable at depth d is multiplied by
            decay ** (num_layers + 2 - d) (None: 0.8, 0.9 for a large model; <= 0 turns it off).
        num_train_epochs: passes over the training set (None: 10 for RTE and STS-B, 2 for SQuAD, else 3).
        train_batch_size: examples per update.
        eval_batch_size: examples per prediction batch.
        max_seq_length: tokens per example, [CLS] and [SEP] included (run_finetuning: 512 for SQuAD and 256
            for chunk unless given).
        warmup_proportion: share of the updates over which the learning rate warms up.
        weight_decay_rate: decoupled weight decay, not applied to LayerNorm parameters and biases.
        clip_norm: global gradient-norm clipping.
        adam_epsilon: Adam's epsilon.
        hidden_dropout_prob: dropout in the encoder and before the head.
        attention_probs_dropout_prob: dropout on the attention probabilities.
        double_unordered: train MRPC and STS-B on both sentence orders, as the original.
        num_trials: independent runs with seeds seed, seed + 1, ...
        seed: the first trial's seed (initialisation of the head, dropout, data order).
        max_train_examples: train on this many examples of the training split (a fixed subset).
        classifier_head: classification and regression: "original" (one dense layer on [CLS]) or
            "transformers" (ElectraForSequenceClassification's dense -> GELU -> dense, which
            `convert_checkpoint --to_hf` writes as that class).

    Example:

    >>> FinetuningConfig(learning_rate=3e-4).resolve("rte", num_layers=12, hidden_size=256).num_train_epochs
    10
    """

    learning_rate: float = None
    layerwise_lr_decay: float = None
    num_train_epochs: float = None
    train_batch_size: int = 32
    eval_batch_size: int = 32
    max_seq_length: int = 128
    warmup_proportion: float = 0.1
    weight_decay_rate: float = 0.01
    clip_norm: float = 1.0
    adam_epsilon: float = 1e-6
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.1
    double_unordered: bool = True
    num_trials: int = 1
    seed: int = 0
    max_train_examples: int = None
    classifier_head: str = dataclasses.field(default="original", metadata={"choices": CLASSIFIER_HEADS})

    def __post_init__(self):
        problems = []
        for name in ("train_batch_size", "eval_batch_size", "max_seq_length", "num_trials"):
            if getattr(self, name) <= 0:
                problems.append(f"{name} must be positive, got {getattr(self, name)}")
        if self.max_seq_length < 3:
            problems.append(f"max_seq_length must hold [CLS] and two [SEP], got {self.max_seq_length}")
        for name in ("learning_rate", "num_train_epochs"):
            if getattr(self, name) is not None and getattr(self, name) <= 0:
                problems.append(f"{name} must be positive, got {getattr(self, name)}")
        if not 0 <= self.warmup_proportion <= 1:
            problems.append(f"warmup_proportion must be in [0, 1], got {self.warmup_proportion}")
        for name in ("hidden_dropout_prob", "attention_probs_dropout_prob"):
            if not 0 <= getattr(self, name) < 1:
                problems.append(f"{name} must be in [0, 1), got {getattr(self, name)}")
        if self.max_train_examples is not None and self.max_train_examples <= 0:
            problems.append(f"max_train_examples must be positive, got {self.max_train_examples}")
        if self.classifier_head not in CLASSIFIER_HEADS:
            problems.append(f"classifier_head must be one of {', '.join(CLASSIFIER_HEADS)}, got "
                            f"{self.classifier_head!r}")
        if problems:
            raise ValueError("; ".join(problems))

    def resolve(self, task, num_layers, hidden_size):
        """This config with every None filled in for `task` and a model of that depth and width."""
        large = (num_layers, hidden_size) == _LARGE
        return dataclasses.replace(
            self,
            learning_rate=self.learning_rate or (LARGE_LEARNING_RATE if large else LEARNING_RATE),
            layerwise_lr_decay=(self.layerwise_lr_decay if self.layerwise_lr_decay is not None
                                else LARGE_LAYERWISE_LR_DECAY if large else LAYERWISE_LR_DECAY),
            num_train_epochs=self.num_train_epochs or TASK_EPOCHS.get(task, DEFAULT_EPOCHS))

    def to_dict(self):
        return dataclasses.asdict(self)


# Help text for the flags generated from these fields (electra_tf.run_finetuning).
FIELD_HELP = {
    "learning_rate": "Peak learning rate (default: 1e-4; 5e-5 for a large model, as the original's code; the "
                     "paper's Table 7 says 3e-4 for Small).",
    "layerwise_lr_decay": "Layer-wise learning-rate decay: a variable at depth d (0 embeddings, i+1 layer i, "
                          "num_layers+2 the head) gets decay ** (num_layers + 2 - d) times the rate "
                          "(default 0.8; 0.9 for large; <= 0 turns it off).",
    "num_train_epochs": "Epochs (default: 10 for rte and stsb, 2 for squad_v1/squad_v2, else 3).",
    "train_batch_size": "Training examples per update (all replicas together).",
    "eval_batch_size": "Examples per prediction batch.",
    "max_seq_length": "Tokens per example with [CLS] and [SEP]; longer texts are cut (pairs: the longer first). "
                      "Default 128; 512 for squad_v1/squad_v2 (long contexts are read in windows) and 256 for "
                      "chunk, as the original.",
    "warmup_proportion": "Share of the updates over which the learning rate rises linearly.",
    "weight_decay_rate": "Decoupled weight decay; not applied to LayerNorm parameters and biases.",
    "clip_norm": "Clip the gradient (of the loss summed over the batch) to this global norm.",
    "adam_epsilon": "Adam epsilon.",
    "hidden_dropout_prob": "Dropout in the encoder and on the [CLS] vector (the pre-training value is not used).",
    "attention_probs_dropout_prob": "Dropout on the attention probabilities.",
    "double_unordered": "Train MRPC and STS-B on both sentence orders, as the original.",
    "num_trials": "Independent runs (seeds seed, seed+1, ...); eval_results.json gets each one and their median.",
    "seed": "Seed of the first trial.",
    "max_train_examples": "Train on this many examples of the training split, the same subset for every seed "
                          "(few-label studies).",
    "classifier_head": "Classification and regression head: original (the original's one dense layer on [CLS]) "
                       "or transformers (ElectraForSequenceClassification's dense -> GELU -> dense, trained here "
                       "and converted to that class by convert_checkpoint --to_hf).",
}


@dataclasses.dataclass(frozen=True)
class RunOptions:
    """Where the model comes from and where results go: the rest of run_finetuning's command line."""

    output_dir: str
    overwrite: bool = False
    init_checkpoint: str = None
    pretrained: object = None  # --init_checkpoint resolved (electra_tf.finetuning.sources.Source)
    random_init: bool = False
    new_head: bool = False  # a transformers task model's encoder only, under a new head
    model_size: str = None
    architecture: dict = dataclasses.field(default_factory=dict)  # ElectraConfig fields given as flags
    vocab_file: str = None
    lowercase: bool = None
    precision_policy: str = "float32"
    distribution_strategy: str = "one_device"
    tpu: str = None
    num_cpu_devices: int = 0
    log_every_steps: int = 50
    export: bool = True
    qa: object = None  # the QAConfig of a question-answering run


# Written first into an output_dir, so --overwrite knows the directory is a fine-tuning run's to replace.
MARKER = "finetuning_config.json"
# Written last: an output_dir holding it is a finished run.
RESULTS_FILE = "eval_results.json"


def check_output_dir(path, overwrite):
    """Refuses an output_dir that holds a finished run (unless --overwrite) or anything but a run_finetuning output.

    An unfinished run (finetuning_config.json without eval_results.json) is
    accepted: the runner continues it, or starts over with --overwrite.
    """
    from electra_tf.utils.errors import UserError

    if os.path.isfile(path):
        raise UserError(f"--output_dir {path} is a file; give a directory")
    if not os.path.isdir(path) or not os.listdir(path):
        return
    if not os.path.exists(os.path.join(path, MARKER)):
        raise UserError(f"--output_dir {path} is not empty and is not a run_finetuning output ({MARKER} missing); "
                        "--overwrite replaces only those: choose another directory")
    if os.path.exists(os.path.join(path, RESULTS_FILE)) and not overwrite:
        held = ", ".join(sorted(os.listdir(path))[:4])
        raise UserError(f"--output_dir {path} already holds the results of a finished run ({held}); pass --overwrite "
                        "to replace them or choose another directory")
