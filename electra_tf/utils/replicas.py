"""Summing over the replicas of a tf.distribute strategy, for train steps that reduce gradients themselves.

Keras' optimizers all-reduce the gradients after clipping them, so each
replica clips its own share. The original clips the gradient of the whole
batch; a train step that all-reduces first, and tells the optimizer not to
reduce again, gets that.
"""

import tensorflow as tf


def global_sum(value):
    """Sum over all replicas (identity outside a replica function)."""
    context = tf.distribute.get_replica_context()
    return value if context is None else context.all_reduce(tf.distribute.ReduceOp.SUM, value)


def sum_gradients(gradients, variables):
    """The gradients summed over the replicas, dense (embedding gradients arrive as IndexedSlices)."""
    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return gradients
    dense = [tf.zeros_like(v) if g is None else tf.convert_to_tensor(g) for g, v in zip(gradients, variables)]
    return global_sum(dense)


def reduce_gradients_before_optimizer(optimizer):
    """Stops `optimizer` (or the one a LossScaleOptimizer wraps) from all-reducing the gradients again."""
    inner = getattr(optimizer, "inner_optimizer", optimizer)
    # A second reduction would multiply the already summed gradients by the number of replicas.
    inner._all_reduce_sum_gradients = lambda grads_and_vars: grads_and_vars
