"""The exported fine-tuned question answerer: questions and contexts in, answer strings and scores out.

`export_answerer` writes a SavedModel whose `serve_text` takes a batch of
questions and a batch of contexts, tokenizes them in the graph with the
project's tokenizer, reads each context in windows as run_finetuning does
(question pieces cut to max_query_length, windows every doc_stride
pieces), runs the beam of the answerer's head and returns `answer` (the
original characters of the best span's word pieces; "" for "no answer"
on SQuAD 2.0 when `null_score` exceeds the run's threshold), `score`
(start + end log-probability) and `null_score` (the head's no-answer
score, as run_finetuning's post-processing computes it). A span starts where its
window gives the start piece its most context, as in run_finetuning's
post-processing. Where cleaning changed a word's length (accents
stripped), its pieces cannot be placed in it and a span keeps that whole
word, where run_finetuning still narrows it by matching the pieces' text.
Inside a word with an [UNK] piece it is the other way round: the offsets
narrow the span, where run_finetuning (as the original) keeps the word.
`serving_default` takes int32 ids and returns
the head's beam. It loads with `tf.saved_model.load` (after
`import tensorflow_text`) in a process that does not import electra_tf.
"""


import tensorflow as tf
import tensorflow_text as tf_text

from electra_tf.serving import model_card
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
        words, word_starts, _ = self.words.tokenize_with_offsets(contexts)
        pieces, piece_starts, piece_ends = p.tokenize_words(words, offsets=True)  # [batch, (words), (pieces)]
        doc = pieces.merge_dims(1, 2)  # [batch, (pieces)]
        # Each piece's bytes in its context.
        word_start = tf.repeat(tf.cast(word_starts.flat_values, tf.int64), pieces.row_lengths(axis=2).flat_values)
        piece_begin = word_start + piece_starts.flat_values
        piece_end = word_start + piece_ends.flat_values
        doc_length = doc.row_lengths()
        room = sequence - query.row_lengths() - 3
        stride = tf.minimum(tf.constant(qa.doc_stride, tf.int64), room)
        count = 1 + tf.maximum(0 * doc_length, (doc_length - room + stride - 1) // stride)
        example = tf.repeat(tf.range(batch), count)  # the question of each window
        start = tf.ragged.range(count).flat_values * tf.gather(stride, example)
        length = tf.minimum(tf.gather(room, example), tf.gather(doc_length, example) - start)
        positions = tf.ragged.range(length) + tf.expand_dims(start + tf.gather(doc.row_splits, example), 1)
        window = tf.gather(doc.flat_values, positions)  # ragged [windows, (pieces)]
        ids, segments = tf_text.combine_segments([tf.gather(query, example), window], start_of_sequence_id=p.cls_id,
                                                 end_of_segment_id=p.sep_id)
        input_ids, input_mask = tf_text.pad_model_inputs(ids, sequence, pad_value=p.pad_id)
        segment_ids, _ = tf_text.pad_model_inputs(segments, sequence)
        out = self.answerer({"input_ids": tf.cast(input_ids, tf.int32), "input_mask": tf.cast(input_mask, tf.int32),
                             "segment_ids": tf.cast(segment_ids, tf.int32)}, training=False)
        offset = tf.gather(query.row_lengths(), example) + 2

        def by_position(values, outside):
            """Per window, a value for each of its pieces -> [windows, sequence], `outside` off the context."""
            before = tf.RaggedTensor.from_row_lengths(tf.fill([tf.reduce_sum(offset)], outside), offset)
            return tf.concat([before, values], axis=1).to_tensor(outside, shape=[None, sequence])

        # The max-context rule (the original's _check_is_max_context): a piece seen by several windows
        # counts in the one where it has the most context on its shorter side (the first on a tie).
        piece, window_of = positions.flat_values, positions.value_rowids()
        index = tf.ragged.range(length).flat_values
        window_length = tf.gather(length, window_of)
        context = tf.cast(tf.minimum(index, window_length - 1 - index), tf.float32) + 0.01 * tf.cast(
            window_length, tf.float32)
        pieces_in_batch = tf.shape(doc.flat_values, out_type=tf.int64)[0]
        most = tf.math.unsorted_segment_max(context, piece, pieces_in_batch)
        chosen = tf.math.unsorted_segment_min(tf.where(context >= tf.gather(most, piece), window_of, tf.int64.max),
                                              piece, pieces_in_batch)
        max_context = by_position(positions.with_flat_values(tf.equal(window_of, tf.gather(chosen, piece))), False)
        piece_at = by_position(positions, tf.constant(-1, tf.int64))  # the piece at each position, -1 off context

        starts = tf.cast(out["start_top_index"], tf.int64)  # [windows, beam]
        ends = tf.cast(out["end_top_index"], tf.int64)  # [windows, beam, beam]
        starts_b = tf.broadcast_to(starts[:, :, None], tf.shape(ends, out_type=tf.int64))
        start_piece = tf.gather(piece_at, starts_b, batch_dims=1)
        end_piece = tf.gather(piece_at, ends, batch_dims=1)
        valid = ((starts_b > 0) & (start_piece >= 0) & (end_piece >= 0) & (ends >= starts_b)
                 & tf.gather(max_context, starts_b, batch_dims=1) & (ends - starts_b + 1 <= qa.max_answer_length))
        scores = out["start_top_log_probs"][:, :, None] + out["end_top_log_probs"]
        scores = tf.where(valid, scores, -1e30)
        flat = tf.reshape(scores, [tf.shape(scores)[0], -1])
        best_in_window = tf.argmax(flat, axis=1)
        best_score = tf.reduce_max(flat, axis=1)
        best_of_question = tf.math.unsorted_segment_max(best_score, example, batch)
        windows = tf.range(tf.shape(example, out_type=tf.int64)[0])
        winner = tf.math.unsorted_segment_min(
            tf.where(best_score >= tf.gather(best_of_question, example), windows, tf.int64.max), example, batch)
        pick = tf.stack([winner, tf.gather(best_in_window, winner)], 1)
        first = tf.gather_nd(tf.reshape(start_piece, [tf.shape(scores)[0], -1]), pick)
        last = tf.gather_nd(tf.reshape(end_piece, [tf.shape(scores)[0], -1]), pick)
        found = best_of_question > -1e29
        begin = tf.gather(piece_begin, tf.maximum(first, 0))
        end = tf.gather(piece_end, tf.maximum(last, 0))
        answer = tf.where(found, tf.strings.substr(contexts, begin, end - begin), "")
        if "null_log_prob" in out:  # the linear head: the [CLS] span against the best answer
            null_score = tf.math.unsorted_segment_min(out["null_log_prob"], example, batch) - best_of_question
        else:
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
        model_card.write_card(staging, model_card.finetuned_card(
            "answerer", answerer.config, answerer.preprocessor.lowercase, config or {}))
    return export_dir
