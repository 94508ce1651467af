"""The one pre-training loop, for every tf.distribute strategy.

A `tf.function` runs up to `steps_per_loop` calls of `strategy.run(train_step)`;
between calls the host logs, checkpoints and checks for trouble. Keras
`fit` is not used: it fails under MultiWorkerMirroredStrategy
(keras-team/keras#20585).

A stop request (SIGTERM, SIGINT) ends the compiled loop after the current
step: the loop reads a flag before each step, and the host sets it. Python
runs signal handlers only in the main thread and only between bytecodes, so
while the main thread waits inside a compiled call no handler runs; the
compiled loop therefore runs in a helper thread and the main thread waits
for it in short slices.
"""

import dataclasses
import os
import shutil
import threading
import time

import keras
import numpy as np
import tensorflow as tf

from electra_tf.data import format as data_format
from electra_tf.data.input_pipeline import make_pretraining_dataset
from electra_tf.pretraining.pretrainer import ElectraPretrainer
from electra_tf.training import run_dir, run_state
from electra_tf.training.optimization import create_optimizer
from electra_tf.training.summaries import EXAMPLE_TAG, example_table, scalar_tag
from electra_tf.utils import machine, stop_signals
from electra_tf.utils.errors import EXIT_NON_FINITE, UserError
from electra_tf.utils.progress import ProgressBar


@dataclasses.dataclass(frozen=True)
class LoopOptions:
    train_batch_size: int
    steps_per_loop: int
    save_checkpoints_steps: int
    keep_checkpoint_max: int
    log_every_steps: int
    example_every_steps: int
    shuffle_buffer: int = 10000
    gradient_accumulation_steps: int = 1
    jit_compile: bool = False
    # Recompute each transformer block in the backward pass (ElectraPretrainer): less memory, same update.
    rematerialize: bool = False
    precision_policy: str = "float32"
    # Resume even if a setting that decides the data order changed (run_state.start_or_check).
    allow_changed_settings: bool = False
    # For tests of the non-finite-loss stop (tests/nan_run.py): poison the weights at this step.
    inject_nan_at_step: int = 0


class NonFiniteLoss(UserError):
    """Training diverged; the message names the last good checkpoint, which is left intact."""

    def __init__(self, message):
        super().__init__(message, EXIT_NON_FINITE)


def is_chief(strategy):
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type or isinstance(strategy, tf.distribute.TPUStrategy):
        return True
    spec = resolver.cluster_spec().as_dict()
    chief_type = "chief" if "chief" in spec else "worker"
    return resolver.task_type == chief_type and resolver.task_id == 0


def _progress_fields(metrics, shown):
    name, label = shown
    return [f"loss {metrics['loss']:.4f}", f"{label} {metrics[name]:.3f}"]


def _finite(value):
    return bool(np.isfinite(float(value)))


class PretrainingLoop:
    """Owns the model, optimizer, data iterator, checkpoints and summaries of one run."""

    def __init__(self, settings, options, strategy):
        self.settings = settings
        self.options = options
        self.strategy = strategy
        self.config = settings.model
        self.chief = is_chief(strategy)
        self.multi_worker = isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)
        self.total_steps = settings.optimizer.num_train_steps
        replicas = strategy.num_replicas_in_sync
        parts = replicas * options.gradient_accumulation_steps
        if options.train_batch_size % parts:
            raise ValueError(f"--train_batch_size {options.train_batch_size} is not divisible by the {replicas} "
                             f"replicas x {options.gradient_accumulation_steps} accumulation steps; "
                             f"pick a multiple of {parts}")
        self.pattern = data_format.shard_pattern(settings.data_dir)
        candidates = self._check_model_dir()
        keras.mixed_precision.set_dtype_policy(options.precision_policy)
        with strategy.scope():
            keras.utils.set_random_seed(self.config.seed)
            self.model = ElectraPretrainer(self.config, self.total_steps, options.rematerialize)
            self.model.compile(optimizer=create_optimizer(settings.optimizer))
        self.optimizer = self.model.optimizer
        checkpoint = run_state.training_checkpoint(self.model)
        self.restored_from = self._restore(checkpoint, candidates)
        self._check_workers_agree()
        self.manager = tf.train.CheckpointManager(
            checkpoint, self._checkpoint_dir(), max_to_keep=options.keep_checkpoint_max,
            step_counter=self.optimizer.iterations)
        self.saved_step = self.step
        # What training did so far (training_record.json), carried over a resume: the wall time adds up.
        self.record = run_state.load_training_record(settings.model_dir) if self.step else {}
        self._wall_started = time.time()
        self.iterator = iter(strategy.distribute_datasets_from_function(self._dataset_fn(self.step)))
        self.sample = next(iter(make_pretraining_dataset(
            self.pattern, 1, self.config.max_seq_length, shuffle=False, repeat=False)))
        self.vocab = None
        log_dir = os.path.join(settings.model_dir, "train")
        if self.chief:
            dropped = run_dir.trim_events(log_dir, self.step)
            if dropped:
                self._say(f"dropped {dropped} TensorBoard events after step {self.step} from {log_dir}; "
                          "this run logs those steps again")
        self.writer = tf.summary.create_file_writer(log_dir) if self.chief else tf.summary.create_noop_writer()
        # Set by the host on a stop request; the compiled loop reads it before each step.
        self._stop_requested = tf.Variable(False, trainable=False, name="stop_requested")
        self._loop = self._make_loop()

    def _check_model_dir(self):
        """Clears what an interrupted run left and checks the recorded settings; returns the checkpoints on disk."""
        settings, options = self.settings, self.options
        if self.chief and os.path.isdir(settings.model_dir):
            swept = run_dir.sweep_temporaries(settings.model_dir)
            if swept:
                self._say(f"removed what an interrupted run left: {', '.join(swept)}")
        # Every worker resumes from the chief's checkpoints (the others keep none).
        candidates = run_dir.scan_checkpoints(os.path.join(settings.model_dir, run_state.CHECKPOINTS))
        if self.chief:
            order = run_state.data_order(
                settings.data_dir, settings.dataset_info, train_batch_size=options.train_batch_size,
                gradient_accumulation_steps=options.gradient_accumulation_steps,
                shuffle_buffer=options.shuffle_buffer, seed=self.config.seed)
            run_state.start_or_check(
                settings.model_dir, self.config, settings.vocab_file, settings.dataset_info.get("lowercase", True),
                data_order=order, trained_step=max((c.step for c in candidates if not c.missing), default=0),
                allow_changed=options.allow_changed_settings, report=self._say)
        return candidates

    def _say(self, message):
        if self.chief:
            print(message, flush=True)

    def _restore(self, checkpoint, candidates):
        """Restores the newest checkpoint that can be read; returns it, or None to start from step 0.

        Newer ones that cannot be read (a file lost or cut short) are named in
        a warning, dropped from the checkpoint list and left on disk; the
        list is rewritten to the whole checkpoints up to the restored one.
        """
        unreadable, self._skipped = [], set()
        for candidate in candidates:
            if candidate.missing:
                reason = run_dir.describe_missing(candidate)
            else:
                try:
                    checkpoint.restore(candidate.prefix)
                    reason = None
                except (tf.errors.OpError, ValueError) as e:
                    reason = str(getattr(e, "message", e)).strip().splitlines()[0]
            if reason:
                unreadable.append(f"{candidate.name} ({reason})")
                self._skipped.add(candidate.name)
                continue
            if unreadable:
                self._say(f"warning: cannot read {'; '.join(unreadable)}; resuming from {candidate.name}, the "
                          "newest checkpoint that can be read. The damaged files are left in place; saving that "
                          "step again replaces them")
            if self.chief:
                self._repair_list(candidates, candidate)
            return candidate.prefix
        if unreadable:
            checkpoint_dir = os.path.dirname(candidates[0].prefix)
            raise UserError(f"no checkpoint in {checkpoint_dir} can be read: {'; '.join(unreadable)}. To start "
                            f"over from step 0, move {checkpoint_dir} away (or use a new --model_dir)")
        return None

    def _repair_list(self, candidates, restored):
        checkpoint_dir = os.path.dirname(restored.prefix)
        whole = [c for c in candidates if not c.missing and c.step <= restored.step]
        listed = run_dir.listed_names(checkpoint_dir)
        if run_dir.write_checkpoint_list(checkpoint_dir, whole, restored):
            named = {c.name for c in whole}
            gone = [name for name in listed if name not in named and name not in self._skipped]
            added = [name for name in sorted(named) if name not in listed]
            self._say(f"repaired the checkpoint list in {checkpoint_dir}: it now names "
                      f"{', '.join(c.name for c in whole)}"
                      + (f"; dropped {', '.join(gone)} (files gone)" if gone else "")
                      + (f"; added {', '.join(added)} (whole on disk)" if added else ""))
        # What an interrupted clean-up left of a checkpoint older than the restored one.
        for c in candidates:
            if c.missing and c.present and c.step < restored.step:
                for name in c.present:
                    os.remove(os.path.join(checkpoint_dir, name))
                self._say(f"removed the remains of {c.name} ({', '.join(c.present)}), whose deletion was interrupted")

    def _check_workers_agree(self):
        """Stops with a clear message if workers restored different steps (their model_dirs differ)."""
        if not self.multi_worker:
            return

        @tf.function
        def gather_steps():
            per_replica = self.strategy.run(lambda: tf.reshape(tf.convert_to_tensor(self.optimizer.iterations), [1]))
            return self.strategy.gather(per_replica, axis=0)

        steps = sorted(set(gather_steps().numpy().tolist()))
        if len(steps) > 1:
            raise UserError(f"the workers resumed from different steps ({', '.join(map(str, steps))}); --model_dir "
                            "must be one directory that every worker sees (a shared file system)")

    def _dataset_fn(self, start_step):
        """Each input pipeline's dataset, positioned after `start_step` global batches.

        The reader is deterministic for a seed, so the data order is a
        function of the step alone: resuming skips the batches already
        trained on (reading them, at reader speed) instead of storing the
        iterator, which tf.distribute cannot checkpoint in general.
        """
        def dataset_fn(context):
            accumulation = self.options.gradient_accumulation_steps
            micro_batch = self.options.train_batch_size // accumulation
            return make_pretraining_dataset(
                self.pattern, context.get_per_replica_batch_size(micro_batch),
                self.config.max_seq_length, input_context=context, shuffle=True, seed=self.config.seed,
                deterministic=True, shuffle_buffer=self.options.shuffle_buffer,
                skip_batches=start_step * accumulation, batches_per_step=accumulation)
        return dataset_fn

    def _checkpoint_dir(self):
        # Every worker must take part in a save; only the chief's copy is kept.
        if self.chief:
            return os.path.join(self.settings.model_dir, run_state.CHECKPOINTS)
        resolver = self.strategy.cluster_resolver
        return os.path.join(self.settings.model_dir, f".worker-{resolver.task_type}-{resolver.task_id}")

    def _make_loop(self):
        step_fn = tf.function(self.model.train_step, jit_compile=self.options.jit_compile) \
            if self.options.jit_compile else self.model.train_step

        accumulate = self.options.gradient_accumulation_steps

        def stop_requested():
            flag = tf.cast(self._stop_requested.read_value(), tf.int32)
            if self.multi_worker:
                # Every worker must leave the loop at the same step, or the others wait in a collective.
                votes = self.strategy.run(lambda: tf.identity(flag))
                flag = self.strategy.reduce(tf.distribute.ReduceOp.SUM, votes, axis=None)
            return flag > 0

        @tf.function
        def loop(iterator, num_steps):
            done = tf.constant(0)
            stop = stop_requested()
            while tf.logical_and(done < num_steps, tf.logical_not(stop)):
                batches = [next(iterator) for _ in range(accumulate)]
                self.strategy.run(step_fn, args=(batches if accumulate > 1 else batches[0],))
                done += 1
                stop = stop_requested()
            return stop

        return loop

    def _build(self):
        """Traces and optimizes the loop by running it for 0 steps, here in the main thread.

        Keras keeps some global state (the dtype policy) per thread, so the
        trace must not happen in the helper thread; and once built, the
        first real call starts training at once.
        """
        self._loop(self.iterator, tf.constant(0, tf.int32))

    def _run_loop(self, chunk, stop):
        """Runs up to `chunk` steps in a helper thread; returns whether a stop request ended them early."""
        outcome = {}

        def target():
            try:
                outcome["stopped"] = bool(self._loop(self.iterator, tf.constant(chunk, tf.int32)))
            except BaseException as e:  # re-raised in the main thread
                outcome["error"] = e

        thread = threading.Thread(target=target, name="training-loop", daemon=True)
        thread.start()
        while thread.is_alive():
            thread.join(0.05)
            if stop.received and not bool(self._stop_requested.numpy()):
                if not self.multi_worker and self.step == self.saved_step:
                    # Nothing trained since the last checkpoint (resuming, still skipping data): nothing to save.
                    print(f"\nstopped by {stop.received} at step {self.saved_step}, which is saved. Re-run the same "
                          "command to resume.", flush=True)
                    os._exit(0)
                self._stop_requested.assign(True)
        if "error" in outcome:
            raise outcome["error"]
        return outcome["stopped"]

    @property
    def step(self):
        return int(self.optimizer.iterations.numpy())

    def _save(self):
        path = self.manager.save(checkpoint_number=self.step)
        wall = time.time()
        self.record.update(wall_seconds=round(self.record.get("wall_seconds", 0.0) + wall - self._wall_started, 1))
        self._wall_started = wall
        self.saved_step = self.step
        if not self.chief:
            shutil.rmtree(self._checkpoint_dir(), ignore_errors=True)
        else:
            self._write_record()
        return path

    def _accelerators(self):
        replicas = self.strategy.num_replicas_in_sync
        if isinstance(self.strategy, tf.distribute.TPUStrategy):
            return f"TPU, {replicas} cores"
        gpus = tf.config.list_physical_devices("GPU")
        names = sorted({tf.config.experimental.get_device_details(g).get("device_name", "GPU") for g in gpus})
        shown = f"{len(gpus)} x {' / '.join(names)}" if gpus else ""
        if self.multi_worker:
            shown = f"{shown}{', ' if shown else ''}{replicas} replicas over several workers"
        return shown

    def _write_record(self):
        """training_record.json as of this checkpoint (what the exports' model cards state)."""
        settings = self.settings
        self.record.update(
            step=self.step, num_train_steps=self.total_steps, train_batch_size=self.options.train_batch_size,
            examples=self.step * self.options.train_batch_size, max_seq_length=self.config.max_seq_length,
            hardware=machine.describe(self._accelerators()), precision=self.options.precision_policy,
            optimizer=dataclasses.asdict(settings.optimizer), data_dir=os.path.abspath(settings.data_dir),
            dataset=data_format.dataset_summary(settings.dataset_info))
        run_state.write_training_record(settings.model_dir, self.record)

    def _check_finite(self, metrics):
        if _finite(metrics["loss"]):
            return
        weights_finite = all(np.isfinite(v.numpy()).all() for v in self.model.trainable_variables)
        if self.options.precision_policy == "mixed_float16" and weights_finite:
            return  # loss scaling skipped the step and lowered the scale: not a failure
        last = self.manager.latest_checkpoint
        raise NonFiniteLoss(
            f"non-finite loss at step {self.step}; stopped without saving. The last good checkpoint "
            f"({last or 'none'}) is intact: lower --learning_rate or raise --num_warmup_steps, then re-run "
            "to resume from it")

    def _write_scalars(self, metrics, seconds, steps):
        examples = steps * self.options.train_batch_size
        values = {**metrics, "learning_rate": self.optimizer.learning_rate,
                  "grad_norm": self.model.grad_norm_tracker.result(), "examples_per_second": examples / seconds,
                  "tokens_per_second": examples * self.config.max_seq_length / seconds,
                  "seconds_per_step": seconds / steps}
        with self.writer.as_default(step=self.step):
            for name, value in values.items():
                tf.summary.scalar(scalar_tag(name), value)
        self.writer.flush()
        self.record.update(metrics={scalar_tag(name): round(float(value), 6) for name, value in metrics.items()},
                           metrics_step=self.step)

    def _write_example(self):
        if isinstance(self.strategy, tf.distribute.TPUStrategy):
            return  # the eager host-side forward pass needs variables on the host
        if self.vocab is None:
            from electra_tf.text.vocab import load_vocab
            self.vocab = load_vocab(self.settings.vocab_file)
        outputs = self.model(self.sample, training=False, step=self.step)
        with self.writer.as_default(step=self.step):
            tf.summary.text(EXAMPLE_TAG, example_table(outputs, self.vocab))
        self.writer.flush()

    def _poison_weights(self):
        variable = self.model.trainable_variables[0]
        variable.assign(variable * float("nan"))

    def _next_chunk(self):
        step = self.step
        to_boundary = self.options.save_checkpoints_steps - step % self.options.save_checkpoints_steps
        chunk = min(self.options.steps_per_loop, self.total_steps - step, to_boundary)
        if self.options.inject_nan_at_step > step:
            chunk = min(chunk, self.options.inject_nan_at_step - step)
        return chunk

    def run(self, stop=None):
        """Trains to num_train_steps; returns how it ended: "done" or the stop signal's name.

        Args:
            stop: the process's `utils.stop_signals.StopSignals` (run_pretraining
                installs it first thing); by default one is installed for the
                duration of the call.
        """
        own_handler = stop is None
        stop = stop or stop_signals.install()
        stop.reinstall()
        progress = ProgressBar(self.total_steps, "steps", "ex/s", rate_per_unit=self.options.train_batch_size)
        start_step = self.step
        if start_step:
            print(f"resuming from {self.restored_from} at step {start_step}", flush=True)
        if start_step < self.total_steps:
            started = time.time()
            self._build()
            print(f"built the training loop in {time.time() - started:.1f} s; training from step {start_step}",
                  flush=True)
        window_start, window_steps = time.time(), 0
        stopped_by = None
        try:
            stop.set_mode(stop_signals.RECORD)
            while self.step < self.total_steps and not stopped_by:
                if stop.received and not self.multi_worker:
                    # (Other workers learn of it inside the next loop, and stop with this one there.)
                    stopped_by = stop.received
                    break
                if self.options.inject_nan_at_step and self.step == self.options.inject_nan_at_step:
                    self._poison_weights()
                before = self.step
                chunk = self._next_chunk()
                if self._run_loop(chunk, stop):
                    stopped_by = stop.received or "another worker's stop signal"
                window_steps += self.step - before
                if self.step == before:
                    break
                metrics = {k: float(v) for k, v in self.model.get_metrics_result().items()}
                self._check_finite(metrics)
                progress.update(self.step, _progress_fields(metrics, self.model.objective.progress_metric))
                if self.step // self.options.log_every_steps > before // self.options.log_every_steps \
                        or self.step == self.total_steps:
                    self._write_scalars(metrics, time.time() - window_start, window_steps)
                    self.model.reset_metrics()
                    self.model.grad_norm_tracker.reset_state()
                    window_start, window_steps = time.time(), 0
                if self.step // self.options.example_every_steps > before // self.options.example_every_steps:
                    self._write_example()
                if self.step % self.options.save_checkpoints_steps == 0 or self.step == self.total_steps:
                    self._save()
            stopped_by = stopped_by or stop.received
            if stopped_by and self.step < self.total_steps:
                if self.step > self.saved_step:
                    self._save()
                progress.close()
                saved = os.path.join(self.settings.model_dir, run_state.CHECKPOINTS, f"ckpt-{self.step}")
                print(f"stopped by {stopped_by} at step {self.step}; checkpoint written to {saved}. Re-run the "
                      "same command to resume.", flush=True)
                return stopped_by
            progress.close()  # the loop saved at num_train_steps
            return "done"
        finally:
            if own_handler:
                stop.uninstall()
