"""Checking what the fine-tuning models' Python API is given, before any graph runs.

Each check raises a one-line `UserError` that says what was wrong and what
to pass instead, where Keras or TensorFlow would fail later with a graph
error (`Cast string to float is not supported`, `pop from an empty set`).
"""

import numpy as np
import tensorflow as tf

from electra_tf.utils.errors import UserError


def a_type(value):
    """"a str", "an int": the type of `value` for a message."""
    name = type(value).__name__
    return f"{'an' if name[0] in 'aeiouAEIOU' else 'a'} {name}"


def _shown(value):
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _is_batch(x):
    return isinstance(x, list | tuple | np.ndarray | tf.Tensor | tf.RaggedTensor)


def is_features(x):
    """Whether `x` is already model input (a dict of features, or a tf.data.Dataset), not raw text."""
    return isinstance(x, dict | tf.data.Dataset)


def _check_strings(batch, what):
    if isinstance(batch, tf.Tensor | tf.RaggedTensor):
        if batch.dtype != tf.string or batch.shape.rank != 1:
            raise UserError(f"{what} must be a 1-D batch of strings, got a {batch.dtype.name} tensor of shape "
                            f"{batch.shape}")
        rows = int(tf.shape(batch)[0])
    else:
        for k, value in enumerate(batch):
            if not isinstance(value, str | bytes):
                raise UserError(f"{what} must be strings, but item {k} is {a_type(value)} "
                                f"({_shown(value)}); pass text")
        rows = len(batch)
    if not rows:
        raise UserError(f"{what} is an empty batch; give at least one text")
    return rows


def texts(x, what="x"):
    """`x` as a tuple of one batch of strings, or two (a sentence pair's); UserError for anything else.

    Args:
        x: a list (tuple, NumPy array or tf.Tensor) of strings, or a tuple (or list) of two of them.
        what: how messages name `x`.

    Returns:
        (texts,) or (texts_a, texts_b), each a list of strings or a tf.Tensor of them.

    Example:

    >>> texts(["a film", "a gem"])
    (['a film', 'a gem'],)
    >>> texts((["a cat sat"], ["on the mat"]))
    (['a cat sat'], ['on the mat'])
    >>> texts("a film")
    Traceback (most recent call last):
    ...
    electra_tf.utils.errors.UserError: x is one string, not a batch: pass a list of texts (["a film"])
    """
    if isinstance(x, str | bytes):
        shown = x if len(x) <= 40 else x[:37] + "..."
        raise UserError(f'{what} is one string, not a batch: pass a list of texts (["{shown}"])')
    if not _is_batch(x):
        raise UserError(f"{what} must be texts (a list of strings, or a tuple of two lists for sentence pairs), a "
                        f"dict of features or a tf.data.Dataset; got {a_type(x)}")
    if isinstance(x, list | tuple) and len(x) == 2 and all(_is_batch(part) and not isinstance(part, str)
                                                          for part in x):
        rows = [_check_strings(_as_list(part), f"{what}[{k}]") for k, part in enumerate(x)]
        if rows[0] != rows[1]:
            raise UserError(f"the two texts of a sentence-pair batch differ in number: {rows[0]} first texts, "
                            f"{rows[1]} second texts")
        return _as_list(x[0]), _as_list(x[1])
    x = _as_list(x)
    _check_strings(x, what)
    return (x,)


def _as_list(batch):
    if isinstance(batch, np.ndarray):
        return batch.tolist()
    if isinstance(batch, tuple):
        return list(batch)
    return batch


def num_rows(batch):
    """Rows of a batch of texts (a list or a tf.Tensor)."""
    return int(tf.shape(batch)[0]) if isinstance(batch, tf.Tensor | tf.RaggedTensor) else len(batch)


def values(y, what, rows):
    """`y` (labels, weights: a list, NumPy array or tf.Tensor) as a 1-D NumPy array of `rows` values.

    Args:
        y: the values, one per example.
        what: how messages name `y`.
        rows: the number of examples they belong to.

    Example:

    >>> values([0, 1, 1], "y", 3).tolist()
    [0, 1, 1]
    """
    if isinstance(y, str | bytes) or not _is_batch(y):
        raise UserError(f"{what} must be one value per example (a list or array), got {a_type(y)}")
    array = y.numpy() if isinstance(y, tf.Tensor) else np.asarray(y, dtype=object if isinstance(y, list) else None)
    if array.ndim != 1:
        raise UserError(f"{what} must be one value per example, got shape {array.shape}")
    if len(array) != rows:
        raise UserError(f"{what} has {len(array)} values for {rows} examples; give one per example")
    if array.dtype == object and all(isinstance(v, int | float | np.number) and not isinstance(v, bool)
                                     for v in array):
        array = np.asarray(array.tolist())
    return array


def sentences(x, what="x"):
    """`x` as a list of sentences, each a list of word strings; UserError for anything else.

    Args:
        x: a list of sentences, each a list (or tuple) of words.
        what: how messages name `x`.

    Example:

    >>> sentences([["the", "cat"], ("sat",)])
    [['the', 'cat'], ['sat']]
    >>> sentences(["the cat sat"])
    Traceback (most recent call last):
    ...
    electra_tf.utils.errors.UserError: x must be sentences as lists of words, but item 0 is a str ...
    """
    if isinstance(x, str) or not isinstance(x, list | tuple):
        raise UserError(f"{what} must be a list of sentences, each a list of words; got {a_type(x)}")
    if not x:
        raise UserError(f"{what} is an empty batch; give at least one sentence")
    for k, sentence in enumerate(x):
        if not isinstance(sentence, list | tuple):
            raise UserError(f"{what} must be sentences as lists of words, but item {k} is "
                            f"{a_type(sentence)} ({_shown(sentence)}); split each text into words "
                            "([t.split() for t in texts])")
        for word in sentence:
            if not isinstance(word, str):
                raise UserError(f"sentence {k} of {what} holds {a_type(word)} ({_shown(word)}); words "
                                "must be strings")
    return [list(sentence) for sentence in x]
