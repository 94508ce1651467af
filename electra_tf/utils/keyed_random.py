"""Counter-based random numbers keyed by (seed, step, example).

Masking, generator sampling and dropout must depend only on the seed, the
global step and an example's position in the global batch, never on how many replicas or
workers split that batch. TF's stateless ops do not vectorise over per-example
seeds (`vectorized_map` falls back to a while loop) and give different
streams with and without XLA, so we hash instead: the murmur3 32-bit
finaliser applied to a key and an element counter. Pure integer arithmetic
gives bit-identical numbers on CPU, GPU, TPU, with or without XLA.

Example:

>>> keys = example_keys(seed=0, step=3, example_index=tf.range(4), stream=MASKING)
>>> uniform(keys, [128]).shape
TensorShape([4, 128])
"""

import tensorflow as tf

# Independent streams, so that e.g. masking and sampling never share numbers.
MASKING = 1
MASK_TOKEN = 2
GUMBEL = 3
DROPOUT = 4
CANDIDATES = 5

_GOLDEN = 0x9E3779B9  # odd: multiplying by it spreads consecutive counters


def _mix(x):
    """murmur3's fmix32: a bijection on uint32 with full avalanche."""
    x = tf.bitwise.bitwise_xor(x, tf.bitwise.right_shift(x, 16))
    x = x * tf.constant(0x85EBCA6B, tf.uint32)
    x = tf.bitwise.bitwise_xor(x, tf.bitwise.right_shift(x, 13))
    x = x * tf.constant(0xC2B2AE35, tf.uint32)
    return tf.bitwise.bitwise_xor(x, tf.bitwise.right_shift(x, 16))


def _as_uint32(x):
    # Keeps the low 32 bits; steps and seeds past 2**32 wrap, which only
    # shortens the period.
    return tf.cast(tf.bitwise.bitwise_and(tf.cast(x, tf.int64), 0xFFFFFFFF), tf.uint32)


def example_keys(seed, step, example_index, stream):
    """One uint32 key per example: a hash of (seed, stream, step, index)."""
    key = _mix(_as_uint32(seed) ^ tf.constant(stream * _GOLDEN & 0xFFFFFFFF, tf.uint32))
    key = _mix(key ^ _as_uint32(step))
    return _mix(key ^ _as_uint32(example_index))


def fold(keys, salt):
    """Keys of a sub-stream: `keys` hashed with the integer `salt` (e.g. a layer's id)."""
    return _mix(keys ^ tf.constant(salt * _GOLDEN & 0xFFFFFFFF, tf.uint32))


def uniform(keys, shape):
    """Floats in (0, 1) of shape `[len(keys)] + shape`, a function of the keys only."""
    shape = [int(dim) for dim in shape]
    size = 1
    for dim in shape:
        size *= dim
    values = _uniform_flat(keys, size)
    return tf.reshape(values, tf.concat([tf.shape(keys)[:1], tf.constant(shape, tf.int32)], 0))


# Compiled with XLA, which fuses the ~20 integer ops into one pass over the
# output. Without it each op is a pass of its own over [keys, size]: for the
# Gumbel noise of the demo model (64 x 9 x 7,702) 49 ms a step against 2.6 ms
# (bench/RESULTS.md), the same bits either way.
@tf.function(jit_compile=True)
def _uniform_flat(keys, size):
    # 24 random bits, centred in their bucket so neither 0 nor 1 can occur.
    return (tf.cast(tf.bitwise.right_shift(bits(keys, size), 8), tf.float32) + 0.5) * (2.0 ** -24)


def bits(keys, size):
    """uint32 `[len(keys), size]`: the hash of each key with the element counter 0..size-1.

    The one definition of the stream every keyed draw reads; plain ops, so
    callers can fuse it into their own XLA kernels.
    """
    counter = tf.bitcast(tf.range(size, dtype=tf.int32), tf.uint32)
    return _mix(_mix(keys[:, None] + counter[None, :] * tf.constant(_GOLDEN, tf.uint32)) ^ keys[:, None])
