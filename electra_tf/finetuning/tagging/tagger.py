"""`ElectraTagger`: the discriminator's encoder with the original's tagging head (a tag per word)."""

import math

import keras
import tensorflow as tf

from electra_tf.finetuning import inputs
from electra_tf.finetuning.base import FinetuningModel
from electra_tf.finetuning.tagging.features import encode, word_pieces, word_predictions
from electra_tf.serving.tagger_savedmodel import export_tagger
from electra_tf.utils.errors import UserError


@keras.saving.register_keras_serializable(package="electra_tf")
class ElectraTagger(FinetuningModel):
    """The discriminator's encoder -> one dense layer on every token: a tag for each word's first piece.

    The original's tagging model (google-research/electra
    `finetune/tagging/tagging_tasks.py`): no dropout before the dense layer
    (Glorot-uniform weights, zero bias), softmax cross-entropy on each
    word's first word piece, summed over the words and the batch. Its
    inputs are the dict of int32 `input_ids`, `input_mask`, `segment_ids`;
    it returns float32 logits `[batch, sequence, tags]`.

    With a `preprocessor`, `fit` takes sentences as lists of words and
    their tags as lists of tag strings, and `predict` returns a list of tags
    per sentence (None for the words of a sentence longer than the sequence).
    Sentences and tags are checked before any graph runs (a string where a
    list of words belongs, an empty batch, a tag list of another length than
    its sentence, an unknown tag: one-line `UserError`s). `export` writes
    the SavedModel run_finetuning writes; `save_to_preset` / `from_preset`
    keep the model with its tags.
    `compile()` without arguments sets the original's recipe (see
    `FinetuningModel`).

    Args:
        config: the `ElectraConfig` of the pre-trained model (its dropout rates apply to the encoder).
        tags: the tag strings, in id order.
        preprocessor: an `ElectraPreprocessor` (its tokenizer and sequence length) for word inputs, or None.
        **kwargs: passed to keras.Model (e.g. `name`).

    Example:

    >>> vocab = os.path.join(tempfile.mkdtemp(), "vocab.txt")
    >>> words = ["the", "cat", "sat", "on", "mat", "dog", "ran"]
    >>> _ = open(vocab, "w").write("\\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + words))
    >>> config = ElectraConfig.for_size("tiny", max_seq_length=16, **special_token_ids(vocab))
    >>> tagger = ElectraTagger(config, tags=["B-NP", "I-NP", "B-VP", "B-PP"],
    ...                        preprocessor=ElectraPreprocessor(vocab, sequence_length=16))
    >>> tagger.compile()
    >>> history = tagger.fit([["the", "cat", "sat"], ["the", "dog", "ran"]],
    ...                      [["B-NP", "I-NP", "B-VP"], ["B-NP", "I-NP", "B-VP"]], epochs=2, batch_size=2, verbose=0)
    >>> len(tagger.predict([["the", "cat", "sat", "on", "the", "mat"]])[0])
    6
    """

    TASK_FAMILY = "tagging"

    def __init__(self, config, tags, preprocessor=None, **kwargs):
        kwargs.setdefault("name", "electra_tagger")
        if tags is None:
            raise UserError("a tagger needs its tags (tags=[...], in id order); only a transformers token "
                            "classifier brings its own")
        if isinstance(tags, str) or len(tags) < 2 or len(set(tags)) != len(tags):
            raise UserError(f"a tagger needs two or more distinct tags, got {tags!r}")
        super().__init__(config, **kwargs)
        self.tags = list(tags)
        self.preprocessor = preprocessor
        self.head = keras.layers.Dense(len(self.tags), kernel_initializer="glorot_uniform", dtype=self.dtype_policy,
                                       name="tagger_head")
        self.build()

    def build(self, input_shape=None):
        if self.built:
            return
        self.encoder.build((None, self.config.max_seq_length))
        self.head.build((None, None, self.encoder.hidden_size))
        self.built = True

    def call(self, inputs, training=None):
        return keras.ops.cast(self.head(self.encode(inputs, training=training)), "float32")

    def default_loss(self):
        # Weighted by fit's sample weights (1 on first pieces), summed: the original's loss.
        return keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction="sum")

    # ---- words in, tags out ----

    def _encode_words(self, sentences, tags=None):
        if self.preprocessor is None:
            raise UserError("words need a preprocessor; build the tagger with from_pretrained or pass "
                            "preprocessor=ElectraPreprocessor(...)")
        tag_ids = None
        if tags is not None:
            tag_ids = self._tag_ids(sentences, tags)
        p = self.preprocessor
        return encode(word_pieces(p, sentences), p.sequence_length, p.cls_id, p.sep_id, tag_ids)

    def _tag_ids(self, sentences, tags):
        if isinstance(tags, str) or not isinstance(tags, list | tuple) or len(tags) != len(sentences):
            count = len(tags) if isinstance(tags, list | tuple) else inputs.a_type(tags)
            raise UserError(f"y must hold one list of tags per sentence: {len(sentences)} sentences, got {count}")
        ids = {tag: i for i, tag in enumerate(self.tags)}
        for k, (words, sentence_tags) in enumerate(zip(sentences, tags)):
            if isinstance(sentence_tags, str) or not isinstance(sentence_tags, list | tuple) or \
                    len(sentence_tags) != len(words):
                count = len(sentence_tags) if isinstance(sentence_tags, list | tuple) else inputs.a_type(sentence_tags)
                raise UserError(f"sentence {k} has {len(words)} words but {count} tags; give one tag per word")
            unknown = next((t for t in sentence_tags if t not in ids), None)
            if unknown is not None:
                raise UserError(f"tag {unknown!r} of sentence {k} is not one of the tagger's tags "
                                f"({', '.join(self.tags[:8])}{', ...' if len(self.tags) > 8 else ''}); build it "
                                "with every tag the data uses")
        return [[ids[t] for t in sentence_tags] for sentence_tags in tags]

    def fit(self, x=None, y=None, batch_size=None, epochs=1, **kwargs):
        """Like keras fit; `x` may be sentences (lists of words) and `y` their tags (lists of strings)."""
        if not inputs.is_features(x):
            sentences = inputs.sentences(x)
            if y is None:
                raise UserError("fit needs the tags: fit(sentences, tags), one list of tags per sentence")
            encoded = self._encode_words(sentences, y)
            kwargs.pop("sample_weight", None)
            batches = math.ceil(len(sentences) / (batch_size or 32))
            return self.fit_features(encoded.features, encoded.labels, batches=batches, epochs=epochs,
                                     batch_size=batch_size, sample_weight=encoded.weights, **kwargs)
        if isinstance(x, tf.data.Dataset):
            kwargs["shuffle"] = False  # a dataset comes shuffled
        return self.fit_features(x, y, batches=kwargs.get("steps_per_epoch"), epochs=epochs,
                                 batch_size=batch_size, **kwargs)

    def predict(self, x, batch_size=None, **kwargs):
        """Logits for features; for sentences (lists of words), their tags (None where a sentence was cut)."""
        if inputs.is_features(x):
            return super().predict(x, batch_size=batch_size, **kwargs)
        sentences = inputs.sentences(x)
        encoded = self._encode_words(sentences)
        kwargs.setdefault("verbose", 0)
        logits = super().predict(encoded.features, batch_size=batch_size, **kwargs)
        return [[self.tags[i] for i in ids] + [None] * (len(words) - len(ids))
                for words, ids in zip(sentences, word_predictions(logits, encoded))]

    def export(self, filepath, iob2=False):
        """Writes the SavedModel run_finetuning writes: `serve_text` (sentences -> words and tags), `serving_default`.

        See `electra_tf.serving.tagger_savedmodel`: it tokenizes in its graph
        and loads in a process that does not import electra_tf.

        Args:
            filepath: the directory to write (an export there is replaced only once the new one is complete).
            iob2: answer chunk tags in IOB2 whatever scheme the tags are in (as the chunk task's export).

        Returns:
            `filepath`.

        Example:

        >>> vocab = os.path.join(tempfile.mkdtemp(), "vocab.txt")
        >>> _ = open(vocab, "w").write("\\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "cat"]))
        >>> config = ElectraConfig.for_size("tiny", max_seq_length=16, **special_token_ids(vocab))
        >>> preprocessor = ElectraPreprocessor(vocab, sequence_length=16)
        >>> tagger = ElectraTagger(config, tags=["DT", "NN"], preprocessor=preprocessor)
        >>> export_dir = tagger.export(os.path.join(tempfile.mkdtemp(), "export"))
        >>> tf.saved_model.load(export_dir).signatures["serve_text"](tf.constant(["the cat"]))["tags"].shape
        TensorShape([1, 2])
        """
        if self.preprocessor is None:
            raise UserError("export needs the tokenizer: build the tagger with from_pretrained or pass "
                            "preprocessor=ElectraPreprocessor(...)")
        record = {"tags": self.tags, "lowercase": self.preprocessor.lowercase,
                  "electra_config": self.config.to_dict()}
        return export_tagger(self, filepath, record, iob2=iob2)

    # ---- construction ----

    @classmethod
    def from_pretrained(cls, path, tags=None, sequence_length=128, hidden_dropout_prob=0.1,
                        attention_probs_dropout_prob=0.1, lowercase=None, load_weights=True, new_head=False,
                        **kwargs):
        """A tagger around the discriminator at `path`, with a preprocessor for its vocabulary.

        A transformers `ElectraForTokenClassification` or
        `BertForTokenClassification` directory comes with its head and its
        tags (`id2label` in id order); its segment-embedding rows are swapped
        back to the tagger's layout (segment 1 on every token), so the logits
        are transformers' on the inputs its tokenizer makes. Tags given must
        be its tags (in any order); `new_head=True` reads only its encoder.

        Args:
            path: a model_dir of run_pretraining or convert_checkpoint, a checkpoint prefix in one, an
                exported discriminator (`<model_dir>/export/discriminator`), a Hugging Face ELECTRA
                discriminator or BERT directory (or a transformers task model), a keras-hub ElectraBackbone
                or BertBackbone preset, or a fine-tuned model's preset (its encoder); see
                `electra_tf.finetuning.sources`. A local path: nothing is downloaded.
            tags: the tag strings, in id order (default: the head's; required for any other source).
            sequence_length: tokens per sentence (at most the model's max_position_embeddings).
            hidden_dropout_prob: dropout in the encoder.
            attention_probs_dropout_prob: dropout on attention probabilities.
            lowercase: as `ElectraClassifier.from_pretrained`.
            load_weights: False keeps the random initialisation (the untrained baseline).
            new_head: with a transformers task model, read its encoder only and start a new head.
            **kwargs: passed to the constructor (e.g. `name`).

        Example:

        >>> vocab = os.path.join(tempfile.mkdtemp(), "vocab.txt")
        >>> _ = open(vocab, "w").write("\\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "film"]))
        >>> from electra_tf.serving.savedmodel import export_pretrainer
        >>> pretrainer = ElectraPretrainer(ElectraConfig.for_size("tiny", **special_token_ids(vocab)))
        >>> export = export_pretrainer(pretrainer, vocab, tempfile.mkdtemp())
        >>> tagger = ElectraTagger.from_pretrained(export, tags=["DT", "NN"], sequence_length=32)
        >>> tagger.predict([["a", "film"]])[0][0] in ("DT", "NN")
        True
        """
        return cls._build_pretrained(path, sequence_length, hidden_dropout_prob, attention_probs_dropout_prob,
                                     lowercase, load_weights, new_head, tags=tags, **kwargs)

    def get_config(self):
        return {**super().get_config(), "tags": self.tags}
