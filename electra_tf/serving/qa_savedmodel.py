"""The exported fine-tuned question answerer: questions and contexts in, answer strings and scores out.

`export_answerer` writes a SavedModel whose `serve_text` takes a batch of
questions and a batch of contexts, tokenizes them in the graph with the
project's tokenizer, reads each context in windows as run_finetuning does
(question pieces cut to max_query_length, windows every doc_stride
pieces), runs the beam of the original's head and returns `answer` (the
original characters of the best span's words; "" for "no answer" on
SQuAD 2.0 when `null_score` exceeds the run's threshold), `score` (start +
end log-probability) and `null_score`. Two simplifications against
run_finetuning's post-processing: a span's text is its whole words (not
narrowed to its word pieces), and a piece seen by two windows competes in
both (no max-context rule). `serving_default` takes int32 ids and returns
the head's beam. It loads with `tf.saved_model.load` (after
`import tensorflow_text`) in a process that does not import electra_tf.
"""


import tensorflow as tf
import tensorflow_text as tf_text

from electra_tf.serving.classifier_savedmodel import write_beside
from electra_tf.utils.atomic import atomic_directory


class AnswererServing(tf.Module):
    """An `ElectraQuestionAnswerer` with its preprocessor and settings, as a tf.Module to save.

    Args:
        answerer: the trained `ElectraQuestionAnswerer` (with a preprocessor).
        no_answer: answer "" when the no-answer score exceeds the threshold (SQuAD 2.0).
    """

    def __init__(self, answerer, no_answer):
        super().__init__(name="electra_question_answerer")
        self.answerer = answerer
        self.preprocessor = answerer.preprocessor
        self.no_answer = no_answer
        self.words = tf_text.WhitespaceTokenizer()

    @tf.function(input_signature=[tf.TensorSpec([None, None], tf.int32)] * 3)
    def serve(self, input_ids, input_mask, segment_ids):
        inputs = {"input_ids": input_ids, "input_mask": input_mask, "segment_ids": segment_ids}
        return self.answerer(inputs, training=False)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string), tf.TensorSpec([None], tf.string)])
    def serve_text(self, questions, contexts):
        p, qa = self.preprocessor, self.answerer.qa
        sequence = p.sequence_length
        batch = tf.shape(questions, out_type=tf.int64)[0]
        query = p.tokenize(questions)[:, :qa.max_query_length]
        words, word_starts, word_ends = self.words.tokenize_with_offsets(contexts)
        pieces = p.tokenize_words(words)  # [batch, (words), (pieces)]
        doc = pieces.merge_dims(1, 2)  # [batch, (pieces)]
        piece_word = tf.RaggedTensor.from_row_splits(
            tf.repeat(tf.ragged.range(words.row_lengths()).flat_values, pieces.row_lengths(axis=2).flat_values),
            doc.row_splits)
        doc_length = doc.row_lengths()
        room = sequence - query.row_lengths() - 3
        stride = tf.minimum(tf.constant(qa.doc_stride, tf.int64), room)
        count = 1 + tf.maximum(0 * doc_length, (doc_length - room + stride - 1) // stride)
        example = tf.repeat(tf.range(batch), count)  # the question of each window
        start = tf.ragged.range(count).flat_values * tf.gather(stride, example)
        length = tf.minimum(tf.gather(room, example), tf.gather(doc_length, example) - start)
        positions = tf.ragged.range(length) + tf.expand_dims(start + tf.gather(doc.row_splits, example), 1)
        window = tf.gather(doc.flat_values, positions)  # ragged [windows, (pieces)]
        window_word = tf.gather(piece_word.flat_values, positions)
        ids, segments = tf_text.combine_segments([tf.gather(query, example), window], start_of_sequence_id=p.cls_id,
                                                 end_of_segment_id=p.sep_id)
        input_ids, input_mask = tf_text.pad_model_inputs(ids, sequence, pad_value=p.pad_id)
        segment_ids, _ = tf_text.pad_model_inputs(segments, sequence)
        out = self.answerer({"input_ids": tf.cast(input_ids, tf.int32), "input_mask": tf.cast(input_mask, tf.int32),
                             "segment_ids": tf.cast(segment_ids, tf.int32)}, training=False)
        # The context word at each position of each window (-1 outside the context).
        offset = tf.gather(query.row_lengths(), example) + 2
        word_at = tf.RaggedTensor.from_row_lengths(
            tf.fill([tf.reduce_sum(offset)], tf.constant(-1, tf.int64)), offset)
        word_at = tf.concat([word_at, window_word], axis=1).to_tensor(-1, shape=[None, sequence])
        starts = tf.cast(out["start_top_index"], tf.int64)  # [windows, beam]
        ends = tf.cast(out["end_top_index"], tf.int64)  # [windows, beam, beam]
        starts_b = tf.broadcast_to(starts[:, :, None], tf.shape(ends, out_type=tf.int64))
        start_word = tf.gather(word_at, starts_b, batch_dims=1)
        end_word = tf.gather(word_at, ends, batch_dims=1)
        valid = ((starts_b > 0) & (start_word >= 0) & (end_word >= 0) & (ends >= starts_b)
                 & (ends - starts_b + 1 <= qa.max_answer_length))
        scores = out["start_top_log_probs"][:, :, None] + out["end_top_log_probs"]
        scores = tf.where(valid, scores, -1e30)
        flat = tf.reshape(scores, [tf.shape(scores)[0], -1])
        best_in_window = tf.argmax(flat, axis=1)
        best_score = tf.reduce_max(flat, axis=1)
        best_of_question = tf.math.unsorted_segment_max(best_score, example, batch)
        windows = tf.range(tf.shape(example, out_type=tf.int64)[0])
        winner = tf.math.unsorted_segment_min(
            tf.where(best_score >= tf.gather(best_of_question, example), windows, tf.int64.max), example, batch)
        pick = tf.gather(best_in_window, winner)
        first = tf.gather_nd(tf.reshape(start_word, [tf.shape(scores)[0], -1]), tf.stack([winner, pick], 1))
        last = tf.gather_nd(tf.reshape(end_word, [tf.shape(scores)[0], -1]), tf.stack([winner, pick], 1))
        found = best_of_question > -1e29
        rows = tf.range(batch)
        begin = tf.gather_nd(word_starts.to_tensor(0), tf.stack([rows, tf.maximum(first, 0)], 1))
        end = tf.gather_nd(word_ends.to_tensor(0), tf.stack([rows, tf.maximum(last, 0)], 1))
        answer = tf.where(found, tf.strings.substr(contexts, begin, end - begin), "")
        null_score = tf.math.unsorted_segment_min(out["answerable_logit"], example, batch)
        if self.no_answer:
            answer = tf.where(null_score > qa.na_threshold, "", answer)
        return {"answer": answer, "score": tf.where(found, best_of_question, -float("inf")),
                "null_score": null_score}


def export_answerer(answerer, export_dir, no_answer=True, config=None):
    """Writes the question answerer's SavedModel to `export_dir` (replacing one only once the new one is complete).

    Args:
        answerer: a trained `ElectraQuestionAnswerer` with a preprocessor.
        export_dir: the directory to write.
        no_answer: answer "" above the no-answer threshold (a SQuAD 2.0 model).
        config: a dict written beside it as finetuning_config.json (what the model was trained on).

    Example:

    >>> vocab = os.path.join(tempfile.mkdtemp(), "vocab.txt")
    >>> _ = open(vocab, "w").write("\\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "who", "cat", "sat"]))
    >>> answerer = ElectraQuestionAnswerer(
    ...     ElectraConfig.for_size("tiny", max_seq_length=12, **special_token_ids(vocab)),
    ...     ElectraPreprocessor(vocab, sequence_length=12), QAConfig(doc_stride=2, beam_size=3))
    >>> export_dir = export_answerer(answerer, os.path.join(tempfile.mkdtemp(), "export"), no_answer=False)
    >>> model = tf.saved_model.load(export_dir)
    >>> out = model.signatures["serve_text"](questions=tf.constant(["who sat"]), contexts=tf.constant(["cat sat"]))
    >>> out["answer"].numpy()[0] in (b"cat", b"sat", b"cat sat")
    True
    """
    module = AnswererServing(answerer, no_answer)
    with atomic_directory(export_dir, replace=True) as staging:
        tf.saved_model.save(module, staging, signatures={"serving_default": module.serve,
                                                         "serve_text": module.serve_text})
        write_beside(staging, answerer.preprocessor, config)
    return export_dir
