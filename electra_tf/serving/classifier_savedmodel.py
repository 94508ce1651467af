"""The exported fine-tuned classifier: raw text (or ids) in, label probabilities (or a score) out.

`export_classifier` writes a SavedModel with two signatures:
`serve_text` (one batch of strings, or two for a sentence-pair task ->
`probabilities` [batch, classes], `label` (the label string) and
`label_id`; for regression `score`), tokenized in the graph with the
project's tokenizer, and `serving_default` (int32 input_ids, input_mask,
segment_ids -> `logits` and `probabilities`, or `score`). `labels.txt`,
`vocab.txt`, `finetuning_config.json` and a model card, `README.md`
(serving/model_card.py), are written beside it. It loads
with `tf.saved_model.load` (after `import tensorflow_text`) in a process
that does not import electra_tf.
"""

import json
import os

import tensorflow as tf

from electra_tf.serving import model_card
from electra_tf.utils.atomic import atomic_directory


def _ids_spec():
    return tf.TensorSpec([None, None], tf.int32)


def _text_spec():
    return tf.TensorSpec([None], tf.string)


class ClassifierServing(tf.Module):
    """An `ElectraClassifier` with its preprocessor and label names, as a tf.Module to save.

    Args:
        classifier: the trained `ElectraClassifier` (its `preprocessor` tokenizes serve_text's input).
        labels: the label strings in id order (None for regression).
        pair: whether serve_text takes two batches of strings (text_a, text_b).
        score_scale: regression scores are multiplied by it (STS-B trains on scores / 5).
    """

    def __init__(self, classifier, labels=None, pair=False, score_scale=1.0):
        super().__init__(name="electra_classifier")
        self.classifier = classifier
        self.preprocessor = classifier.preprocessor
        self.regression = labels is None
        self.labels = None if self.regression else tf.constant(list(labels))
        self.score_scale = float(score_scale)
        if pair:
            self.serve_text = tf.function(self._serve_pair, input_signature=[_text_spec(), _text_spec()])
        else:
            self.serve_text = tf.function(self._serve_single, input_signature=[_text_spec()])

    def _outputs(self, features):
        logits = self.classifier(features, training=False)
        if self.regression:
            return {"score": logits[:, 0] * self.score_scale}
        probabilities = tf.nn.softmax(logits, axis=-1)
        label_id = tf.argmax(logits, axis=-1, output_type=tf.int32)
        return {"probabilities": probabilities, "label_id": label_id, "label": tf.gather(self.labels, label_id),
                "logits": logits}

    @tf.function(input_signature=[_ids_spec(), _ids_spec(), _ids_spec()])
    def serve(self, input_ids, input_mask, segment_ids):
        outputs = self._outputs({"input_ids": input_ids, "input_mask": input_mask, "segment_ids": segment_ids})
        return {k: v for k, v in outputs.items() if k in ("logits", "probabilities", "score")}

    def _serve_single(self, text):
        return self._outputs(self.preprocessor.pack([self.preprocessor.tokenize(text)]))

    def _serve_pair(self, text_a, text_b):
        preprocessor = self.preprocessor
        return self._outputs(preprocessor.pack([preprocessor.tokenize(text_a), preprocessor.tokenize(text_b)]))


def export_classifier(classifier, export_dir, labels=None, pair=False, score_scale=1.0, config=None):
    """Writes the SavedModel to `export_dir` (replacing one there only once the new one is complete).

    Args:
        classifier: a trained `ElectraClassifier` with a preprocessor.
        export_dir: the directory to write.
        labels: label strings in id order; None for regression.
        pair: serve_text takes (text_a, text_b).
        score_scale: multiplies regression scores (the task's label scale).
        config: a dict written beside it as finetuning_config.json (what the model was trained on), which the
            model card (README.md) states.

    Example:

    >>> vocab = os.path.join(tempfile.mkdtemp(), "vocab.txt")
    >>> _ = open(vocab, "w").write("\\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "gem", "."]))
    >>> classifier = ElectraClassifier(ElectraConfig.for_size("tiny", max_seq_length=16, **special_token_ids(vocab)),
    ...                                num_classes=2, preprocessor=ElectraPreprocessor(vocab, sequence_length=16))
    >>> export_dir = os.path.join(tempfile.mkdtemp(), "export")
    >>> export_classifier(classifier, export_dir, labels=["negative", "positive"]) == export_dir
    True
    >>> model = tf.saved_model.load(export_dir)
    >>> model.signatures["serve_text"](tf.constant(["a gem ."]))["label"].shape
    TensorShape([1])
    """
    module = ClassifierServing(classifier, labels, pair, score_scale)
    with atomic_directory(export_dir, replace=True) as staging:
        tf.saved_model.save(module, staging, signatures={"serving_default": module.serve,
                                                         "serve_text": module.serve_text})
        write_beside(staging, classifier.preprocessor, config, {"labels.txt": labels} if labels is not None else {})
        model_card.write_card(staging, model_card.finetuned_card(
            "classifier", classifier.config, classifier.preprocessor.lowercase, config or {}, labels))
    return export_dir


def write_beside(staging, preprocessor, config, lists=None):
    """The files beside a fine-tuned SavedModel: vocab.txt, finetuning_config.json and `lists` ({name: lines})."""
    for name, lines in {"vocab.txt": preprocessor.vocabulary, **(lists or {})}.items():
        with open(os.path.join(staging, name), "w", encoding="utf-8") as f:
            f.write("\n".join(lines) + "\n")
    with open(os.path.join(staging, "finetuning_config.json"), "w", encoding="utf-8") as f:
        json.dump(config or {}, f, indent=2, sort_keys=True)
