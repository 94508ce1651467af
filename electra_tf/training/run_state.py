"""What a model_dir records about its run, so it can be resumed, exported and converted.

`<model_dir>/run_config.json` holds the model config, the lower-casing, the
vocabulary's hash and the data order: the settings that decide which
examples the model sees and in which order (`data_order`); `<model_dir>/vocab.txt`
is a copy of the vocabulary; `<model_dir>/checkpoints/` holds the checkpoints;
`<model_dir>/training_record.json` what training did up to the newest
checkpoint (steps, examples, wall time, hardware, the last logged metrics, the
data's summary), which the exports' model cards state.
"""

import dataclasses
import hashlib
import json
import os

import tensorflow as tf

from electra_tf.data import format as data_format
from electra_tf.modeling.config import ElectraConfig
from electra_tf.text.vocab import file_sha256
from electra_tf.utils.atomic import copy_file_atomically, write_text_atomically

RUN_CONFIG = "run_config.json"
TRAINING_RECORD = "training_record.json"
CHECKPOINTS = "checkpoints"

# ElectraConfig fields that change what the model sees or how it learns from it, but not the shapes of
# its weights: a resume may change them with --allow_changed_settings. Every other field is part of
# the architecture, which the checkpoint fixes.
CHANGEABLE_MODEL_FIELDS = ("max_seq_length", "mask_prob", "mask_token_prob", "temperature", "final_temperature",
                           "sampler", "disallow_correct", "gen_weight", "disc_weight", "hidden_dropout_prob",
                           "attention_probs_dropout_prob", "candidate_size", "mws_weight", "teams_rtd_weight")
# The run flags recorded in `data_order`, compared on resume (data_sha256 stands for --data_dir).
DATA_ORDER_FLAGS = ("train_batch_size", "gradient_accumulation_steps", "shuffle_buffer", "seed")


@dataclasses.dataclass(frozen=True)
class RunState:
    model_dir: str
    config: ElectraConfig
    lowercase: bool
    vocab_sha256: str
    # None in model_dirs written before it was recorded, and in those convert_checkpoint writes.
    data_order: dict = None
    changes: tuple = ()

    @property
    def vocab_file(self):
        return os.path.join(self.model_dir, "vocab.txt")

    @property
    def checkpoint_dir(self):
        return os.path.join(self.model_dir, CHECKPOINTS)

    def to_json(self):
        values = {"electra_config": self.config.to_dict(), "lowercase": self.lowercase,
                  "vocab_sha256": self.vocab_sha256}
        if self.data_order is not None:
            values["data_order"] = self.data_order
        if self.changes:
            values["changes"] = list(self.changes)
        return json.dumps(values, indent=2, sort_keys=True)


def load(model_dir):
    path = os.path.join(model_dir, RUN_CONFIG)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path} not found; --model_dir must be a directory written by run_pretraining "
                                "or convert_checkpoint")
    with open(path, encoding="utf-8") as f:
        values = json.load(f)
    return RunState(model_dir, ElectraConfig.from_dict(values["electra_config"]), values["lowercase"],
                    values["vocab_sha256"], values.get("data_order"), tuple(values.get("changes", ())))


def load_training_record(model_dir):
    """The run's `training_record.json` as a dict; {} where none was written (a converted checkpoint)."""
    path = os.path.join(model_dir, TRAINING_RECORD)
    if not os.path.exists(path):
        return {}
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def write_training_record(model_dir, record):
    """Writes `record` (a JSON-able dict) as the run's `training_record.json`, atomically."""
    write_text_atomically(os.path.join(model_dir, TRAINING_RECORD), json.dumps(record, indent=2, sort_keys=True))


def data_sha256(data_dir, info):
    """What identifies the training data: its dataset_info.json, or (data without one) its shards' names and sizes.

    The build's duration is left out, so rebuilding the same data from the same inputs keeps the hash.
    """
    if info:
        text = json.dumps({k: v for k, v in info.items() if k != "elapsed_seconds"}, sort_keys=True)
    else:
        files = sorted(tf.io.gfile.glob(data_format.shard_pattern(data_dir)))
        text = "\n".join(f"{os.path.basename(f)} {tf.io.gfile.stat(f).length}" for f in files)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def data_order(data_dir, info, *, train_batch_size, gradient_accumulation_steps, shuffle_buffer, seed):
    """The `data_order` record of a run: its DATA_ORDER_FLAGS, the data's hash and (for messages) its path."""
    return {"train_batch_size": train_batch_size, "gradient_accumulation_steps": gradient_accumulation_steps,
            "shuffle_buffer": shuffle_buffer, "seed": seed, "data_dir": os.path.abspath(data_dir),
            "data_sha256": data_sha256(data_dir, info)}


def _changed_settings(old, config, order):
    """(flag, recorded, new) of every changeable setting that differs; unknown recorded values are skipped."""
    changed = [(f"--{k}", getattr(old.config, k), getattr(config, k)) for k in CHANGEABLE_MODEL_FIELDS
               if getattr(old.config, k) != getattr(config, k)]
    if old.data_order is not None and order is not None:
        recorded = old.data_order
        changed += [(f"--{k}", recorded[k], order[k]) for k in DATA_ORDER_FLAGS
                    if k in recorded and recorded[k] != order[k]]
        if recorded.get("data_sha256", order["data_sha256"]) != order["data_sha256"]:
            changed.append(("--data_dir", f"{recorded.get('data_dir')} (data sha256 {recorded['data_sha256'][:12]})",
                            f"{order['data_dir']} ({order['data_sha256'][:12]})"))
    return changed


def start_or_check(model_dir, config, vocab_file, lowercase, data_order=None, trained_step=0, allow_changed=False,
                   report=None):
    """Records a new run in model_dir, or checks that the recorded one matches; returns the RunState.

    Resuming with another architecture or vocabulary would load mismatched
    weights or read the data with the wrong ids: refused. Resuming with
    other data, batch size, accumulation, shuffle buffer, seed or masking
    (CHANGEABLE_MODEL_FIELDS) after `trained_step` > 0 steps would silently
    repeat or skip examples: refused unless `allow_changed`, and then
    recorded with the step in `changes`. Settings the model_dir does not
    record yet (older runs, converted checkpoints) are recorded.

    Args:
        model_dir: the run's directory.
        config: the ElectraConfig of this run.
        vocab_file: its vocabulary (copied into model_dir on the first start).
        lowercase: whether its data was lower-cased.
        data_order: `data_order(...)` of this run, or None (convert_checkpoint, which trains nothing).
        trained_step: the step of the newest checkpoint; at 0 nothing depends on the old settings.
        allow_changed: accept changed settings (--allow_changed_settings).
        report: called with one line for each note or warning, if given.

    Example:

    >>> import tempfile
    >>> model_dir = tempfile.mkdtemp()
    >>> vocab = os.path.join(model_dir, "v.txt")
    >>> _ = open(vocab, "w").write("[PAD]\\n[UNK]\\n[CLS]\\n[SEP]\\n[MASK]\\nthe\\n")
    >>> config = ElectraConfig.for_size("tiny", vocab_size=6, unk_id=1, cls_id=2, sep_id=3, mask_id=4)
    >>> state = start_or_check(model_dir, config, vocab, True)
    >>> load(model_dir).config == config
    True
    """
    report = report or (lambda line: None)
    new = RunState(model_dir, config, lowercase, file_sha256(vocab_file), data_order)
    if not os.path.exists(os.path.join(model_dir, RUN_CONFIG)):
        os.makedirs(model_dir, exist_ok=True)
        copy_file_atomically(vocab_file, new.vocab_file)
        write_text_atomically(os.path.join(model_dir, RUN_CONFIG), new.to_json())
        return new
    old = load(model_dir)
    changed = [f"{k}: {v} -> {config.to_dict()[k]}" for k, v in old.config.to_dict().items()
               if config.to_dict()[k] != v and k != "seed" and k not in CHANGEABLE_MODEL_FIELDS]
    if changed:
        raise ValueError(f"{model_dir} holds a run with another model config ({'; '.join(changed)}); "
                         "use a new --model_dir or the original flags")
    if old.vocab_sha256 != new.vocab_sha256:
        raise ValueError(f"{model_dir} was trained with another vocabulary than {vocab_file}; "
                         "use the original vocabulary or a new --model_dir")
    if data_order is None:  # a caller that trains nothing: keep what is recorded
        return old
    changes = old.changes
    settings = _changed_settings(old, config, data_order)
    listed = "; ".join(f"{flag} recorded {was}, now {now}" for flag, was, now in settings)
    if settings and trained_step:
        if not allow_changed:
            raise ValueError(
                f"{model_dir} was trained to step {trained_step} with other settings ({listed}); resuming would "
                "silently change which examples it sees. Use the recorded values, a new --model_dir, or "
                f"--allow_changed_settings to continue with a different data order from step {trained_step} on")
        report(f"warning: continuing from step {trained_step} with changed settings ({listed}); the data order "
               "differs from the recorded run's from here on (--allow_changed_settings)")
        changes += ({"step": trained_step, "settings": {flag: [was, now] for flag, was, now in settings}},)
    elif settings:
        report(f"note: nothing trained yet in {model_dir}; recording the new settings ({listed})")
    if old.data_order is None:
        report(f"note: {model_dir} did not record its data order (an older or a converted run); "
               "recording this run's, which later resumes must keep")
    elif old.data_order.get("data_dir") != data_order["data_dir"] and not settings:
        report(f"note: the data moved from {old.data_order.get('data_dir')} to {data_order['data_dir']} "
               "(same content)")
    new = dataclasses.replace(new, changes=changes)
    if new.to_json() != old.to_json():
        write_text_atomically(os.path.join(model_dir, RUN_CONFIG), new.to_json())
    return new


def training_checkpoint(model):
    """A `tf.train.Checkpoint` of all that training changes in a compiled Keras `model`: what a resume restores.

    The weights, the optimizer (its step and slots) and the dropout layers'
    seed generators, which the model's checkpoint leaves out. Pre-training
    keys its masks by step and needs no state, but a layer used without keys
    (fine-tuning) draws from its generator, so they are saved and restored
    with the rest, and checkpoints holding them keep restoring.

    Args:
        model: a compiled Keras model.
    """
    weights = {id(w) for w in model.weights}
    seeds = tf.Module()
    seeds.states = [v for v in model.variables if id(v) not in weights]
    return tf.train.Checkpoint(model=model, optimizer=model.optimizer, dropout_seeds=seeds)


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
