"""Making a model_dir sound before a run continues in it.

A run stopped at any moment (SIGKILL, a crash, a lost machine) can leave:

- temporaries: `checkpoints/ckpt-N_temp/` (a checkpoint being written;
  TensorFlow merges it into `ckpt-N.*` and then deletes it),
  `checkpoints/checkpoint.tmp*` (TensorFlow's atomic write of the list),
  `.<name>.tmp-*` and `.<name>.old-*` (utils/atomic.py's staging, e.g. of the
  export) and `.worker-*/` (a non-chief worker's share of a checkpoint);
- a checkpoint list (`checkpoints/checkpoint`) that names a checkpoint whose
  files are gone (a kill during tf.train.CheckpointManager's clean-up, which
  writes the list before deleting) or misses one that was written whole;
- a damaged checkpoint (a file lost or cut short);
- TensorBoard events past the step the run resumes from, which the resumed
  run would log a second time.

Only the chief calls the functions that change anything; they run before
training, when no other process of the run writes to the model_dir.
"""

import dataclasses
import glob
import os
import re
import shutil

import tensorflow as tf
from google.protobuf import text_format

from electra_tf.utils.atomic import staged_path, write_text_atomically

CHECKPOINT_NAME = "ckpt"  # tf.train.CheckpointManager's default checkpoint_name
LIST_FILE = "checkpoint"  # the CheckpointState that tf.train.latest_checkpoint reads
_STEP = re.compile(rf"^{CHECKPOINT_NAME}-(\d+)(?:\.index|\.data-\d{{5}}-of-(\d{{5}})|_temp)$")
_STAGING = re.compile(r"^\.(.+)\.(tmp|old)-[^/]*$")


def _size(path):
    if os.path.isfile(path):
        return os.path.getsize(path)
    return sum(os.path.getsize(os.path.join(root, name)) for root, _, names in os.walk(path) for name in names)


def _megabytes(num_bytes):
    return f"{num_bytes / 1e6:.1f} MB"


def _remove(path):
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    else:
        os.remove(path)


def _is_temporary(sub, name, checkpoint_dirs):
    if _STAGING.match(name):
        return True
    if sub in checkpoint_dirs:
        return name.endswith("_temp") or name.startswith(LIST_FILE + ".tmp")
    return sub == "" and name.startswith(".worker-")


def sweep_temporaries(model_dir, subdirs=("", "checkpoints", "export", "train"), checkpoint_dirs=("checkpoints",)):
    """Removes what interrupted writes left in `model_dir`; returns one description per item.

    A directory replacement interrupted between its two renames (see
    `utils.atomic.atomic_directory`) is undone: the previous directory is put back.

    Args:
        model_dir: a run's model_dir (or fine-tuning's output_dir).
        subdirs: the directories of `model_dir` to look in ("" is itself).
        checkpoint_dirs: those of `subdirs` that hold TensorFlow checkpoints.

    Returns:
        Strings like `"checkpoints/ckpt-20_temp (12.3 MB)"`, for the report.

    Example:

    >>> import tempfile
    >>> model_dir = tempfile.mkdtemp()
    >>> os.makedirs(os.path.join(model_dir, "checkpoints", "ckpt-20_temp"))
    >>> sweep_temporaries(model_dir)
    ['checkpoints/ckpt-20_temp (0.0 MB)']
    """
    found = []
    for sub in subdirs:
        directory = os.path.join(model_dir, sub)
        if not os.path.isdir(directory):
            continue
        for name in sorted(os.listdir(directory)):
            if not _is_temporary(sub, name, checkpoint_dirs):
                continue
            path = os.path.join(directory, name)
            staging = _STAGING.match(name)
            target = os.path.join(directory, staging.group(1)) if staging else None
            previous = os.path.join(path, "previous")
            if staging and staging.group(2) == "old" and os.path.isdir(previous) and not os.path.exists(target):
                os.replace(previous, target)
                found.append(f"{os.path.relpath(target, model_dir)} put back (its replacement was interrupted)")
            found.append(f"{os.path.relpath(path, model_dir)} ({_megabytes(_size(path))})")
            _remove(path)
    return found


@dataclasses.dataclass
class CheckpointFiles:
    """One checkpoint number's files: `missing` is empty when it is whole on disk."""

    step: int
    prefix: str
    present: list
    missing: list

    @property
    def name(self):
        return os.path.basename(self.prefix)


def _listed(checkpoint_dir):
    """(paths named by the list, their timestamps, last_preserved_timestamp); empty when there is no list."""
    try:
        state = tf.train.get_checkpoint_state(checkpoint_dir)
    except ValueError:  # a list without a latest checkpoint
        state = None
    if state is None:
        return [], [], None
    timestamps = list(state.all_model_checkpoint_timestamps)
    paths = list(state.all_model_checkpoint_paths)
    if len(timestamps) != len(paths):
        timestamps = [state.last_preserved_timestamp] * len(paths)
    return paths, timestamps, state.last_preserved_timestamp


def scan_checkpoints(checkpoint_dir):
    """Every checkpoint the list names or the directory holds a file of, newest first.

    A checkpoint is whole when its `.index` file and every data shard the
    shard files' names call for are present. Whether the files can be read
    is found out by restoring them.
    """
    steps = {}
    names = os.listdir(checkpoint_dir) if os.path.isdir(checkpoint_dir) else []
    listed, _, _ = _listed(checkpoint_dir)
    for name in names + [os.path.basename(p) + ".index" for p in listed]:
        match = _STEP.match(name)
        if match and not name.endswith("_temp"):
            steps.setdefault(int(match.group(1)), set())
    result = []
    for step in sorted(steps, reverse=True):
        prefix = os.path.join(checkpoint_dir, f"{CHECKPOINT_NAME}-{step}")
        present = sorted(os.path.basename(p) for p in glob.glob(glob.escape(prefix) + ".*"))
        shards = {int(m.group(2)) for m in map(_STEP.match, present) if m and m.group(2)}
        wanted = [f"{CHECKPOINT_NAME}-{step}.index"]
        for count in sorted(shards) or [1]:
            wanted += [f"{CHECKPOINT_NAME}-{step}.data-{i:05d}-of-{count:05d}" for i in range(count)]
        result.append(CheckpointFiles(step, prefix, present, [w for w in wanted if w not in present]))
    return result


def listed_names(checkpoint_dir):
    """The checkpoint names (`ckpt-N`) the list names, oldest first."""
    return [os.path.basename(p) for p in _listed(checkpoint_dir)[0]]


def write_checkpoint_list(checkpoint_dir, keep, latest):
    """Rewrites the checkpoint list to name `keep` (CheckpointFiles, any order) with `latest` last.

    Timestamps of checkpoints already listed are kept, so
    tf.train.CheckpointManager goes on deleting the oldest first; others get
    their index file's time. Returns whether the list changed.
    """
    listed, timestamps, last_preserved = _listed(checkpoint_dir)
    by_name = {os.path.basename(p): t for p, t in zip(listed, timestamps)}
    keep = sorted((c for c in keep if c.step <= latest.step), key=lambda c: c.step)
    names = [c.name for c in keep]
    if names == [os.path.basename(p) for p in listed] and listed and os.path.basename(listed[-1]) == latest.name:
        return False
    stamps = [by_name.get(c.name) or os.path.getmtime(c.prefix + ".index") for c in keep]
    # Checkpoints newer than the last preserved time are the ones the manager may delete.
    oldest = min(stamps) - 1.0
    last_preserved = oldest if last_preserved is None else min(last_preserved, oldest)
    state = tf.compat.v1.train.generate_checkpoint_state_proto(
        checkpoint_dir, latest.name, all_model_checkpoint_paths=names, all_model_checkpoint_timestamps=stamps,
        last_preserved_timestamp=last_preserved)
    write_text_atomically(os.path.join(checkpoint_dir, LIST_FILE), text_format.MessageToString(state))
    return True


def trim_events(log_dir, step):
    """Drops TensorBoard events after `step` from the event files in `log_dir`; returns how many were dropped.

    A run resumed from the checkpoint at `step` logs the steps after it
    again; without this, TensorBoard would show them twice. A file is
    rewritten (atomically) only if it holds such events; a torn last record
    (a kill mid-write) is dropped with them.
    """
    from tensorflow.core.util import event_pb2

    dropped = 0
    for path in sorted(glob.glob(os.path.join(log_dir, "events.out.tfevents.*"))):
        kept, late = [], 0
        try:
            for record in tf.data.TFRecordDataset(path):
                raw = record.numpy()
                if event_pb2.Event.FromString(raw).step > step:
                    late += 1
                else:
                    kept.append(raw)
        except tf.errors.DataLossError:
            late += 1
        if late:
            with staged_path(path) as staging, tf.io.TFRecordWriter(staging) as writer:
                for raw in kept:
                    writer.write(raw)
            dropped += late
    return dropped


def describe_missing(checkpoint):
    """What is wrong with a checkpoint's files, for messages: `"ckpt-20.index is missing"`."""
    if not checkpoint.present:
        return "its files are gone"
    missing = checkpoint.missing
    more = " ..." if len(missing) > 3 else ""
    return f"{', '.join(missing[:3])}{more} {'is' if len(missing) == 1 else 'are'} missing"
