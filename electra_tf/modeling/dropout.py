"""Dropout whose masks are a keyed hash: the same masks with or without XLA, on any replica split.

A mask element is kept iff `keyed_random.bits(key, ...) >= rate * 2**32`,
where the key of an example comes from whoever runs the layer: the
pretrainer keys it by (seed, step, position in the global batch), as it keys
masking and sampling, and each tower and dropout layer folds in its own id.
So the masks do not depend on how replicas or workers split the batch, a
resumed run draws the masks it would have drawn, XLA and TF's kernels give
the same bits, and a recomputed (rematerialised) block redraws exactly the
masks of its forward pass. Outside such a scope (fine-tuning, a layer used
alone) a layer keys its masks from its own seed generator, like Keras'
`Dropout`.

Keras' `Dropout` draws its masks with TF's stateless Philox op, which XLA
expands into scalar loops (most of an XLA step's time on CPU) and which
runs through Eigen's scalar path in bfloat16 (bench/RESULTS.md).

Example:

>>> layer = KeyedDropout(0.5)
>>> x = np.ones((2, 8), "float32")
>>> keys = keyed_random.example_keys(seed=0, step=1, example_index=tf.range(2), stream=keyed_random.DROPOUT)
>>> with dropout_keys(keys):
...     y = layer(x, training=True)
>>> sorted(set(np.asarray(y).ravel().tolist()))  # dropped, or scaled by 1 / (1 - rate)
[0.0, 2.0]
"""

import contextlib
import threading

import keras
import tensorflow as tf

from electra_tf.utils import keyed_random

_scope = threading.local()  # thread-local: MirroredStrategy runs each replica in its own thread


@contextlib.contextmanager
def dropout_keys(keys):
    """Within the block, `KeyedDropout` layers draw their masks from `keys` (uint32 `[batch]`, one per example)."""
    previous = getattr(_scope, "keys", None)
    _scope.keys = keys
    try:
        yield
    finally:
        _scope.keys = previous


def current_keys():
    """The keys of the innermost `dropout_keys` block, or None."""
    return getattr(_scope, "keys", None)


def keys_from_seed_generator(seed_generator, batch_size):
    """Per-example keys for a call without given keys: the generator's next seed and each example's position.

    The position counts from this replica's share of the global batch, so
    replicas that share a seed still drop different elements.
    """
    seed = seed_generator.next()
    context = tf.distribute.get_replica_context()
    replica = 0 if context is None else tf.cast(context.replica_id_in_sync_group, tf.int32)
    example_index = replica * batch_size + tf.range(batch_size)
    return keyed_random.example_keys(seed[0], seed[1], example_index, keyed_random.DROPOUT)


def keyed_dropout(x, keys, rate):
    """Inverted dropout of `x` (batch first) with the mask of `keys` (uint32 `[batch]`).

    Each element is zeroed with probability `rate` (to 2**-32) and the rest
    are scaled by `1 / (1 - rate)` (in float32, then cast to x's dtype). The
    gradient is the same mask applied to the incoming gradient, recomputed
    from the keys rather than stored.
    """
    if rate <= 0:
        return x
    if rate >= 1:
        return tf.zeros_like(x)
    threshold = min(int(round(rate * 2.0 ** 32)), 2 ** 32 - 1)
    scale = 1.0 / (1.0 - rate)

    @tf.custom_gradient
    def apply(x):
        def grad(dy):
            return _masked_scale(dy, keys, threshold, scale)
        return _masked_scale(x, keys, threshold, scale), grad

    return apply(x)


# One XLA kernel per call: hash, compare, scale and select fuse into one pass
# over the tensor (as separate TF ops, each would be a pass of its own). Under
# an XLA-compiled step it is inlined.
@tf.function(jit_compile=True)
def _masked_scale(x, keys, threshold, scale):
    flat = tf.reshape(tf.cast(x, tf.float32), [tf.shape(x)[0], -1])
    keep = keyed_random.bits(keys, tf.shape(flat)[1]) >= tf.constant(threshold, tf.uint32)
    return tf.reshape(tf.cast(tf.where(keep, flat * scale, 0.0), x.dtype), tf.shape(x))


@keras.saving.register_keras_serializable(package="electra_tf")
class KeyedDropout(keras.layers.Dropout):
    """Keras `Dropout` with masks from `keyed_dropout`: keyed by the enclosing `dropout_keys`.

    Inside a `dropout_keys(keys)` block the mask of example b is a function
    of `keys[b]` and `key_id` only (layers that share a scope need distinct
    ids). Outside one, the keys come from the layer's own seed generator, a
    new draw per call, as Keras' `Dropout`.

    Args:
        rate: the probability of dropping an element.
        key_id: this layer's id within the scope of its keys.
        **kwargs: `keras.layers.Dropout` arguments (`seed`, `name`, `dtype`); no `noise_shape`.

    Example:

    >>> layer = KeyedDropout(0.1, key_id=3)
    >>> x = np.ones((4, 16, 32), "float32")
    >>> np.allclose(layer(x, training=False), x)
    True
    >>> 0.85 < float(np.mean(np.asarray(layer(x, training=True)) != 0)) < 0.95
    True
    """

    def __init__(self, rate, key_id=0, **kwargs):
        if kwargs.get("noise_shape") is not None:
            raise ValueError("KeyedDropout draws one mask element per input element; noise_shape is not supported")
        super().__init__(rate, **kwargs)
        self.key_id = key_id

    def call(self, inputs, training=False):
        if not training or self.rate <= 0:
            return inputs
        keys = current_keys()
        if keys is None:
            if not hasattr(self, "seed_generator"):  # Keras gives a Dropout made with rate 0 none
                raise ValueError(f"{self.name} was made with rate 0; it can drop only inside dropout_keys()")
            keys = keys_from_seed_generator(self.seed_generator, tf.shape(inputs)[0])
        return keyed_dropout(inputs, keyed_random.fold(keys, self.key_id), self.rate)

    def get_config(self):
        config = super().get_config()
        config.pop("noise_shape", None)
        return {**config, "key_id": self.key_id}

    @classmethod
    def adopt(cls, layer, key_id):
        """Turns a built Keras `Dropout` into a `KeyedDropout` in place, keeping its rate and seed generator.

        keras-hub creates its blocks' dropout layers inside their `build`,
        after which Keras refuses new sub-layers, so they are converted
        rather than replaced. Returns the layer.
        """
        if type(layer) is not keras.layers.Dropout or layer.noise_shape is not None:
            raise TypeError(f"expected a keras.layers.Dropout without noise_shape, got {layer!r}")
        layer.__class__ = cls
        layer.key_id = key_id
        return layer
