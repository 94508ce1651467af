"""`ElectraQuestionAnswerer`: the discriminator's encoder with an extractive QA head (the original's, or linear)."""

import math

import keras
import numpy as np
import tensorflow as tf

from electra_tf.finetuning import inputs
from electra_tf.finetuning.base import FinetuningModel
from electra_tf.finetuning.qa.config import QAConfig
from electra_tf.finetuning.qa.features import make_windows
from electra_tf.finetuning.qa.head import LinearQAHead, QAHead
from electra_tf.finetuning.qa.postprocess import best_answers
from electra_tf.finetuning.qa.squad import make_example
from electra_tf.serving.qa_savedmodel import export_answerer
from electra_tf.utils.errors import UserError


def _cross_entropy(logits, positions):
    return tf.nn.sparse_softmax_cross_entropy_with_logits(labels=tf.cast(positions, tf.int32), logits=logits)


@keras.saving.register_keras_serializable(package="electra_tf")
class ElectraQuestionAnswerer(FinetuningModel):
    """The discriminator's encoder -> a QA head: answer spans (and "no answer") in a context.

    The original's QA model (google-research/electra `finetune/qa/qa_tasks.py`)
    with its `QAHead`, or with `qa.qa_head="linear"` the `LinearQAHead` of
    transformers' `ElectraForQuestionAnswering`, which trains, predicts,
    exports and is scored through the same code.
    Its inputs are the dict of int32 `input_ids`, `input_mask`,
    `segment_ids` of `[CLS] question [SEP] context window [SEP]` (and, to
    train, `start_positions`); it returns the head's dict. The loss, summed
    over the batch, is the mean of the start and end cross-entropies (an
    unanswerable window's gold span is [CLS]), plus, for the original
    head, `answerable_weight` x the answerability sigmoid cross-entropy.

    With a `preprocessor`, `fit` takes `(questions, contexts)` and answers
    (each `{"text": ..., "answer_start": character offset}`, or None for
    "no answer"), and `predict` takes `(questions, contexts)` and returns,
    per question, `{"answer", "score", "null_score", "n_best"}`: the answer
    is "" when `null_score` exceeds `qa.na_threshold`. Questions, contexts
    and answers are checked before any graph runs (one-line `UserError`s).
    `export` writes the SavedModel run_finetuning writes; `save_to_preset` /
    `from_preset` keep the model with its `qa` settings. `compile()` without
    arguments sets the original's recipe (see `FinetuningModel`).

    Args:
        config: the `ElectraConfig` of the pre-trained model.
        preprocessor: an `ElectraPreprocessor` (tokenizer and sequence length), or None.
        qa: a `QAConfig` (windows, beam, answer length, no-answer threshold).
        **kwargs: passed to keras.Model.

    Example:

    >>> vocab = os.path.join(tempfile.mkdtemp(), "vocab.txt")
    >>> words = ["who", "sat", "?", "the", "cat", "on", "mat", "dog", "ran"]
    >>> _ = open(vocab, "w").write("\\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + words))
    >>> config = ElectraConfig.for_size("tiny", max_seq_length=24, **special_token_ids(vocab))
    >>> answerer = ElectraQuestionAnswerer(config, ElectraPreprocessor(vocab, sequence_length=24),
    ...                                    QAConfig(max_query_length=8, doc_stride=8, beam_size=4))
    >>> answerer.compile()
    >>> history = answerer.fit((["who sat?"], ["the cat sat on the mat"]), [{"text": "the cat", "answer_start": 0}],
    ...                        epochs=1, verbose=0)
    >>> sorted(answerer.predict((["who ran?"], ["the dog ran"]))[0])
    ['answer', 'n_best', 'null_score', 'score']
    """

    TASK_FAMILY = "qa"

    def __init__(self, config, preprocessor=None, qa=None, **kwargs):
        kwargs.setdefault("name", "electra_question_answerer")
        super().__init__(config, **kwargs)
        self.preprocessor = preprocessor
        self.qa = qa or QAConfig()
        if self.qa.qa_head == "linear":
            self.head = LinearQAHead(self.encoder.hidden_size, self.qa.beam_size, config.initializer_range,
                                     dtype=self.dtype_policy, name="qa_head")
        else:
            self.head = QAHead(self.encoder.hidden_size, self.qa.beam_size, dtype=self.dtype_policy, name="qa_head")
        self.build()

    def build(self, input_shape=None):
        if self.built:
            return
        self.encoder.build((None, self.config.max_seq_length))
        self.head.build()
        self.built = True

    def call(self, inputs, training=None):
        hidden = self.encode(inputs, training=training)
        start_positions = inputs.get("start_positions") if training else None
        return self.head(hidden, inputs["input_mask"], inputs["segment_ids"], start_positions=start_positions)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        losses = (_cross_entropy(y_pred["start_logits"], y["start_positions"])
                  + _cross_entropy(y_pred["end_logits"], y["end_positions"])) / 2.0
        if "answerable_logit" in y_pred:
            losses += self.qa.answerable_weight * tf.nn.sigmoid_cross_entropy_with_logits(
                labels=tf.cast(y["is_impossible"], tf.float32), logits=y_pred["answerable_logit"])
        return tf.reduce_sum(losses)

    def default_metrics(self):
        return None  # the QA metrics need every window of a question: run_finetuning's evaluation

    # ---- text in, answers out ----

    def windows(self, examples, training):
        """The `Windows` of `QAExample`s with this model's preprocessor and settings."""
        if self.preprocessor is None:
            raise UserError("text needs a preprocessor; build the answerer with from_pretrained or pass "
                            "preprocessor=ElectraPreprocessor(...)")
        return make_windows(examples, self.preprocessor, self.qa.max_query_length, self.qa.doc_stride, training)

    @staticmethod
    def training_arrays(windows):
        """(x, y) arrays of training `Windows` for keras fit."""
        x = {**windows.features, "start_positions": windows.start_positions}
        y = {"start_positions": windows.start_positions, "end_positions": windows.end_positions,
             "is_impossible": windows.is_impossible}
        return x, y

    @staticmethod
    def _questions_and_contexts(x):
        if inputs.is_features(x):
            return None
        texts = inputs.texts(x, "(questions, contexts)")
        if len(texts) != 2:
            raise UserError("give the questions and their contexts as a tuple of two lists: (questions, contexts)")
        return texts

    @staticmethod
    def _check_answers(answers, rows):
        if isinstance(answers, str | dict) or not isinstance(answers, list | tuple) or len(answers) != rows:
            count = len(answers) if isinstance(answers, list | tuple) else inputs.a_type(answers)
            raise UserError(f"y must hold one answer per question ({rows} questions, got {count}): "
                            '{"text": ..., "answer_start": character offset}, or None for no answer')
        for k, answer in enumerate(answers):
            if answer is None:
                continue
            if not (isinstance(answer, dict) and isinstance(answer.get("text"), str) and
                    isinstance(answer.get("answer_start"), int) and not isinstance(answer["answer_start"], bool)):
                raise UserError(f"answer {k} is {answer!r}; give "
                                '{"text": ..., "answer_start": its character offset in the context}, or None')

    def fit(self, x=None, y=None, batch_size=None, epochs=1, **kwargs):
        """Like keras fit; `x` may be (questions, contexts) and `y` their answers (dicts, or None)."""
        texts = self._questions_and_contexts(x)
        if texts is not None:
            self._check_answers(y, len(texts[0]))
            examples = []
            for k, (question, context, answer) in enumerate(zip(*texts, y, strict=True)):
                example = make_example(k, str(k), question, context, [answer["text"]] if answer else [],
                                       answer["answer_start"] if answer else None, is_impossible=answer is None)
                if example is None:
                    raise UserError(f"answer {k} ({answer['text']!r}) does not occur at character "
                                    f"{answer['answer_start']} of its context; give the offset where it starts")
                examples.append(example)
            x, y = self.training_arrays(self.windows(examples, training=True))
            batches = math.ceil(len(y["start_positions"]) / (batch_size or 32))
            return self.fit_features(x, y, batches=batches, epochs=epochs, batch_size=batch_size, **kwargs)
        if isinstance(x, tf.data.Dataset):
            kwargs["shuffle"] = False  # a dataset comes shuffled
        return self.fit_features(x, y, batches=kwargs.get("steps_per_epoch"), epochs=epochs, batch_size=batch_size,
                                 **kwargs)

    def answer(self, examples, batch_size=None, **kwargs):
        """`best_answers` of `QAExample`s (every window predicted, then combined)."""
        windows = self.windows(examples, training=False)
        kwargs.setdefault("verbose", 0)
        outputs = keras.Model.predict(self, windows.features, batch_size=batch_size, **kwargs)
        outputs = {k: np.asarray(v) for k, v in outputs.items()}
        return best_answers(examples, windows, outputs, self.preprocessor.vocabulary, self.preprocessor.lowercase,
                            self.qa.max_answer_length, self.qa.n_best_size)

    def predict(self, x, batch_size=None, **kwargs):
        """The head's outputs for features; for (questions, contexts), each question's answer."""
        texts = self._questions_and_contexts(x)
        if texts is None:
            return super().predict(x, batch_size=batch_size, **kwargs)
        examples = [make_example(k, str(k), q, c) for k, (q, c) in enumerate(zip(*texts, strict=True))]
        results = []
        for best in self.answer(examples, batch_size=batch_size, **kwargs):
            text = "" if best["null_score"] > self.qa.na_threshold else best["text"]
            results.append({"answer": text, "score": best["score"], "null_score": best["null_score"],
                            "n_best": best["n_best"]})
        return results

    def export(self, filepath, no_answer=True):
        """Writes the SavedModel run_finetuning writes: `serve_text` (questions, contexts -> answers and scores).

        See `electra_tf.serving.qa_savedmodel`: it tokenizes and reads the
        contexts in windows in its graph, and loads in a process that does
        not import electra_tf.

        Args:
            filepath: the directory to write (an export there is replaced only once the new one is complete).
            no_answer: answer "" when the no-answer score exceeds `qa.na_threshold` (a SQuAD 2.0 model).

        Returns:
            `filepath`.

        Example:

        >>> vocab = os.path.join(tempfile.mkdtemp(), "vocab.txt")
        >>> _ = open(vocab, "w").write("\\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "who", "cat"]))
        >>> config = ElectraConfig.for_size("tiny", max_seq_length=12, **special_token_ids(vocab))
        >>> answerer = ElectraQuestionAnswerer(config, ElectraPreprocessor(vocab, sequence_length=12),
        ...                                    QAConfig(doc_stride=2, beam_size=3))
        >>> export_dir = answerer.export(os.path.join(tempfile.mkdtemp(), "export"), no_answer=False)
        >>> served = tf.saved_model.load(export_dir).signatures["serve_text"]
        >>> served(questions=tf.constant(["who"]), contexts=tf.constant(["cat cat"]))["answer"].shape
        TensorShape([1])
        """
        if self.preprocessor is None:
            raise UserError("export needs the tokenizer: build the answerer with from_pretrained or pass "
                            "preprocessor=ElectraPreprocessor(...)")
        record = {"qa": dict(vars(self.qa)), "lowercase": self.preprocessor.lowercase,
                  "electra_config": self.config.to_dict()}
        return export_answerer(self, filepath, no_answer, record)

    # ---- construction ----

    @classmethod
    def from_pretrained(cls, path, qa=None, sequence_length=512, hidden_dropout_prob=0.1,
                        attention_probs_dropout_prob=0.1, lowercase=None, load_weights=True, new_head=False,
                        **kwargs):
        """A question answerer around the discriminator at `path`, with a preprocessor for its vocabulary.

        A transformers `ElectraForQuestionAnswering` or
        `BertForQuestionAnswering` directory comes with its head, the
        `LinearQAHead` (`qa` default: `QAConfig(qa_head="linear")`; a `qa`
        given must have `qa_head="linear"`); `new_head=True` reads only its
        encoder.

        Args:
            path: a model_dir of run_pretraining or convert_checkpoint, a checkpoint prefix in one, an
                exported discriminator (`<model_dir>/export/discriminator`), a Hugging Face ELECTRA
                discriminator or BERT directory, a keras-hub ElectraBackbone or BertBackbone preset, or a
                fine-tuned model's preset (its encoder); see `electra_tf.finetuning.sources`. A local path:
                nothing is downloaded.
            qa: a `QAConfig` (default: the original's settings; for a transformers task model, its linear head).
            sequence_length: tokens per window (the original's 512; at most max_position_embeddings).
            hidden_dropout_prob: dropout in the encoder.
            attention_probs_dropout_prob: dropout on attention probabilities.
            lowercase: as `ElectraClassifier.from_pretrained`.
            load_weights: False keeps the random initialisation (the untrained baseline).
            new_head: with a transformers task model, read its encoder only and start a new head.
            **kwargs: passed to the constructor (e.g. `name`).

        Example:

        >>> vocab = os.path.join(tempfile.mkdtemp(), "vocab.txt")
        >>> _ = open(vocab, "w").write("\\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "who", "cat"]))
        >>> from electra_tf.serving.savedmodel import export_pretrainer
        >>> pretrainer = ElectraPretrainer(ElectraConfig.for_size("tiny", **special_token_ids(vocab)))
        >>> export = export_pretrainer(pretrainer, vocab, tempfile.mkdtemp())
        >>> answerer = ElectraQuestionAnswerer.from_pretrained(export, sequence_length=32)
        >>> answerer.predict((["who"], ["cat cat"]))[0]["answer"] in ("", "cat", "cat cat")
        True
        """
        return cls._build_pretrained(path, sequence_length, hidden_dropout_prob, attention_probs_dropout_prob,
                                     lowercase, load_weights, new_head, qa=qa, **kwargs)

    def get_config(self):
        return {**super().get_config(), "qa": dict(vars(self.qa))}

    @classmethod
    def _arguments_from_config(cls, config):
        return {**config, "qa": QAConfig(**config.get("qa", {}))}
