"""The one pre-training loop, for every tf.distribute strategy.

A `tf.function` runs `steps_per_loop` calls of `strategy.run(train_step)`;
between calls the host logs, checkpoints and checks for trouble. Keras
`fit` is not used: it fails under MultiWorkerMirroredStrategy
(keras-team/keras#20585).
"""

import dataclasses
import os
import shutil
import signal
import time

import keras
import numpy as np
import tensorflow as tf

from electra_tf.data import format as data_format
from electra_tf.data.input_pipeline import make_pretraining_dataset
from electra_tf.pretraining.pretrainer import ElectraPretrainer
from electra_tf.training import run_state
from electra_tf.training.optimization import create_optimizer
from electra_tf.training.summaries import EXAMPLE_TAG, example_table, scalar_tag
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
    precision_policy: str = "float32"
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


class _StopSignal:
    """Turns SIGTERM/SIGINT into a flag the loop checks between calls (preemption)."""

    def __init__(self):
        self.received = None
        self._previous = {}
        for sig in (signal.SIGTERM, signal.SIGINT):
            self._previous[sig] = signal.signal(sig, self._handle)

    def _handle(self, signum, frame):
        self.received = signal.Signals(signum).name
        # A second signal kills at once, as users expect of a second Ctrl-C.
        signal.signal(signum, self._previous[signum])

    def restore(self):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


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
        self.total_steps = settings.optimizer.num_train_steps
        replicas = strategy.num_replicas_in_sync
        parts = replicas * options.gradient_accumulation_steps
        if options.train_batch_size % parts:
            raise ValueError(f"--train_batch_size {options.train_batch_size} is not divisible by the {replicas} "
                             f"replicas x {options.gradient_accumulation_steps} accumulation steps; "
                             f"pick a multiple of {parts}")
        if self.chief:
            run_state.start_or_check(settings.model_dir, self.config, settings.vocab_file,
                                     settings.dataset_info.get("lowercase", True))
        keras.mixed_precision.set_dtype_policy(options.precision_policy)
        with strategy.scope():
            keras.utils.set_random_seed(self.config.seed)
            self.model = ElectraPretrainer(self.config, self.total_steps)
            self.model.compile(optimizer=create_optimizer(settings.optimizer))
        self.optimizer = self.model.optimizer
        checkpoint = tf.train.Checkpoint(model=self.model, optimizer=self.optimizer)
        self.manager = tf.train.CheckpointManager(
            checkpoint, self._checkpoint_dir(), max_to_keep=options.keep_checkpoint_max,
            step_counter=self.optimizer.iterations)
        self.restored_from = self.manager.restore_or_initialize()
        self.pattern = data_format.shard_pattern(settings.data_dir)
        self.iterator = iter(strategy.distribute_datasets_from_function(self._dataset_fn(self.step)))
        self.sample = next(iter(make_pretraining_dataset(
            self.pattern, 1, self.config.max_seq_length, shuffle=False, repeat=False)))
        self.vocab = None
        self.writer = (tf.summary.create_file_writer(os.path.join(settings.model_dir, "train"))
                       if self.chief else tf.summary.create_noop_writer())
        self._loop = self._make_loop()

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
                skip_batches=start_step * accumulation)
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

        @tf.function
        def loop(iterator, num_steps):
            for _ in tf.range(num_steps):
                batches = [next(iterator) for _ in range(accumulate)]
                self.strategy.run(step_fn, args=(batches if accumulate > 1 else batches[0],))

        return loop

    @property
    def step(self):
        return int(self.optimizer.iterations.numpy())

    def _save(self):
        path = self.manager.save(checkpoint_number=self.step)
        if not self.chief:
            shutil.rmtree(self._checkpoint_dir(), ignore_errors=True)
        return path

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

    def run(self):
        """Trains to num_train_steps; returns how it ended: "done" or the signal's name."""
        stop = _StopSignal()
        progress = ProgressBar(self.total_steps, "steps", "ex/s", rate_per_unit=self.options.train_batch_size)
        start_step = self.step
        if start_step:
            print(f"resuming from {self.restored_from} at step {start_step}", flush=True)
        window_start, window_steps = time.time(), 0
        try:
            while self.step < self.total_steps:
                if self.options.inject_nan_at_step and self.step == self.options.inject_nan_at_step:
                    self._poison_weights()
                before = self.step
                chunk = self._next_chunk()
                self._loop(self.iterator, tf.constant(chunk))
                window_steps += chunk
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
                if (self.step % self.options.save_checkpoints_steps == 0 or self.step == self.total_steps
                        or stop.received):
                    self._save()
                if stop.received:
                    progress.close()
                    print(f"stopped by {stop.received} at step {self.step}; checkpoint written to "
                          f"{self.manager.latest_checkpoint}. Re-run the same command to resume.", flush=True)
                    return stop.received
            progress.close()  # the loop saved at num_train_steps
            return "done"
        finally:
            stop.restore()

