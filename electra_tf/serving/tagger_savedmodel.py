"""The exported fine-tuned tagger: sentences in, their words with a tag each out.

`export_tagger` writes a SavedModel with two signatures: `serve_text` (a
batch of sentences, split into words on whitespace and tokenized in the
graph with the project's tokenizer -> `words` and `tags`, string
[batch, max words] padded with "", and `num_words`; a word beyond what fits
in the sequence gets the tag "") and `serving_default` (int32 input_ids,
input_mask, segment_ids -> `logits` [batch, sequence, tags]). `tags.txt`,
`vocab.txt` and `finetuning_config.json` are written beside it. It loads
with `tf.saved_model.load` (after `import tensorflow_text`) in a process
that does not import electra_tf.
"""


import tensorflow as tf
import tensorflow_text as tf_text

from electra_tf.serving import model_card
from electra_tf.serving.classifier_savedmodel import write_beside
from electra_tf.text.spans import iob2_tensor
from electra_tf.utils.atomic import atomic_directory


class TaggerServing(tf.Module):
    """An `ElectraTagger` with its preprocessor and tag names, as a tf.Module to save.

    Args:
        tagger: the trained `ElectraTagger` (its `preprocessor` tokenizes serve_text's words).
        iob2: re-write serve_text's chunk tags in IOB2 (a tagger trained on BIOES, as the chunk preset).
    """

    def __init__(self, tagger, iob2=False):
        super().__init__(name="electra_tagger")
        self.tagger = tagger
        self.preprocessor = tagger.preprocessor
        self.tags = tf.constant(tagger.tags)
        self.iob2 = iob2

    @tf.function(input_signature=[tf.TensorSpec([None, None], tf.int32)] * 3)
    def serve(self, input_ids, input_mask, segment_ids):
        inputs = {"input_ids": input_ids, "input_mask": input_mask, "segment_ids": segment_ids}
        return {"logits": self.tagger(inputs, training=False)}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def serve_text(self, text):
        p = self.preprocessor
        words = tf.strings.split(text)
        pieces = p.tokenize_words(words)  # [batch, (words), (pieces)]
        ends = tf.math.cumsum(pieces.row_lengths(axis=2), axis=1)  # ragged [batch, (words)]
        # A word is kept when it and every word before it fit between [CLS] and [SEP].
        keep = ends + 2 <= p.sequence_length
        first = ends - pieces.row_lengths(axis=2) + 1
        kept = tf.ragged.boolean_mask(pieces, keep).merge_dims(1, 2)
        ids, segments = tf_text.combine_segments([kept], start_of_sequence_id=p.cls_id, end_of_segment_id=p.sep_id)
        del segments  # the original's tagging layout: segment 1 on every real token
        input_ids, input_mask = tf_text.pad_model_inputs(ids, p.sequence_length, pad_value=p.pad_id)
        features = {"input_ids": tf.cast(input_ids, tf.int32), "input_mask": tf.cast(input_mask, tf.int32),
                    "segment_ids": tf.cast(input_mask, tf.int32)}
        best = tf.argmax(self.tagger(features, training=False), axis=-1, output_type=tf.int32)
        positions = (first * tf.cast(keep, first.dtype)).to_tensor()
        tag_ids = tf.gather(best, tf.cast(positions, tf.int32), batch_dims=1)
        kept = keep.to_tensor(False)
        if self.iob2:
            tags = iob2_tensor(tag_ids, kept, self.tagger.tags)
        else:
            tags = tf.where(kept, tf.gather(self.tags, tag_ids), "")
        return {"words": words.to_tensor(""), "tags": tags, "num_words": tf.cast(words.row_lengths(), tf.int32)}


def export_tagger(tagger, export_dir, config=None, iob2=False):
    """Writes the tagger's SavedModel to `export_dir` (replacing one there only once the new one is complete).

    Args:
        tagger: a trained `ElectraTagger` with a preprocessor.
        export_dir: the directory to write.
        config: a dict written beside it as finetuning_config.json (what the model was trained on).
        iob2: serve_text answers chunk tags in IOB2 whatever scheme the tagger learnt (`iob2_tensor`), as
            run_finetuning's chunk preset writes its predictions.

    Example:

    >>> vocab = os.path.join(tempfile.mkdtemp(), "vocab.txt")
    >>> _ = open(vocab, "w").write("\\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "cat", "sat"]))
    >>> tagger = ElectraTagger(ElectraConfig.for_size("tiny", max_seq_length=16, **special_token_ids(vocab)),
    ...                        tags=["NP", "VP"], preprocessor=ElectraPreprocessor(vocab, sequence_length=16))
    >>> export_dir = export_tagger(tagger, os.path.join(tempfile.mkdtemp(), "export"))
    >>> out = tf.saved_model.load(export_dir).signatures["serve_text"](tf.constant(["the cat sat", "sat"]))
    >>> out["words"].numpy().tolist(), out["tags"].shape, out["num_words"].numpy().tolist()
    ([[b'the', b'cat', b'sat'], [b'sat', b'', b'']], TensorShape([2, 3]), [3, 1])
    """
    module = TaggerServing(tagger, iob2)
    with atomic_directory(export_dir, replace=True) as staging:
        tf.saved_model.save(module, staging, signatures={"serving_default": module.serve,
                                                         "serve_text": module.serve_text})
        write_beside(staging, tagger.preprocessor, config, {"tags.txt": tagger.tags})
        model_card.write_card(staging, model_card.finetuned_card(
            "tagger", tagger.config, tagger.preprocessor.lowercase, config or {}, tagger.tags))
    return export_dir
