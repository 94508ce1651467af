"""The tagging run of run_finetuning (--task=tagging, --task=chunk): features, evaluation, outputs.

Besides what every run writes (electra_tf.finetuning.runner):

    predictions/test.txt   the test file's words, their tags when it has them, and the predicted tag
    export/                SavedModel: serve_text (sentences -> words and tags) and serving_default (ids)
"""

import os

import keras

from electra_tf.finetuning.runner import FinetuningRun
from electra_tf.finetuning.tagging import metrics as metrics_lib
from electra_tf.finetuning.tagging.features import encode, word_pieces, word_predictions
from electra_tf.finetuning.tagging.tagger import ElectraTagger
from electra_tf.serving.tagger_savedmodel import export_tagger
from electra_tf.text import spans as spans_lib
from electra_tf.utils.atomic import atomic_file


class TaggingFeatures:
    """Every split's sentences encoded once (`TaggingFeatures` by split name)."""

    def __init__(self, data, preprocessor):
        self.data = data
        ids = {tag: i for i, tag in enumerate(data.labels)}
        self.splits = {}
        for split in [data.train, *data.dev, *data.test]:
            sentences = split.examples
            tag_ids = ([[ids[t] for t in data.model_tags(s.tags)] for s in sentences] if split.labelled else None)
            self.splits[split.name] = encode(word_pieces(preprocessor, [s.words for s in sentences]),
                                             preprocessor.sequence_length, preprocessor.cls_id, preprocessor.sep_id,
                                             tag_ids)

    def train_arrays(self):
        """The training split's (features, tag ids, weights), one row per sentence."""
        encoded = self.splits[self.data.train.name]
        return encoded.features, encoded.labels, encoded.weights


class TaggingRun(FinetuningRun):
    """A tagging task's `FinetuningRun`: an `ElectraTagger` scored by entity F1 or token accuracy."""

    def make_features(self):
        return TaggingFeatures(self.data, self.preprocessor)

    def build_model(self, source, seed):
        keras.utils.set_random_seed(seed)
        tagger = ElectraTagger(source.config, self.data.labels, preprocessor=self.preprocessor)
        if source.pretrained is not None:
            source.pretrained.load_weights(tagger)
        return tagger

    def head_settings(self):
        return "tagging", self.data.labels, False, None

    def predicted_tags(self, model, split):
        """Per sentence of `split`, the model's tags of the words that fit."""
        encoded = self.features.splits[split.name]
        logits = model.predict(encoded.features, batch_size=self.config.eval_batch_size, verbose=0)
        return [[self.data.labels[i] for i in ids] for ids in word_predictions(logits, encoded)]

    def _score(self, model, split):
        predicted = self.predicted_tags(model, split)
        # As the original: the words cut off a long sentence are not scored.
        gold = [self.data.model_tags(s.tags)[:len(p)] for s, p in zip(split.examples, predicted)]
        return metrics_lib.score(gold, predicted, self.data.chunk), predicted

    def evaluate(self, model):
        return self._score(model, self.data.dev[0])[0]

    def report_features(self):
        return [f"{name}: {encoded.cut_words:,} words beyond max_seq_length {self.config.max_seq_length} are not "
                "tagged or scored" for name, encoded in self.features.splits.items() if encoded.cut_words]

    def skipped(self):
        return {name: {"cut_words": encoded.cut_words} for name, encoded in self.features.splits.items()
                if encoded.cut_words}

    def record(self):
        data = self.data
        return {"task": data.name, "tags": data.labels, "chunk": data.chunk, "bioes": data.bioes,
                "tag_column": data.tag_column, **self._model_record()}

    def _file_tags(self, tags):
        # The chunk preset learns BIOES; its predictions are written in IOB2, CoNLL-2000's scheme.
        return spans_lib.tags_of_spans(spans_lib.span_labels(tags), len(tags), "BIO") if self.data.bioes else tags

    def write_outputs(self, model, record):
        results = {"predictions": []}
        for split in self.data.test:
            scores, predicted = (self._score(model, split) if split.labelled
                                 else (None, self.predicted_tags(model, split)))
            directory = os.path.join(self.options.output_dir, "predictions")
            os.makedirs(directory, exist_ok=True)
            path = os.path.join(directory, f"{split.name}.txt")
            with atomic_file(path) as f:
                for sentence, tags in zip(split.examples, predicted):
                    shown = self._file_tags(tags) + [""] * (len(sentence.words) - len(tags))
                    for k, word in enumerate(sentence.words):
                        gold = f" {sentence.tags[k]}" if split.labelled else ""
                        f.write(f"{word}{gold} {shown[k] or '-'}\n")
                    f.write("\n")
            results["predictions"].append(path)
            if scores:
                results.setdefault("test", {})[split.name] = scores
        if self.options.export:
            results["export"] = export_tagger(model, os.path.join(self.options.output_dir, "export"), record,
                                              iob2=self.data.bioes)
        return results
