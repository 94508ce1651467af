"""Dynamic masking, done in the graph at every step (the original's pretrain_helpers.mask)."""

import tensorflow as tf

from electra_tf.utils import keyed_random


def scatter_at_positions(ids, positions, values, weights):
    """`ids` with `values[b, p]` written at `positions[b, p]` wherever `weights[b, p]`.

    Positions with weight are distinct, so a one-hot sum is an exact scatter;
    it also compiles cleanly under XLA.
    """
    hits = tf.one_hot(positions, tf.shape(ids)[1], dtype=tf.int32) * tf.cast(weights, tf.int32)[:, :, None]
    written = tf.reduce_sum(hits, axis=1) > 0
    new_values = tf.reduce_sum(hits * values[:, :, None], axis=1)
    return tf.where(written, new_values, ids)


def mask_tokens(input_ids, input_mask, config, seed, step, example_index):
    """Choose positions to predict and hide 85% of them behind [MASK].

    Per example, `max(1, min(max_predictions_per_seq, round(real * mask_prob)))`
    positions are drawn uniformly, without replacement, from the real tokens
    that are not [CLS], [SEP] or [MASK]. (The original draws with
    replacement, so duplicates make it mask slightly fewer than that count;
    we mask exactly the count.) A chosen position shows [MASK] with
    probability `mask_token_prob`, else keeps its token: no random tokens.

    The draws depend only on (seed, step, example_index), so any split of the
    global batch over replicas masks the same positions.

    Returns a dict: `masked_ids` [B, S]; `masked_lm_positions`,
    `masked_lm_ids` (the originals), `masked_lm_weights` (1.0 for real
    predictions, 0.0 for padding slots) of shape [B, max_predictions_per_seq].
    """
    num_predictions = config.max_predictions_per_seq
    seq_length = input_ids.shape[1]
    real = tf.cast(input_mask, tf.bool)
    candidates = real
    for special in (config.pad_id, config.cls_id, config.sep_id, config.mask_id):
        candidates &= tf.not_equal(input_ids, special)

    num_real = tf.reduce_sum(tf.cast(real, tf.float32), axis=1)
    num_to_mask = tf.cast(tf.round(num_real * config.mask_prob), tf.int32)
    num_to_mask = tf.maximum(1, tf.minimum(num_predictions, num_to_mask))

    keys = keyed_random.example_keys(seed, step, example_index, keyed_random.MASKING)
    scores = tf.where(candidates, keyed_random.uniform(keys, [seq_length]), -1.0)
    top_scores, positions = tf.math.top_k(scores, k=num_predictions)
    weights = (tf.range(num_predictions)[None, :] < num_to_mask[:, None]) & (top_scores >= 0.0)
    positions = tf.where(weights, positions, 0)
    masked_lm_ids = tf.where(weights, tf.gather(input_ids, positions, batch_dims=1), 0)

    keys = keyed_random.example_keys(seed, step, example_index, keyed_random.MASK_TOKEN)
    show_mask = weights & (keyed_random.uniform(keys, [num_predictions]) < config.mask_token_prob)
    masked_ids = scatter_at_positions(input_ids, positions, tf.fill(tf.shape(positions), config.mask_id), show_mask)
    return {
        "masked_ids": masked_ids,
        "masked_lm_positions": positions,
        "masked_lm_ids": masked_lm_ids,
        "masked_lm_weights": tf.cast(weights, tf.float32),
    }
