"""One run of run_finetuning: N trials of fit + per-epoch dev evaluation, then results, predictions and export.

Output directory (one trial; with --num_trials N the per-trial parts go to trial_<k>/):

    finetuning_config.json   what was trained: task, labels, model config, hyperparameters
    vocab.txt
    checkpoints/best-<epoch>  the weights of the best epoch on dev
    trial_state.json, resume/ how far the trial got, for a re-run to continue it (electra_tf.finetuning.resume)
    train/, eval/            TensorBoard scalars
    eval_results.json        dev metrics by name (the median over trials, and each trial); written last
    predictions/<file>.tsv   test predictions, GLUE's submission format: index<TAB>prediction
    export/                  SavedModel: serve_text (raw strings) and serving_default (ids)

SIGTERM and SIGINT stop a run cleanly (utils/stop_signals.py): during
training after the current update, with the trial's training state saved;
during a dev evaluation at once, with the state at the end of the epoch
saved; during the outputs without touching the previous ones. Re-running
the same command continues where it stopped, with the updates, dropout
masks and data order an uninterrupted run would have had.
"""

import dataclasses
import json
import math
import os
import shutil
import statistics
import time

import keras
import numpy as np
import tensorflow as tf

from electra_tf.finetuning import metrics as metrics_lib
from electra_tf.finetuning import resume, sources
from electra_tf.finetuning.base import with_finetuning_settings
from electra_tf.finetuning.classifier import ElectraClassifier
from electra_tf.finetuning.config import MARKER, RESULTS_FILE
from electra_tf.finetuning.optimization import create_finetuning_optimizer
from electra_tf.finetuning.preprocessing import ElectraPreprocessor
from electra_tf.modeling.config import ElectraConfig
from electra_tf.serving.classifier_savedmodel import export_classifier
from electra_tf.text.vocab import file_sha256, special_token_ids
from electra_tf.training import run_dir, run_state
from electra_tf.training.strategies import make_strategy
from electra_tf.utils import machine, stop_signals
from electra_tf.utils.atomic import atomic_file, copy_file_atomically, write_text_atomically
from electra_tf.utils.errors import UserError
from electra_tf.utils.progress import ProgressBar

# Fewer optimizer updates than this draw a note: fine-tuning on small data then tends to underfit.
MIN_UPDATES = 100


# ---- the model ----


class ModelSource:
    """The model to fine-tune: its config and vocabulary, and the pre-trained weights (or None: random)."""

    def __init__(self, config, vocab_file, lowercase, pretrained=None, description=""):
        self.config = config
        self.vocab_file = vocab_file
        self.lowercase = lowercase
        self.pretrained = pretrained
        self.description = description


def _check_architecture(options, config, path):
    """Model flags given beside --init_checkpoint must state what the checkpoint holds."""
    for name, value in options.architecture.items():
        if getattr(config, name) != value:
            raise UserError(f"--{name}={value} disagrees with {path}, whose model has {name} {getattr(config, name)}; "
                            f"drop --{name}")
    if options.model_size:
        size = ElectraConfig.for_size(options.model_size)
        differs = [n for n in ("hidden_size", "num_layers", "num_heads", "intermediate_size", "embedding_size")
                   if getattr(size, n) != getattr(config, n)]
        if differs:
            raise UserError(f"--model_size={options.model_size} disagrees with {path} ("
                            + ", ".join(f"{n} {getattr(config, n)}, not {getattr(size, n)}" for n in differs)
                            + "); drop --model_size")


def resolve_model(options, finetuning):
    """The ModelSource the flags describe; every disagreement is a UserError, before anything is written."""
    if options.init_checkpoint:
        # run_finetuning resolves it before the data is read; a caller in Python may leave that to here.
        pretrained = options.pretrained or sources.resolve(options.init_checkpoint, options.lowercase)
        _check_architecture(options, pretrained.config, options.init_checkpoint)
        if options.vocab_file and file_sha256(options.vocab_file) != file_sha256(pretrained.vocab_file):
            raise UserError(f"--vocab_file {options.vocab_file} is not the vocabulary of {options.init_checkpoint} "
                            f"({pretrained.vocab_file}); drop --vocab_file")
        config = with_finetuning_settings(pretrained.config, finetuning.max_seq_length, finetuning.hidden_dropout_prob,
                                          finetuning.attention_probs_dropout_prob, options.init_checkpoint)
        what = "randomly initialised like" if options.random_init else "pre-trained"
        description = f"{what} {pretrained.description}"
        if pretrained.head is not None and not options.random_init:
            if options.new_head:
                description += f", its {pretrained.head.architecture} head dropped (--new_head)"
                pretrained = dataclasses.replace(pretrained, head=None)
            else:
                description += f", with its {pretrained.head.describe()}"
        return ModelSource(config, pretrained.vocab_file, pretrained.lowercase,
                           None if options.random_init else pretrained, description)
    vocab = special_token_ids(options.vocab_file)
    architecture = dict(options.architecture)
    if architecture.get("vocab_size", vocab["vocab_size"]) != vocab["vocab_size"]:
        raise UserError(f"--vocab_size {architecture['vocab_size']} disagrees with {options.vocab_file} "
                        f"({vocab['vocab_size']} tokens); drop --vocab_size or fix --vocab_file")
    try:
        config = ElectraConfig.for_size(options.model_size or "small", **{**architecture, **vocab})
    except ValueError as e:
        raise UserError(str(e)) from None
    config = with_finetuning_settings(config, finetuning.max_seq_length, finetuning.hidden_dropout_prob,
                                      finetuning.attention_probs_dropout_prob, f"--model_size={options.model_size}")
    return ModelSource(config, options.vocab_file, True if options.lowercase is None else options.lowercase,
                       None, f"randomly initialised {options.model_size or 'small'} model")


def _say(line):
    print(line, flush=True)


def build_classifier(source, data, seed, classifier_head="original"):
    keras.utils.set_random_seed(seed)
    preprocessor = ElectraPreprocessor(source.vocab_file, source.lowercase, source.config.max_seq_length)
    classifier = ElectraClassifier(source.config, num_classes=len(data.labels or [None, None]),
                                   regression=data.regression, preprocessor=preprocessor,
                                   classifier_head=classifier_head, labels=data.labels)
    if source.pretrained is not None:
        source.pretrained.load_weights(classifier, data.label_scale if data.regression else 1.0)
    return classifier


# ---- the data ----


def featurize(preprocessor, examples, batch_size=2048):
    """Features (a dict of int32 arrays) of `examples`, and how many were cut to the sequence length."""
    parts, cut = [], 0
    pair = examples and examples[0].text_b is not None
    for start in range(0, len(examples), batch_size):
        chunk = examples[start:start + batch_size]
        segments = [preprocessor.tokenize([e.text_a for e in chunk])]
        if pair:
            segments.append(preprocessor.tokenize([e.text_b for e in chunk]))
        lengths = sum(s.row_lengths().numpy() for s in segments) + len(segments) + 1
        cut += int(np.sum(lengths > preprocessor.sequence_length))
        parts.append({k: v.numpy() for k, v in preprocessor.pack(segments).items()})
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}, cut


def label_array(data, examples):
    if data.regression:
        return np.array([e.label for e in examples], np.float32)
    ids = {label: i for i, label in enumerate(data.labels)}
    return np.array([ids[e.label] for e in examples], np.int32)


class Features:
    """Every split tokenized once, with its labels."""

    def __init__(self, data, preprocessor):
        self.data = data
        self.splits = {}
        self.cut = {}
        for split in [data.train, *data.dev, *data.test]:
            features, cut = featurize(preprocessor, split.examples)
            labels = label_array(data, split.examples) if split.labelled else None
            self.splits[split.name] = (features, labels)
            self.cut[split.name] = cut

    def train_arrays(self):
        """The training split's (features, labels), one row per example."""
        return self.splits[self.data.train.name]


def predictions_of(data, outputs):
    """Model outputs -> predicted label ids, or scores in the task's units."""
    if data.regression:
        return outputs[:, 0] * data.label_scale
    return np.argmax(outputs, axis=-1)


def evaluate(classifier, data, features, batch_size):
    """{metric: value} over every dev split (MNLI's with their prefixes)."""
    names = metrics_lib.task_metric_names(data.name, data.regression)
    results = {}
    for split in data.dev:
        inputs, labels = features.splits[split.name]
        predicted = predictions_of(data, classifier.predict(inputs, batch_size=batch_size, verbose=0))
        truth = labels * data.label_scale if data.regression else labels
        prefix = data.metric_prefixes.get(split.name, "")
        results.update({prefix + k: v for k, v in metrics_lib.compute(names, truth, predicted).items()})
    return results


# ---- one trial ----


def metric_values(model):
    """{metric name: [variable values]} of a Keras model's running metrics (JSON-able)."""
    return {m.name: [np.asarray(v.numpy()).tolist() for v in m.variables] for m in model.metrics}


def set_metric_values(model, values):
    for metric in model.metrics:
        for variable, value in zip(metric.variables, values.get(metric.name, ())):
            variable.assign(value)


class _TrialCallback(keras.callbacks.Callback):
    """After each update: the progress bar, TensorBoard training scalars and the check for a stop request."""

    def __init__(self, run, trial_dir, total_steps, stop):
        super().__init__()
        self.run = run
        self.total_steps = total_steps
        self.stop = stop
        self.progress = ProgressBar(total_steps, "steps", "ex/s", rate_per_unit=run.config.train_batch_size,
                                    interval=0.5)
        self.train_writer = tf.summary.create_file_writer(os.path.join(trial_dir, "train"))
        self.eval_writer = tf.summary.create_file_writer(os.path.join(trial_dir, "eval"))
        self.resumed_metrics = None  # the running metrics to put back at the start of a resumed epoch

    def _step(self):
        return int(self.model.optimizer.iterations.numpy())

    def on_epoch_begin(self, epoch, logs=None):
        # fit has just reset the running metrics; mid-epoch, a resumed run continues those of the steps before.
        if self.resumed_metrics:
            set_metric_values(self.model, self.resumed_metrics)
            self.resumed_metrics = None

    def on_train_batch_end(self, batch, logs=None):
        step = self._step()
        # The loss is summed over the batch, as the original's; shown and logged per example.
        loss = float(logs["loss"]) / self.run.config.train_batch_size
        fields = [f"loss {loss:.4f}"] + ([f"acc {float(logs['accuracy']):.3f}"] if "accuracy" in logs else [])
        logged = step % self.run.options.log_every_steps == 0 or step == self.total_steps
        if logged or self.progress.tty:  # a log file gets a line per logging step, not per update
            self.progress.update(step, fields)
        if logged:
            with self.train_writer.as_default(step=step):
                tf.summary.scalar("loss/train", loss)
                tf.summary.scalar("optimizer/learning_rate", float(self.model.optimizer.learning_rate))
            self.train_writer.flush()
        if self.stop.received:
            self.model.stop_training = True  # fit returns after this update

    def log_eval(self, step, results):
        with self.eval_writer.as_default(step=step):
            for name, value in results.items():
                tf.summary.scalar(f"eval/{name}", value)
        self.eval_writer.flush()


def weights_checkpoint(classifier):
    """A model's weights without its optimizer's slots (a third of the size, all a result needs)."""
    return tf.train.Checkpoint(encoder=classifier.encoder, head=classifier.head)


class FinetuningRun:
    """Owns the data, model source and strategy of a run; `trial(k)` trains one seed.

    The classification run; the other task families (tagging, question
    answering) subclass it and override the hooks below the constructor:
    features, the model, evaluation and what is written after training.
    """

    def __init__(self, data, config, options, source, strategy):
        self.data = data
        self.options = options
        self.source = source
        self.strategy = strategy
        self.config = config.resolve(data.name, source.config.num_layers, source.config.hidden_size)
        self._check_head()
        self.epochs = int(self.config.num_train_epochs)
        self.preprocessor = ElectraPreprocessor(source.vocab_file, source.lowercase, source.config.max_seq_length)
        self.features = self.make_features()
        self.steps_per_epoch = math.ceil(self.num_train_rows() / self.config.train_batch_size)
        self.total_steps = self.steps_per_epoch * self.epochs
        self._train_tensors = None

    # ---- hooks of a task family ----

    def make_features(self):
        return Features(self.data, self.preprocessor)

    def num_train_rows(self):
        """Rows of the training set (examples; QA: windows)."""
        return len(self.data.train.examples)

    def build_model(self, source, seed):
        return build_classifier(source, self.data, seed, self.config.classifier_head)

    def head_settings(self):
        """(task family, label names, regression, head option) of the model: what a task model's head must fit."""
        return "classification", self.data.labels, self.data.regression, self.config.classifier_head

    def evaluate(self, model):
        """{metric: value} on the dev split(s)."""
        return evaluate(model, self.data, self.features, self.config.eval_batch_size)

    def report_features(self):
        """Lines about what featurizing cut or skipped."""
        return [f"{name}: {cut:,} examples longer than {self.config.max_seq_length} tokens were cut"
                for name, cut in self.features.cut.items() if cut]

    def record(self):
        """What was trained, for finetuning_config.json."""
        data = self.data
        return {"task": data.name, "labels": data.labels, "regression": data.regression, "pair": data.pair,
                "label_scale": data.label_scale, **self._model_record()}

    def _model_record(self):
        source = self.source
        return {"model": source.description, "lowercase": source.lowercase,
                "electra_config": source.config.to_dict(), "hyperparameters": self.config.to_dict(),
                "train_examples": len(self.data.train.examples), "updates": self.total_steps}

    def write_outputs(self, model, record):
        """Test predictions and the export of the selected model; returns entries for eval_results.json."""
        results = {"predictions": []}
        for split, (path, scores) in write_predictions(model, self).items():
            results["predictions"].append(path)
            if scores:
                results.setdefault("test", {})[split] = scores
        if self.options.export:
            data = self.data
            results["export"] = export_classifier(model, os.path.join(self.options.output_dir, "export"),
                                                  data.labels, data.pair, data.label_scale, record)
        return results

    def skipped(self):
        """{split: {reason: count}} of what reading the files skipped."""
        return {s.name: {"empty_texts": s.empty_texts, "malformed_lines": s.malformed_lines}
                for s in [self.data.train, *self.data.dev, *self.data.test] if s.empty_texts or s.malformed_lines}

    # ---- shared ----

    def _check_head(self):
        """A transformers task model to continue must fit the task's model (a one-line error says what to give)."""
        pretrained = self.source.pretrained
        problem = pretrained.head.mismatch(*self.head_settings()) if pretrained and pretrained.head else None
        if problem is None:
            return
        sentence, setting = problem
        option = {"classification": "--classifier_head=original", "qa": "--qa_head=original"}.get(
            self.head_settings()[0])
        fix = "give --new_head to fine-tune its encoder under a new head for this task"
        if setting == "kind":
            fix = f"drop {option} to continue fine-tuning it, or {fix}"
        raise UserError(f"--init_checkpoint {sentence}; {fix}")

    def trial_dir(self, k):
        if self.config.num_trials == 1:
            return self.options.output_dir
        return os.path.join(self.options.output_dir, f"trial_{k + 1}")

    def new_classifier(self, seed, with_weights=True):
        keras.backend.clear_session()
        keras.mixed_precision.set_dtype_policy(self.options.precision_policy)
        with self.strategy.scope():
            source = self.source if with_weights else ModelSource(
                self.source.config, self.source.vocab_file, self.source.lowercase)
            return self.build_model(source, seed)

    def epoch_dataset(self, seed, epoch, skip_batches=0):
        """Epoch `epoch`'s training batches, from the `skip_batches`-th on.

        Each epoch visits the rows in an order drawn from (seed, epoch)
        alone, so a run resumed mid-epoch trains on the batches that an
        uninterrupted one would.
        """
        if self._train_tensors is None:
            self._train_tensors = tf.nest.map_structure(tf.convert_to_tensor, self.features.train_arrays())
        tensors = self._train_tensors
        batch_size = self.config.train_batch_size
        rows = int(tf.nest.flatten(tensors)[0].shape[0])
        order = np.random.default_rng([seed, epoch]).permutation(rows)[skip_batches * batch_size:]
        dataset = tf.data.Dataset.from_tensor_slices(order).batch(batch_size)
        dataset = dataset.map(lambda rows: tf.nest.map_structure(lambda t: tf.gather(t, rows), tensors))
        return dataset.prefetch(tf.data.AUTOTUNE)

    def trial(self, k, stop):
        """Trains trial k (seed = seed + k), continuing what trial_state.json records.

        Returns its result (the best epoch's metrics and the history), the
        best weights' checkpoint and the wall seconds it took over every
        invocation, or None when a stop request ended it (its state is then
        saved).
        """
        seed = self.config.seed + k
        trial_dir = self.trial_dir(k)
        name = f"trial {k + 1}/{self.config.num_trials}" if self.config.num_trials > 1 else ""
        state = resume.load_trial(trial_dir, _say)
        began, seconds_before = time.time(), state.seconds
        if state.finished:
            shown = "  ".join(f"{n} {state.result[n]:.4f}" for n in self.data.metric_names)
            _say(f"{name} (seed {seed}) finished before: dev {shown} (epoch {state.result['epoch']})")
            return state.result, os.path.join(trial_dir, state.best_checkpoint), state.seconds
        if name:
            _say(f"{name} (seed {seed})")
        classifier = self.new_classifier(seed)
        with self.strategy.scope():
            classifier.compile(optimizer=create_finetuning_optimizer(
                classifier, self.total_steps, learning_rate=self.config.learning_rate,
                layerwise_lr_decay=self.config.layerwise_lr_decay, warmup_proportion=self.config.warmup_proportion,
                weight_decay_rate=self.config.weight_decay_rate, clip_norm=self.config.clip_norm,
                epsilon=self.config.adam_epsilon))
            training = run_state.training_checkpoint(classifier)
            if state.step:
                classifier.optimizer.build(classifier.trainable_variables)
                training.read(resume.resume_prefix(trial_dir, state.step)).assert_consumed()
        if state.step:
            _say(f"continuing{' ' + name if name else ''} from step {state.step} of {self.total_steps} "
                 f"({resume.resume_prefix(trial_dir, state.step)})")
        for log_dir in ("train", "eval"):  # what a killed run logged after the saved step
            run_dir.trim_events(os.path.join(trial_dir, log_dir), state.step)
        callback = _TrialCallback(self, trial_dir, self.total_steps, stop)

        saved_step = state.step  # the step whose training state is on disk (0: none is needed)

        def save():
            state.seconds = round(seconds_before + time.time() - began, 1)
            resume.save_trial(trial_dir, state)

        def stopped():
            if state.step != saved_step:
                training.write(resume.resume_prefix(trial_dir, state.step))
                state.metrics = metric_values(classifier)
                save()
            callback.progress.close()
            where = (f"{'in ' + name + ' ' if name else ''}at step {state.step} of {self.total_steps}; its "
                     f"training state is saved in {resume.resume_prefix(trial_dir, state.step)}" if state.step
                     else f"before {name or 'training'} started; nothing needed saving")
            _say(f"stopped by {stop.received} {where}. Re-run the same command to continue.")

        per_epoch = self.steps_per_epoch
        for epoch in range(len(state.history), self.epochs):
            skip = state.step - epoch * per_epoch
            if skip < per_epoch:
                if stop.received:
                    return stopped()
                callback.resumed_metrics = state.metrics if skip else None
                classifier.fit(self.epoch_dataset(seed, epoch, skip), epochs=1, verbose=0, callbacks=[callback])
                state.step = int(classifier.optimizer.iterations.numpy())
                if state.step < (epoch + 1) * per_epoch:
                    return stopped()
            try:
                with stop.mode(stop_signals.RAISE):
                    results = self.evaluate(classifier)
            except (stop_signals.Stopped, Exception):
                if not stop.received:
                    raise
                return stopped()  # saved at the end of the epoch; the evaluation is done again on resume
            callback.log_eval(state.step, results)
            entry = {"epoch": epoch + 1, **results}
            state.history.append(entry)
            headline = self.data.headline_metric
            improved = state.best is None or results[headline] > state.best[headline]
            if improved:
                state.best, state.best_checkpoint = entry, resume.best_prefix(epoch + 1)
                weights_checkpoint(classifier).write(os.path.join(trial_dir, state.best_checkpoint))
            state.metrics = None
            if epoch + 1 == self.epochs:
                state.result = {"seed": seed, **state.best, "history": state.history}
            else:  # the end of an epoch is a point to continue from, also after a kill
                training.write(resume.resume_prefix(trial_dir, state.step))
            save()
            saved_step = state.step
            callback.progress.close()
            shown = "  ".join(f"{k} {v:.4f}" for k, v in results.items())
            _say(f"epoch {epoch + 1}/{self.epochs}  dev {shown}{'  (best)' if improved else ''}")
        return state.result, os.path.join(trial_dir, state.best_checkpoint), state.seconds

    def best_classifier(self, checkpoint):
        classifier = self.new_classifier(self.config.seed, with_weights=False)
        weights_checkpoint(classifier).read(checkpoint).expect_partial().assert_existing_objects_matched()
        return classifier


# ---- results ----


def _median_results(trials, names):
    return {name: statistics.median(t[name] for t in trials) for name in names}


def write_predictions(classifier, run):
    """Test predictions, one file per test split (GLUE's names); returns {split: (path, metrics or None)}."""
    data = run.data
    written = {}
    directory = os.path.join(run.options.output_dir, "predictions")
    for split in data.test:
        inputs, labels = run.features.splits[split.name]
        predicted = predictions_of(data, classifier.predict(inputs, batch_size=run.config.eval_batch_size, verbose=0))
        os.makedirs(directory, exist_ok=True)
        path = os.path.join(directory, split.submission_file)
        with atomic_file(path) as f:
            f.write("index\tprediction\n")
            for example, value in zip(split.examples, predicted):
                shown = f"{value:.4f}" if data.regression else data.labels[int(value)]
                f.write(f"{example.index}\t{shown}\n")
        scores = None
        if labels is not None:
            truth = labels * data.label_scale if data.regression else labels
            scores = metrics_lib.compute(metrics_lib.task_metric_names(data.name, data.regression), truth, predicted)
        written[split.name] = (path, scores)
    return written


def few_updates_note(updates, steps_per_epoch, epochs):
    """A one-line note when a run makes fewer than MIN_UPDATES optimizer updates (else None).

    Args:
        updates: the run's optimizer updates (per trial).
        steps_per_epoch: updates per epoch.
        epochs: the run's epochs.

    Example:

    >>> print(few_updates_note(21, 7, 3))
    note: 3 epochs of 7 batches are only 21 optimizer updates, and so few tend to underfit; --num_train_epochs=15 \
gives 105 (docs/finetuning/classification.md, "Small data")
    >>> few_updates_note(120, 40, 3) is None
    True
    """
    if updates >= MIN_UPDATES:
        return None
    enough = math.ceil(MIN_UPDATES / steps_per_epoch)
    return (f"note: {epochs} epochs of {steps_per_epoch} batches are only {updates} optimizer updates, and so few tend "
            f"to underfit; --num_train_epochs={enough} gives {enough * steps_per_epoch} "
            f"(docs/finetuning/classification.md, \"Small data\")")


def prepare_output_dir(options, record, vocab_file):
    """Starts a new run's output_dir: an earlier run's is replaced (check_output_dir allowed it: --overwrite)."""
    if os.path.isdir(options.output_dir) and os.listdir(options.output_dir):
        shutil.rmtree(options.output_dir)
    os.makedirs(options.output_dir, exist_ok=True)
    write_text_atomically(os.path.join(options.output_dir, MARKER), json.dumps(record, indent=2, sort_keys=True))
    copy_file_atomically(vocab_file, os.path.join(options.output_dir, "vocab.txt"))


def continue_output_dir(options, record, vocab_file):
    """Checks that an unfinished run's output_dir was started with `record`'s settings, and cleans it up."""
    resume.check_settings(options.output_dir, record, MARKER)
    _say(f"continuing the unfinished run in {options.output_dir}")
    resume.sweep(options.output_dir, _say)
    if not os.path.exists(os.path.join(options.output_dir, "vocab.txt")):  # stopped as the run started
        copy_file_atomically(vocab_file, os.path.join(options.output_dir, "vocab.txt"))


def run(data, config, options, run_class=FinetuningRun, stop=None):
    """Everything run_finetuning does after its flag checks; returns the eval_results dict, or None if stopped.

    Args:
        data: the task's examples.
        config: the `FinetuningConfig`.
        options: the `RunOptions`.
        run_class: the task family's `FinetuningRun`.
        stop: the process's `utils.stop_signals.StopSignals` (installed here if not given).
    """
    stop = stop or stop_signals.install()
    started = time.time()
    try:
        strategy = make_strategy(options.distribution_strategy, options.tpu, options.num_cpu_devices)
        stop.reinstall()  # TensorFlow may have installed a handler of its own
        source = resolve_model(options, config)
    except (ValueError, FileNotFoundError) as e:
        raise UserError(str(e).splitlines()[0]) from None
    fine = run_class(data, config, options, source, strategy)
    hp = fine.config
    _say(f"model: {source.description}; {len(data.train.examples):,} training examples, {fine.epochs} epochs, "
         f"{fine.total_steps:,} updates of {hp.train_batch_size}; learning rate {hp.learning_rate:g}, layer-wise "
         f"decay {hp.layerwise_lr_decay:g}")
    note = few_updates_note(fine.total_steps, fine.steps_per_epoch, fine.epochs)
    if note:
        _say(note)
    for line in fine.report_features():
        _say(line)
    record = {**fine.record(), "data_sha256": resume.data_sha256(data)}
    # From here on the output_dir changes: a stop request is acted on where what is on disk is whole.
    stop.set_mode(stop_signals.RECORD)
    if not options.overwrite and os.path.exists(os.path.join(options.output_dir, MARKER)):
        continue_output_dir(options, record, source.vocab_file)
    else:
        prepare_output_dir(options, record, source.vocab_file)

    trials, checkpoints, trial_seconds, in_trials = [], [], 0.0, 0.0
    for k in range(hp.num_trials):
        began = time.time()
        outcome = fine.trial(k, stop)
        if outcome is None:
            return None
        in_trials += time.time() - began
        trials.append(outcome[0])
        checkpoints.append(outcome[1])
        trial_seconds += outcome[2]

    names = data.metric_names
    headline = data.headline_metric
    best = max(range(len(trials)), key=lambda k: trials[k][headline])
    results = {"task": data.name, "selected_by": headline, **_median_results(trials, names),
               "num_trials": len(trials)}
    if len(trials) == 1:
        results["epoch"] = trials[0]["epoch"]
    else:
        results["median"] = _median_results(trials, names)
    results["trials"] = trials
    results["examples"] = {s.name: len(s.examples) for s in [data.train, *data.dev, *data.test]}
    results["skipped"] = fine.skipped()

    results_path = os.path.join(options.output_dir, RESULTS_FILE)
    try:
        with stop.mode(stop_signals.RAISE):
            model = fine.best_classifier(checkpoints[best])
            # The export's model card states the selected model's dev metrics and how long the run took: the
            # trials' time over every invocation (a stopped run's included) and this invocation's remainder.
            wall = trial_seconds + time.time() - started - in_trials
            card = {"dev_metrics": {n: trials[best][n] for n in names}, "wall_seconds": round(wall, 1),
                    "hardware": machine.describe()}
            results.update(fine.write_outputs(model, {**record, **card}))
            if len(trials) > 1:
                results["predictions_from_trial"] = best + 1
            write_text_atomically(results_path, json.dumps(results, indent=2))
    except (stop_signals.Stopped, Exception):
        # Stopped, or what it became on its way out through TensorFlow.
        if not stop.received:
            raise
        _say(f"stopped by {stop.received} while writing the predictions and the export; every trial is saved, and "
             f"{os.path.join(options.output_dir, 'export')} holds whole exports only. Re-run the same command to "
             "finish.")
        return None
    _print_summary(results, trials, names, fine.epochs, results_path)
    if stop.received:  # it came as the last file was written: nothing was lost
        _say(f"(stopped by {stop.received} as the run finished; everything above is written)")
    return results


def _print_summary(results, trials, names, epochs, results_path):
    """The selected dev result and where everything went."""
    headline = results["selected_by"]
    if len(trials) == 1:
        shown = "  ".join(f"{n} {results[n]:.4f}" for n in names)
        _say(f"selected epoch {results['epoch']} of {epochs} by dev {headline}: dev {shown}")
    else:
        for n in names:
            values = " ".join(f"{t[n]:.4f}" for t in trials)
            _say(f"dev {n}: median {results[n]:.4f} over {len(trials)} trials ({values})")
        chosen = trials[results["predictions_from_trial"] - 1]
        _say(f"selected trial {results['predictions_from_trial']} (seed {chosen['seed']}), epoch {chosen['epoch']} "
             f"of {epochs}, by dev {headline} {chosen[headline]:.4f}: its weights made the predictions and the export")
    for split, scores in results.get("test", {}).items():
        _say(f"{split}: " + "  ".join(f"{k} {v:.4f}" for k, v in scores.items()))
    _say(f"results: {results_path}")
    if results.get("predictions"):
        _say(f"predictions: {', '.join(results['predictions'])}")
    if results.get("export"):
        _say(f"export: {results['export']}")
