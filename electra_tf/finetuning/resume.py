"""What a fine-tuning output_dir records so that a stopped run continues where it stopped.

`finetuning_config.json` (written first) records the run's settings; a
re-run of an unfinished run (one without `eval_results.json`) must give the
same ones (`check_settings`). Each trial directory (the output_dir itself
for one trial, `trial_<k>/` for several) holds:

    trial_state.json        the step reached, the dev results of each epoch so far, the best epoch, and once
                            the trial is finished its result
    resume/ckpt-<step>      the training state at that step: weights, optimizer slots, the dropout layers'
                            random state (removed when the trial finishes)
    checkpoints/best-<epoch> the best epoch's weights

`trial_state.json` is written atomically after the checkpoints it names, so
it always describes files that are whole; a checkpoint it does not name
(a kill before the state was written) is removed when the run continues.
"""

import dataclasses
import glob
import hashlib
import json
import os
import shutil

from electra_tf.training import run_dir
from electra_tf.utils.atomic import write_text_atomically
from electra_tf.utils.errors import UserError

TRIAL_STATE = "trial_state.json"
RESUME_DIR = "resume"
_SUBDIRS = ("", "checkpoints", RESUME_DIR, "export", "train", "eval", "predictions")
_CHECKPOINT_DIRS = ("checkpoints", RESUME_DIR)


@dataclasses.dataclass
class TrialState:
    """One trial's progress: `step` updates done, `history` of per-epoch dev results, the `best` entry.

    `metrics` holds Keras' running metric values at `step` (so a run resumed
    mid-epoch shows and logs the same running loss); `result` is set when the
    trial is finished; `seconds` adds up the wall time of every invocation up
    to its last save.

    Example:

    >>> trial_dir = tempfile.mkdtemp()
    >>> save_trial(trial_dir, TrialState(step=4))
    >>> load_trial(trial_dir, print).step  # its resume/ckpt-4 was never written
    warning: resume/ckpt-4 in ... cannot be read; training this trial again from its start
    0
    """

    step: int = 0
    history: list = dataclasses.field(default_factory=list)
    best: dict = None
    best_checkpoint: str = None  # relative to the trial directory
    metrics: dict = None
    result: dict = None
    seconds: float = 0.0  # wall time spent on the trial so far, over every invocation that trained it

    @property
    def finished(self):
        return self.result is not None


def resume_prefix(trial_dir, step):
    """The training-state checkpoint of `trial_dir` at `step`."""
    return os.path.join(trial_dir, RESUME_DIR, f"{run_dir.CHECKPOINT_NAME}-{step}")


def best_prefix(epoch):
    """The best weights' checkpoint of a trial, relative to its directory (as `TrialState.best_checkpoint`)."""
    return os.path.join("checkpoints", f"best-{epoch}")


def sweep(directory, report):
    """Removes what interrupted writes left in an output or trial directory, saying what."""
    swept = run_dir.sweep_temporaries(directory, _SUBDIRS, _CHECKPOINT_DIRS)
    if swept:
        report(f"removed what an interrupted run left: {', '.join(swept)}")


def _whole(prefix):
    """Whether a checkpoint's index and every data shard its shards' names call for are on disk."""
    shards = glob.glob(glob.escape(prefix) + ".data-*-of-*")
    counts = {int(path.rsplit("-of-", 1)[1]) for path in shards}
    return os.path.exists(prefix + ".index") and len(counts) == 1 and len(shards) == counts.pop()


def load_trial(trial_dir, report):
    """The state recorded in `trial_dir` (a fresh one if none), after removing what it does not name.

    A state whose checkpoints are not whole (damaged on disk) is dropped
    with a warning: the trial then trains again from its start, which gives
    the same result.
    """
    sweep(trial_dir, report)
    path = os.path.join(trial_dir, TRIAL_STATE)
    state = TrialState()
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            state = TrialState(**json.load(f))
    damaged = []
    if state.step and not state.finished and not _whole(resume_prefix(trial_dir, state.step)):
        damaged.append(os.path.relpath(resume_prefix(trial_dir, state.step), trial_dir))
    if state.best_checkpoint and not _whole(os.path.join(trial_dir, state.best_checkpoint)):
        damaged.append(state.best_checkpoint)
    if damaged:
        report(f"warning: {', '.join(damaged)} in {trial_dir} cannot be read; training this trial again from its "
               "start")
        state = TrialState()
        os.remove(path)
    _remove_unnamed(trial_dir, state)
    return state


def save_trial(trial_dir, state):
    """Records `state` (its checkpoints are written), then removes the checkpoints it no longer names."""
    write_text_atomically(os.path.join(trial_dir, TRIAL_STATE), json.dumps(dataclasses.asdict(state), indent=2))
    _remove_unnamed(trial_dir, state)


def _remove_unnamed(trial_dir, state):
    if state.finished or not state.step:
        shutil.rmtree(os.path.join(trial_dir, RESUME_DIR), ignore_errors=True)
    keep = {state.best_checkpoint}
    if state.step and not state.finished:
        keep.add(os.path.join(RESUME_DIR, f"{run_dir.CHECKPOINT_NAME}-{state.step}"))
    for checkpoint_dir in _CHECKPOINT_DIRS:
        for path in glob.glob(os.path.join(glob.escape(trial_dir), checkpoint_dir, "*-*.*")):
            if os.path.join(checkpoint_dir, os.path.basename(path).split(".", 1)[0]) not in keep:
                os.remove(path)


def data_sha256(data):
    """What identifies the training and dev examples (their text and labels), for `check_settings`."""
    examples = (data.train.examples, [split.examples for split in data.dev])
    return hashlib.sha256(repr(examples).encode("utf-8")).hexdigest()


# Entries of finetuning_config.json that follow from others: a changed flag is named once, by itself.
_DERIVED = ("updates", "train_examples", "label_scale", "chunk", "bioes")
# The model config's fields that fine-tuning's own flags set (named by those flags in `hyperparameters`).
_SET_BY_FINETUNING = ("max_seq_length", "hidden_dropout_prob", "attention_probs_dropout_prob")
_NAMES = {"task": "--task", "regression": "--regression", "pair": "--text_b_column", "model": "--init_checkpoint",
          "lowercase": "--lowercase", "tag_column": "--tag_column", "data_sha256": "the training or dev data"}


def _settings(record):
    """{name a user recognises: value} of every setting a finetuning_config.json records."""
    flat = {}
    for key, value in record.items():
        if key in _DERIVED:
            continue
        if key == "electra_config":
            flat.update({f"the model's {k}": v for k, v in value.items() if k not in _SET_BY_FINETUNING})
        elif isinstance(value, dict):  # hyperparameters, qa: one flag per entry
            flat.update({f"--{k}": v for k, v in value.items()})
        else:
            flat[_NAMES.get(key, key)] = value
    return flat


def changed_settings(recorded, record):
    """(name, recorded value, new value) of each setting that differs between two finetuning_config.json records.

    Example:

    >>> changed_settings({"hyperparameters": {"learning_rate": 2e-3, "seed": 0}, "updates": 12},
    ...                  {"hyperparameters": {"learning_rate": 1e-3, "seed": 0}, "updates": 12})
    [('--learning_rate', 0.002, 0.001)]
    """
    old, new = _settings(recorded), _settings(record)
    return [(name, old.get(name), new.get(name)) for name in dict.fromkeys([*old, *new])
            if old.get(name) != new.get(name)]


def _shown(value):
    if isinstance(value, (list, tuple)) and len(value) > 6:
        return "[" + ", ".join(map(str, value[:6])) + ", ...]"
    if isinstance(value, str) and len(value) == 64 and all(c in "0123456789abcdef" for c in value):
        return f"sha256 {value[:12]}"
    return str(value)


def check_settings(output_dir, record, marker):
    """Raises a one-line UserError naming each setting of `record` that differs from the one recorded in output_dir.

    Args:
        output_dir: an unfinished run's output_dir.
        record: this run's finetuning_config.json contents.
        marker: the name of that file.
    """
    with open(os.path.join(output_dir, marker), encoding="utf-8") as f:
        recorded = json.load(f)
    changed = changed_settings(recorded, json.loads(json.dumps(record)))
    if changed:
        listed = "; ".join(f"{name} recorded {_shown(old)}, now {_shown(new)}" for name, old, new in changed)
        raise UserError(f"--output_dir {output_dir} holds an unfinished run with other settings ({listed}); re-run "
                        "with the recorded values to continue it, or pass --overwrite to start over")
