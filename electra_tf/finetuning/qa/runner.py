"""The question-answering run of run_finetuning (--task=squad_v1|squad_v2): windows, evaluation, outputs.

Besides what every run writes (electra_tf.finetuning.runner), in the
official formats:

    predictions.json      dev: question id -> answer ("" for no answer, squad_v2)
    null_odds.json        squad_v2, dev: question id -> no-answer score (the answerability logit)
    nbest_predictions.json dev: question id -> [{"text", "score"}, ...]
    predictions/test_predictions.json (and test_null_odds.json) for a --test_file
    export/               SavedModel: serve_text (questions, contexts -> answers and scores)

eval_results.json holds the official scores (percentages). As the
original, the 2.0 scores are computed on the best non-empty answers with
the no-answer threshold applied to null_odds; predictions.json has that
threshold applied, so it is the file to submit.
"""

import json
import os

import keras

from electra_tf.finetuning.qa import squad_metrics
from electra_tf.finetuning.qa.answerer import ElectraQuestionAnswerer
from electra_tf.finetuning.qa.config import QAConfig
from electra_tf.finetuning.runner import FinetuningRun
from electra_tf.serving.qa_savedmodel import export_answerer
from electra_tf.utils.atomic import write_text_atomically


class QAFeatures:
    """The windows of every split (training windows carry the answer labels)."""

    def __init__(self, data, answerer_windows):
        self.data = data
        self.splits = {split.name: answerer_windows(split.examples, split is data.train)
                       for split in [data.train, *data.dev, *data.test]}

    def train_arrays(self):
        """The training windows' (features, answer labels)."""
        return ElectraQuestionAnswerer.training_arrays(self.splits[self.data.train.name])


class QARun(FinetuningRun):
    """A SQuAD task's `FinetuningRun`: an `ElectraQuestionAnswerer` scored by the official metrics."""

    @property
    def qa(self):
        return self.options.qa or QAConfig()

    def _answerer(self, source=None):
        return ElectraQuestionAnswerer((source or self.source).config, preprocessor=self.preprocessor, qa=self.qa)

    def make_features(self):
        probe = self._answerer()  # only its windowing: no weights are read
        features = QAFeatures(self.data, probe.windows)
        keras.backend.clear_session()
        return features

    def num_train_rows(self):
        return len(self.features.splits[self.data.train.name])

    def build_model(self, source, seed):
        keras.utils.set_random_seed(seed)
        answerer = self._answerer(source)
        if source.pretrained is not None:
            source.pretrained.load_weights(answerer)
        return answerer

    def head_settings(self):
        return "qa", None, False, self.qa.qa_head

    def _answers(self, model, split):
        return model.answer(split.examples, batch_size=self.config.eval_batch_size)

    def _score(self, split, answers):
        gold = {e.qid: list(e.answers) for e in split.examples}
        predictions = {e.qid: a["text"] for e, a in zip(split.examples, answers)}
        if self.data.version_2:
            null_odds = {e.qid: a["null_score"] for e, a in zip(split.examples, answers)}
            return squad_metrics.evaluate_v2(gold, predictions, null_odds, self.qa.na_threshold)
        return squad_metrics.evaluate_v1(gold, predictions)

    def evaluate(self, model):
        split = self.data.dev[0]
        return self._score(split, self._answers(model, split))

    def report_features(self):
        return [f"{name}: {len(windows):,} windows of {self.config.max_seq_length} tokens"
                for name, windows in self.features.splits.items()]

    def skipped(self):
        return {s.name: {"answer_not_at_offset": s.malformed_lines}
                for s in [self.data.train, *self.data.dev, *self.data.test] if s.malformed_lines}

    def record(self):
        return {"task": self.data.name, "qa": dict(vars(self.qa)), **self._model_record()}

    def _write(self, split, answers, prefix):
        directory = self.options.output_dir if not prefix else os.path.join(self.options.output_dir, "predictions")
        os.makedirs(directory, exist_ok=True)
        threshold = self.qa.na_threshold if self.data.version_2 else float("inf")
        predictions = {e.qid: "" if a["null_score"] > threshold else a["text"]
                       for e, a in zip(split.examples, answers)}
        paths = [os.path.join(directory, f"{prefix}predictions.json")]
        write_text_atomically(paths[0], json.dumps(predictions, indent=2, ensure_ascii=False))
        if self.data.version_2:
            paths.append(os.path.join(directory, f"{prefix}null_odds.json"))
            write_text_atomically(paths[-1], json.dumps({e.qid: a["null_score"]
                                                         for e, a in zip(split.examples, answers)}, indent=2))
        if not prefix:
            n_best = {e.qid: [{"text": t, "score": s} for t, s in a["n_best"]] for e, a in zip(split.examples, answers)}
            paths.append(os.path.join(directory, "nbest_predictions.json"))
            write_text_atomically(paths[-1], json.dumps(n_best, indent=2, ensure_ascii=False))
        return paths

    def write_outputs(self, model, record):
        results = {"predictions": []}
        for split, prefix in [(self.data.dev[0], ""), *[(s, "test_") for s in self.data.test]]:
            answers = self._answers(model, split)
            results["predictions"] += self._write(split, answers, prefix)
            if prefix and any(e.answers for e in split.examples):
                results.setdefault("test", {})[split.name] = self._score(split, answers)
        if self.options.export:
            results["export"] = export_answerer(model, os.path.join(self.options.output_dir, "export"),
                                                self.data.version_2, record)
        return results
