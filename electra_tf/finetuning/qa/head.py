"""The question-answering heads: the original's (`QAHead`) and the linear one (`LinearQAHead`).

`QAHead` is the original's head (google-research/electra `finetune/qa/qa_tasks.py`).

Start logits from one dense layer; end logits from [start vector; token
vector] -> dense(512, exact GELU) -> dense(1), conditioned on the gold
start in training and on each of the top `beam_size` starts at
prediction; both restricted to [CLS] and the context (segment 1). The
answerability logit (higher: no answer) reads [CLS] and the start-
probability-weighted average of the tokens through dense(512, GELU) ->
dense(1). The end layer's kernel is applied as two halves, start part and
token part, which is the same product as on the concatenation, without
building [beam, sequence, 2 x hidden].

`LinearQAHead` is transformers' `ElectraForQuestionAnswering` head: one
dense layer gives each token a start and an end logit; "no answer" is
the span [CLS]..[CLS]. Both heads restrict starts and ends to [CLS] and
the context, and give the post-processing the same beam.
"""

import keras
import tensorflow as tf

HIDDEN = 512  # the original's width of the end and answerability layers


def _gelu(x):
    return keras.activations.gelu(x, approximate=False)


def _outside_answer_penalty(input_mask, segment_ids, length):
    """-1000 on the positions an answer cannot start or end at (all but [CLS] and the context), else 0."""
    allowed = tf.cast(input_mask * segment_ids, tf.float32) + tf.one_hot(0, length)
    return 1000.0 * (allowed - 1.0)


@keras.saving.register_keras_serializable(package="electra_tf")
class QAHead(keras.layers.Layer):
    """Start, start-conditioned end, and answerability logits over an encoder's hidden states.

    Called with `start_positions` (training) it returns `start_logits`,
    `end_logits` [batch, sequence] and `answerable_logit` [batch]; without,
    the beam: `start_top_log_probs`, `start_top_index` [batch, beam],
    `end_top_log_probs`, `end_top_index` [batch, beam, beam] and
    `answerable_logit`.

    Args:
        hidden_size: the encoder's hidden size.
        beam_size: starts, and ends per start, kept at prediction.
        **kwargs: passed to keras.layers.Layer.

    Example:

    >>> head = QAHead(hidden_size=8, beam_size=2)
    >>> hidden = tf.random.normal([1, 5, 8])
    >>> mask, segments = tf.constant([[1, 1, 1, 1, 0]]), tf.constant([[0, 0, 1, 1, 0]])
    >>> out = head(hidden, mask, segments)
    >>> out["end_top_index"].shape, int(tf.reduce_min(out["start_top_index"])) in (0, 2, 3)
    (TensorShape([1, 2, 2]), True)
    """

    def __init__(self, hidden_size, beam_size=20, **kwargs):
        super().__init__(**kwargs)
        self.hidden_size = hidden_size
        self.beam_size = beam_size
        dense = dict(kernel_initializer="glorot_uniform", dtype=self.dtype_policy)
        self.start = keras.layers.Dense(1, name="start_logits", **dense)
        self.end_hidden = keras.layers.Dense(HIDDEN, name="qa_hidden", **dense)
        self.end = keras.layers.Dense(1, name="end_logits", **dense)
        self.answerable_hidden = keras.layers.Dense(HIDDEN, activation=_gelu, name="answerable_hidden", **dense)
        self.answerable = keras.layers.Dense(1, name="answerable_logit", **dense)

    def build(self, input_shape=None):
        h = self.hidden_size
        self.start.build((None, None, h))
        self.end_hidden.build((None, None, 2 * h))
        self.end.build((None, None, HIDDEN))
        self.answerable_hidden.build((None, 2 * h))
        self.answerable.build((None, HIDDEN))
        self.built = True

    def call(self, hidden, input_mask, segment_ids, start_positions=None):
        h = self.hidden_size
        length = tf.shape(hidden)[1]
        penalty = _outside_answer_penalty(input_mask, segment_ids, length)
        start_logits = tf.cast(tf.squeeze(self.start(hidden), -1), tf.float32) + penalty
        kernel = tf.cast(self.end_hidden.kernel, hidden.dtype)
        token_part = tf.matmul(hidden, kernel[h:]) + tf.cast(self.end_hidden.bias, hidden.dtype)
        outputs = {}
        if start_positions is not None:
            start_vector = tf.gather(hidden, start_positions, batch_dims=1)
            z = _gelu(token_part + tf.matmul(start_vector, kernel[:h])[:, None, :])
            outputs["start_logits"] = start_logits
            outputs["end_logits"] = tf.cast(tf.squeeze(self.end(z), -1), tf.float32) + penalty
        else:
            beam = tf.minimum(self.beam_size, length)
            start_log_probs = tf.nn.log_softmax(start_logits)
            start_top, start_index = tf.math.top_k(start_log_probs, k=beam)
            start_vectors = tf.gather(hidden, start_index, batch_dims=1)
            z = _gelu(token_part[:, None] + tf.matmul(start_vectors, kernel[:h])[:, :, None, :])
            end_logits = tf.cast(tf.squeeze(self.end(z), -1), tf.float32) + penalty[:, None, :]
            end_top, end_index = tf.math.top_k(tf.nn.log_softmax(end_logits), k=beam)
            outputs.update(start_top_log_probs=start_top, start_top_index=start_index,
                           end_top_log_probs=end_top, end_top_index=end_index)
        start_probs = tf.cast(tf.nn.softmax(start_logits), hidden.dtype)
        attended = tf.reduce_sum(start_probs[:, :, None] * hidden, axis=1)
        summary = tf.concat([hidden[:, 0], attended], axis=-1)
        outputs["answerable_logit"] = tf.cast(tf.squeeze(self.answerable(self.answerable_hidden(summary)), -1),
                                              tf.float32)
        return outputs

    def get_config(self):
        return {**super().get_config(), "hidden_size": self.hidden_size, "beam_size": self.beam_size}


@keras.saving.register_keras_serializable(package="electra_tf")
class LinearQAHead(keras.layers.Layer):
    """Start and end logits from one dense layer over the hidden states; "no answer" by the [CLS] span.

    The head of transformers' `ElectraForQuestionAnswering` (`qa_outputs`:
    dense(2), start logits then end logits), starting as transformers'
    does (normal weights with standard deviation `initializer_range`, zero
    bias). Start and end are independent: the beam is the top `beam_size`
    ends (the same for every start). The no-answer score of a window,
    `null_log_prob`, is the start + end log-probability of [CLS]; the
    post-processing compares it with the best span's.

    Called with `start_positions` (training) it returns `start_logits` and
    `end_logits` [batch, sequence]; without, those and the beam as
    `QAHead`'s (`start_top_log_probs`, `start_top_index` [batch, beam],
    `end_top_log_probs`, `end_top_index` [batch, beam, beam]) and
    `null_log_prob` [batch]. Logits outside [CLS] and the context are
    lowered by 1000.

    Args:
        hidden_size: the encoder's hidden size.
        beam_size: starts, and ends, kept at prediction.
        initializer_range: standard deviation of the initial weights.
        **kwargs: passed to keras.layers.Layer.

    Example:

    >>> head = LinearQAHead(hidden_size=8, beam_size=2)
    >>> hidden = tf.random.normal([1, 5, 8])
    >>> mask, segments = tf.constant([[1, 1, 1, 1, 0]]), tf.constant([[0, 0, 1, 1, 0]])
    >>> out = head(hidden, mask, segments)
    >>> out["end_top_index"].shape, out["null_log_prob"].shape
    (TensorShape([1, 2, 2]), TensorShape([1]))
    """

    def __init__(self, hidden_size, beam_size=20, initializer_range=0.02, **kwargs):
        super().__init__(**kwargs)
        self.hidden_size = hidden_size
        self.beam_size = beam_size
        self.initializer_range = initializer_range
        self.dense = keras.layers.Dense(2, kernel_initializer=keras.initializers.RandomNormal(stddev=initializer_range),
                                        dtype=self.dtype_policy, name="qa_outputs")

    def build(self, input_shape=None):
        self.dense.build((None, None, self.hidden_size))
        self.built = True

    def call(self, hidden, input_mask, segment_ids, start_positions=None):
        logits = tf.cast(self.dense(hidden), tf.float32)
        penalty = _outside_answer_penalty(input_mask, segment_ids, tf.shape(hidden)[1])
        start_logits, end_logits = logits[:, :, 0] + penalty, logits[:, :, 1] + penalty
        outputs = {"start_logits": start_logits, "end_logits": end_logits}
        if start_positions is not None:
            return outputs
        beam = tf.minimum(self.beam_size, tf.shape(hidden)[1])
        start_log_probs, end_log_probs = tf.nn.log_softmax(start_logits), tf.nn.log_softmax(end_logits)
        start_top, start_index = tf.math.top_k(start_log_probs, k=beam)
        end_top, end_index = tf.math.top_k(end_log_probs, k=beam)
        shape = [tf.shape(hidden)[0], beam, beam]
        outputs.update(start_top_log_probs=start_top, start_top_index=start_index,
                       end_top_log_probs=tf.broadcast_to(end_top[:, None, :], shape),
                       end_top_index=tf.broadcast_to(end_index[:, None, :], shape),
                       null_log_prob=start_log_probs[:, 0] + end_log_probs[:, 0])
        return outputs

    def get_config(self):
        return {**super().get_config(), "hidden_size": self.hidden_size, "beam_size": self.beam_size,
                "initializer_range": self.initializer_range}
