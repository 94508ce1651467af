"""Drawing the generator's replacement tokens."""

import tensorflow as tf

from electra_tf.pretraining import keyed_random


def gumbel_sample(logits, temperature, seed, step, example_index):
    """One token id per position from softmax(logits / temperature), by Gumbel-max.

    argmax(logits / T + g), g = -log(-log(u + 1e-9) + 1e-9), as the
    original's sample_from_softmax. No gradient flows through the draw.
    `logits` is float32 `[B, P, V]`; the noise is keyed like the masking.
    """
    logits = tf.stop_gradient(logits)
    keys = keyed_random.example_keys(seed, step, example_index, keyed_random.GUMBEL)
    noise = keyed_random.uniform(keys, logits.shape[1:])
    gumbel = -tf.math.log(-tf.math.log(noise + 1e-9) + 1e-9)
    return tf.argmax(logits / temperature + gumbel, axis=-1, output_type=tf.int32)
