"""What a model_dir records about its run, so it can be resumed, exported and converted.

`<model_dir>/run_config.json` holds the model config, the lower-casing and
the vocabulary's hash; `<model_dir>/vocab.txt` is a copy of the vocabulary;
`<model_dir>/checkpoints/` holds the checkpoints.
"""

import dataclasses
import json
import os

import tensorflow as tf

from electra_tf.modeling.config import ElectraConfig
from electra_tf.text.vocab import file_sha256
from electra_tf.utils.atomic import copy_file_atomically, write_text_atomically

RUN_CONFIG = "run_config.json"
CHECKPOINTS = "checkpoints"


@dataclasses.dataclass(frozen=True)
class RunState:
    model_dir: str
    config: ElectraConfig
    lowercase: bool
    vocab_sha256: str

    @property
    def vocab_file(self):
        return os.path.join(self.model_dir, "vocab.txt")

    @property
    def checkpoint_dir(self):
        return os.path.join(self.model_dir, CHECKPOINTS)


def load(model_dir):
    path = os.path.join(model_dir, RUN_CONFIG)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path} not found; --model_dir must be a directory written by run_pretraining "
                                "or convert_checkpoint")
    with open(path, encoding="utf-8") as f:
        values = json.load(f)
    return RunState(model_dir, ElectraConfig.from_dict(values["electra_config"]), values["lowercase"],
                    values["vocab_sha256"])


def start_or_check(model_dir, config, vocab_file, lowercase):
    """Records a new run in model_dir, or checks that the recorded one matches.

    Resuming with another model or vocabulary would load mismatched
    weights or read the data with the wrong ids, so both are refused.
    """
    new = RunState(model_dir, config, lowercase, file_sha256(vocab_file))
    if os.path.exists(os.path.join(model_dir, RUN_CONFIG)):
        old = load(model_dir)
        changed = [f"{k}: {v} -> {new.config.to_dict()[k]}" for k, v in old.config.to_dict().items()
                   if new.config.to_dict()[k] != v and k != "seed"]
        if changed:
            raise ValueError(f"{model_dir} holds a run with another model config ({'; '.join(changed)}); "
                             "use a new --model_dir or the original flags")
        if old.vocab_sha256 != new.vocab_sha256:
            raise ValueError(f"{model_dir} was trained with another vocabulary than {vocab_file}; "
                             "use the original vocabulary or a new --model_dir")
        return old
    os.makedirs(model_dir, exist_ok=True)
    copy_file_atomically(vocab_file, new.vocab_file)
    write_text_atomically(os.path.join(model_dir, RUN_CONFIG), json.dumps(
        {"electra_config": config.to_dict(), "lowercase": lowercase, "vocab_sha256": new.vocab_sha256},
        indent=2, sort_keys=True))
    return new


def restore_pretrainer(state, checkpoint=None):
    """An ElectraPretrainer with the weights of `checkpoint` (default: the latest)."""
    from electra_tf.pretraining.pretrainer import ElectraPretrainer

    checkpoint = checkpoint or tf.train.latest_checkpoint(state.checkpoint_dir)
    if not checkpoint:
        raise FileNotFoundError(f"no checkpoint in {state.checkpoint_dir}; train first or pass --checkpoint")
    pretrainer = ElectraPretrainer(state.config)
    # Training checkpoints also reach every trainable variable through the
    # optimizer's list of them; those written before the encoder's blocks
    # were tracked (encoder.py) reach the blocks only that way.
    optimizer_view = tf.Module()
    optimizer_view._trainable_variables = list(pretrainer.trainable_variables)
    try:
        (tf.train.Checkpoint(model=pretrainer, optimizer=optimizer_view).read(checkpoint).expect_partial()
         .assert_existing_objects_matched())
    except (tf.errors.NotFoundError, tf.errors.InvalidArgumentError, AssertionError, ValueError) as e:
        raise ValueError(
            f"cannot restore {checkpoint} into the recorded model config ({str(e).splitlines()[0]})") from None
    return pretrainer
