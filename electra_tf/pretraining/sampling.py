"""Drawing the generator's replacement tokens (Gumbel-max or the inverse CDF: the same distribution), and the
temperature they are drawn at."""

import tensorflow as tf

from electra_tf.utils import keyed_random

# The original's sample_from_softmax subtracts this from the logit of a disallowed token.
DISALLOW_PENALTY = 1000.0

def sample(logits, config, temperature, step, example_index, disallow_ids=None):
    """One token id per position from softmax(logits / temperature), by `config.sampler` (keyed by `config.seed`)."""
    sampler = {"gumbel": gumbel_sample, "inverse_cdf": inverse_cdf_sample}[config.sampler]
    return sampler(logits, temperature, config.seed, step, example_index, disallow_ids)


def _scaled(logits, temperature, disallow_ids):
    scaled = tf.stop_gradient(logits) / temperature
    if disallow_ids is not None:
        scaled -= DISALLOW_PENALTY * tf.one_hot(disallow_ids, tf.shape(logits)[-1], dtype=scaled.dtype)
    return scaled


def gumbel_sample(logits, temperature, seed, step, example_index, disallow_ids=None):
    """One token id per position from softmax(logits / temperature), by Gumbel-max.

    argmax(logits / T + g), g = -log(-log(u + 1e-9) + 1e-9), as the
    original's sample_from_softmax. No gradient flows through the draw.
    `logits` is float32 `[B, P, V]`; the noise is keyed like the masking.
    `disallow_ids` (int32 `[B, P]`), if given, are made all but impossible:
    1000 is subtracted from their scaled logit, as the original's
    `disallow_correct` does with the original tokens.
    """
    keys = keyed_random.example_keys(seed, step, example_index, keyed_random.GUMBEL)
    noise = keyed_random.uniform(keys, logits.shape[1:])
    gumbel = -tf.math.log(-tf.math.log(noise + 1e-9) + 1e-9)
    return tf.argmax(_scaled(logits, temperature, disallow_ids) + gumbel, axis=-1, output_type=tf.int32)


def inverse_cdf_sample(logits, temperature, seed, step, example_index, disallow_ids=None):
    """One token id per position from softmax(logits / temperature), by inverting its CDF.

    The same distribution as `gumbel_sample` from one keyed uniform u per
    position instead of one per vocabulary entry: the first id at which the
    running sum of exp(logits / T - max) exceeds u times the total. The
    vocabulary is summed in blocks, so only one block per position is summed
    cumulatively. In float32 each id's probability is off by about 1e-7 of
    the total, far below what any test of the distribution can see. Other
    draws than `gumbel_sample` from the same keys. No gradient flows.
    `disallow_ids` as for `gumbel_sample`.

    Example:

    >>> logits = tf.math.log(tf.constant([[[0.2, 0.8]]]))
    >>> ids = inverse_cdf_sample(tf.tile(logits, [1000, 1, 1]), 1.0, 0, 0, tf.range(1000))
    >>> 0.75 < float(tf.reduce_mean(tf.cast(ids, tf.float32))) < 0.85
    True
    """
    keys = keyed_random.example_keys(seed, step, example_index, keyed_random.GUMBEL)
    u = keyed_random.uniform(keys, logits.shape[1:2])
    return _inverse_cdf(_scaled(logits, temperature, disallow_ids), u)


_BLOCK = 128  # ids per block: ~240 blocks for a 30k vocabulary, so both cumulative sums are short


# One XLA kernel. The exponentials are summed per block as they are computed, never stored
# (the padding is -inf, so exp gives 0); only the chosen block's are computed again.
@tf.function(jit_compile=True)
def _inverse_cdf(scaled, u):
    vocab = scaled.shape[-1]
    num_blocks = -(-vocab // _BLOCK)
    shifted = scaled - tf.reduce_max(scaled, axis=-1, keepdims=True)
    shifted = tf.pad(shifted, [[0, 0], [0, 0], [0, num_blocks * _BLOCK - vocab]], constant_values=float("-inf"))
    blocks = tf.reshape(shifted, tf.concat([tf.shape(shifted)[:2], [num_blocks, _BLOCK]], 0))
    cumulative = tf.cumsum(tf.reduce_sum(tf.exp(blocks), axis=-1), axis=-1)  # [B, P, blocks]
    target = u * cumulative[..., -1]
    # The first block whose running sum exceeds the target, then the first id in it that does.
    block = tf.minimum(tf.reduce_sum(tf.cast(cumulative <= target[..., None], tf.int32), axis=-1), num_blocks - 1)
    before = tf.where(block > 0, tf.gather(cumulative, tf.maximum(block - 1, 0), batch_dims=2), 0.0)
    inside = tf.cumsum(tf.exp(tf.gather(blocks, block, batch_dims=2)), axis=-1)  # [B, P, _BLOCK]
    rest = tf.maximum(target - before, 0.0)
    offset = tf.minimum(tf.reduce_sum(tf.cast(inside <= rest[..., None], tf.int32), axis=-1), _BLOCK - 1)
    return tf.minimum(block * _BLOCK + offset, vocab - 1)


def gumbel_top_k(logits, k, temperature, seed, step, example_index, excluded):
    """`k` distinct token ids per position, drawn without replacement from softmax(logits / temperature).

    Gumbel-top-k: the k largest of logits / T + g are a draw of k tokens without
    replacement (Kool et al. 2019), what TF Model Garden's TEAMS does with k
    rounds of argmax. Tokens where `excluded` is True are never drawn. The noise
    is keyed like the masking (its own stream). No gradient flows through the draw.

    Args:
        logits: float32 `[B, P, V]`.
        k: how many tokens per position; fewer than the tokens not excluded.
        temperature: a number or a scalar tensor.
        seed, step, example_index: the keys of the noise (`keyed_random.example_keys`).
        excluded: bool, broadcastable to `[B, P, V]`: the tokens never drawn.

    Example:

    >>> logits = tf.zeros([1, 2, 8])
    >>> excluded = tf.one_hot([[0, 1]], 8) > 0  # the original tokens, 0 and 1
    >>> drawn = gumbel_top_k(logits, 3, 1.0, 0, 0, tf.range(1), excluded).numpy()
    >>> drawn.shape, [len(set(row)) for row in drawn[0]], bool((drawn[0, 0] != 0).all())
    ((1, 2, 3), [3, 3], True)
    """
    logits = tf.stop_gradient(logits)
    keys = keyed_random.example_keys(seed, step, example_index, keyed_random.CANDIDATES)
    noise = keyed_random.uniform(keys, logits.shape[1:])
    gumbel = -tf.math.log(-tf.math.log(noise + 1e-9) + 1e-9)
    scores = tf.where(excluded, -float("inf"), logits / temperature + gumbel)
    return tf.math.top_k(scores, k=k, sorted=True).indices


def temperature_at(config, step, num_train_steps=None):
    """The sampling temperature at `step` (a number or a scalar tensor).

    `config.temperature` throughout, or, when `config.final_temperature` is
    above 0, a linear move from `temperature` at step 0 to
    `final_temperature` at `num_train_steps` (held there after), the
    decreasing temperature of Fast-ELECTRA (Dong et al. 2024).

    Example:

    >>> config = ElectraConfig.for_size("tiny", temperature=2.0, final_temperature=1.0)
    >>> [float(temperature_at(config, step, 100)) for step in (0, 25, 100, 150)]
    [2.0, 1.75, 1.0, 1.0]
    """
    if not config.final_temperature:
        return config.temperature
    if not num_train_steps:
        raise ValueError("a temperature schedule (final_temperature > 0) needs the number of training steps; "
                         "pass num_train_steps to ElectraPretrainer")
    progress = tf.minimum(tf.cast(step, tf.float32) / float(num_train_steps), 1.0)
    return config.temperature + (config.final_temperature - config.temperature) * progress
