"""One run of run_finetuning: N trials of fit + per-epoch dev evaluation, then results, predictions and export.

Output directory (one trial; with --num_trials N the per-trial parts go to trial_<k>/):

    finetuning_config.json   what was trained: task, labels, model config, hyperparameters
    vocab.txt
    checkpoints/best-<epoch>  the weights of the best epoch on dev
    train/, eval/            TensorBoard scalars
    eval_results.json        dev metrics by name (the median over trials, and each trial)
    predictions/<file>.tsv   test predictions, GLUE's submission format: index<TAB>prediction
    export/                  SavedModel: serve_text (raw strings) and serving_default (ids)
"""

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
from electra_tf.finetuning import pretrained as pretrained_lib
from electra_tf.finetuning.base import with_finetuning_settings
from electra_tf.finetuning.classifier import ElectraClassifier
from electra_tf.finetuning.config import MARKER
from electra_tf.finetuning.optimization import create_finetuning_optimizer
from electra_tf.finetuning.preprocessing import ElectraPreprocessor
from electra_tf.modeling.config import ElectraConfig
from electra_tf.serving.classifier_savedmodel import export_classifier
from electra_tf.text.vocab import file_sha256, special_token_ids
from electra_tf.training.strategies import make_strategy
from electra_tf.utils import machine
from electra_tf.utils.atomic import atomic_file, copy_file_atomically, write_text_atomically
from electra_tf.utils.errors import UserError
from electra_tf.utils.progress import ProgressBar

RESULTS_FILE = "eval_results.json"


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
        pretrained = pretrained_lib.find(options.init_checkpoint, options.lowercase)
        _check_architecture(options, pretrained.config, options.init_checkpoint)
        if options.vocab_file and file_sha256(options.vocab_file) != file_sha256(pretrained.vocab_file):
            raise UserError(f"--vocab_file {options.vocab_file} is not the vocabulary of {options.init_checkpoint} "
                            f"({pretrained.vocab_file}); drop --vocab_file")
        config = with_finetuning_settings(pretrained.config, finetuning.max_seq_length, finetuning.hidden_dropout_prob,
                                          finetuning.attention_probs_dropout_prob, options.init_checkpoint)
        what = "randomly initialised like" if options.random_init else "pre-trained"
        return ModelSource(config, pretrained.vocab_file, pretrained.lowercase,
                           None if options.random_init else pretrained, f"{what} {pretrained.path}")
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


def build_classifier(source, data, seed):
    keras.utils.set_random_seed(seed)
    preprocessor = ElectraPreprocessor(source.vocab_file, source.lowercase, source.config.max_seq_length)
    classifier = ElectraClassifier(source.config, num_classes=len(data.labels or [None, None]),
                                   regression=data.regression, preprocessor=preprocessor)
    if source.pretrained is not None:
        source.pretrained.load_encoder(classifier.encoder)
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

    def train_dataset(self, batch_size, seed):
        features, labels = self.splits[self.data.train.name]
        dataset = tf.data.Dataset.from_tensor_slices((features, labels))
        dataset = dataset.shuffle(len(labels), seed=seed, reshuffle_each_iteration=True)
        return dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE)


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


class _TrialCallback(keras.callbacks.Callback):
    """Progress bar, TensorBoard scalars, dev evaluation after each epoch and the best checkpoint."""

    def __init__(self, run, trial_dir, total_steps, checkpoint_manager):
        super().__init__()
        self.run = run
        self.total_steps = total_steps
        self.manager = checkpoint_manager
        self.progress = ProgressBar(total_steps, "steps", "ex/s", rate_per_unit=run.config.train_batch_size,
                                    interval=0.5)
        self.train_writer = tf.summary.create_file_writer(os.path.join(trial_dir, "train"))
        self.eval_writer = tf.summary.create_file_writer(os.path.join(trial_dir, "eval"))
        self.history = []
        self.best = None

    def _step(self):
        return int(self.model.optimizer.iterations.numpy())

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

    def on_epoch_end(self, epoch, logs=None):
        run = self.run
        results = run.evaluate(self.model)
        step = self._step()
        with self.eval_writer.as_default(step=step):
            for name, value in results.items():
                tf.summary.scalar(f"eval/{name}", value)
        self.eval_writer.flush()
        entry = {"epoch": epoch + 1, **results}
        self.history.append(entry)
        headline = run.data.headline_metric
        improved = self.best is None or results[headline] > self.best[headline]
        if improved:
            self.best = entry
            self.manager.save(checkpoint_number=epoch + 1)
        self.progress.close()
        shown = "  ".join(f"{k} {v:.4f}" for k, v in results.items())
        print(f"epoch {epoch + 1}/{run.epochs}  dev {shown}{'  (best)' if improved else ''}", flush=True)


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
        self.epochs = int(self.config.num_train_epochs)
        self.preprocessor = ElectraPreprocessor(source.vocab_file, source.lowercase, source.config.max_seq_length)
        self.features = self.make_features()
        self.steps_per_epoch = math.ceil(self.num_train_rows() / self.config.train_batch_size)
        self.total_steps = self.steps_per_epoch * self.epochs

    # ---- hooks of a task family ----

    def make_features(self):
        return Features(self.data, self.preprocessor)

    def num_train_rows(self):
        """Rows of the training set (examples; QA: windows)."""
        return len(self.data.train.examples)

    def build_model(self, source, seed):
        return build_classifier(source, self.data, seed)

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
        results = {}
        for split, (path, scores) in write_predictions(model, self).items():
            print(f"{split} predictions: {path}", flush=True)
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

    def trial(self, k):
        """Trains trial k (seed = seed + k); returns its best epoch's metrics and the history."""
        seed = self.config.seed + k
        trial_dir = self.trial_dir(k)
        classifier = self.new_classifier(seed)
        with self.strategy.scope():
            classifier.compile(optimizer=create_finetuning_optimizer(
                classifier, self.total_steps, learning_rate=self.config.learning_rate,
                layerwise_lr_decay=self.config.layerwise_lr_decay, warmup_proportion=self.config.warmup_proportion,
                weight_decay_rate=self.config.weight_decay_rate, clip_norm=self.config.clip_norm,
                epsilon=self.config.adam_epsilon))
        manager = tf.train.CheckpointManager(weights_checkpoint(classifier),
                                             os.path.join(trial_dir, "checkpoints"), max_to_keep=1,
                                             checkpoint_name="best")
        callback = _TrialCallback(self, trial_dir, self.total_steps, manager)
        classifier.fit(self.features.train_dataset(self.config.train_batch_size, seed), epochs=self.epochs,
                       verbose=0, callbacks=[callback])
        return {"seed": seed, **callback.best, "history": callback.history}, manager.latest_checkpoint

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


def prepare_output_dir(options, record, vocab_file):
    if os.path.isdir(options.output_dir) and os.listdir(options.output_dir):
        shutil.rmtree(options.output_dir)  # check_output_dir allowed it: --overwrite of an earlier run's
    os.makedirs(options.output_dir, exist_ok=True)
    write_text_atomically(os.path.join(options.output_dir, MARKER), json.dumps(record, indent=2, sort_keys=True))
    copy_file_atomically(vocab_file, os.path.join(options.output_dir, "vocab.txt"))


def run(data, config, options, run_class=FinetuningRun):
    """Everything run_finetuning does after its flag checks; returns the eval_results dict.

    `run_class` is the task family's `FinetuningRun`.
    """
    started = time.time()
    try:
        strategy = make_strategy(options.distribution_strategy, options.tpu, options.num_cpu_devices)
        source = resolve_model(options, config)
    except (ValueError, FileNotFoundError) as e:
        raise UserError(str(e).splitlines()[0]) from None
    fine = run_class(data, config, options, source, strategy)
    hp = fine.config
    print(f"model: {source.description}; {len(data.train.examples):,} training examples, {fine.epochs} epochs, "
          f"{fine.total_steps:,} updates of {hp.train_batch_size}; learning rate {hp.learning_rate:g}, layer-wise "
          f"decay {hp.layerwise_lr_decay:g}", flush=True)
    for line in fine.report_features():
        print(line, flush=True)
    record = fine.record()
    prepare_output_dir(options, record, source.vocab_file)

    trials, checkpoints = [], []
    for k in range(hp.num_trials):
        if hp.num_trials > 1:
            print(f"trial {k + 1}/{hp.num_trials} (seed {hp.seed + k})", flush=True)
        result, checkpoint = fine.trial(k)
        trials.append(result)
        checkpoints.append(checkpoint)

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

    model = fine.best_classifier(checkpoints[best])
    # The export's model card states the selected model's dev metrics and how long the run took.
    card = {"dev_metrics": {n: trials[best][n] for n in names}, "wall_seconds": round(time.time() - started, 1),
            "hardware": machine.describe()}
    results.update(fine.write_outputs(model, {**record, **card}))
    if len(trials) > 1:
        results["predictions_from_trial"] = best + 1
    write_text_atomically(os.path.join(options.output_dir, RESULTS_FILE), json.dumps(results, indent=2))
    _print_summary(results, trials, names)
    return results


def _print_summary(results, trials, names):
    if len(trials) == 1:
        shown = "  ".join(f"{n} {results[n]:.4f}" for n in names)
        print(f"dev (best epoch, {results['epoch']}): {shown}", flush=True)
    else:
        for n in names:
            values = " ".join(f"{t[n]:.4f}" for t in trials)
            print(f"dev {n}: median {results[n]:.4f} over {len(trials)} trials ({values})", flush=True)
    for split, scores in results.get("test", {}).items():
        print(f"{split}: " + "  ".join(f"{k} {v:.4f}" for k, v in scores.items()), flush=True)
