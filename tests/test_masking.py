import numpy as np
import pytest
import tensorflow as tf
from conftest import random_batch

from electra_tf import ElectraConfig
from electra_tf.pretraining.masking import mask_tokens
from electra_tf.utils import keyed_random

CONFIG = ElectraConfig.for_size("small", vocab_size=1000, pad_id=0, unk_id=1, cls_id=2, sep_id=3, mask_id=4)


def _mask(batch, step=0, example_index=None, config=CONFIG, seed=0):
    n = batch["input_ids"].shape[0]
    index = tf.range(n) if example_index is None else example_index
    out = mask_tokens(tf.constant(batch["input_ids"]), tf.constant(batch["input_mask"]), config, seed, step, index)
    return {k: v.numpy() for k, v in out.items()}


def test_mask_statistics_over_a_large_batch():
    batch = random_batch(CONFIG, 2048, seed=1, min_len=40)
    out = _mask(batch)
    real = batch["input_mask"].sum()
    weights = out["masked_lm_weights"]
    expected = np.maximum(1, np.minimum(CONFIG.max_predictions_per_seq,
                                        np.round(batch["input_mask"].sum(1) * CONFIG.mask_prob)))
    np.testing.assert_array_equal(weights.sum(1), expected)  # exactly the count formula
    assert abs(weights.sum() / real - CONFIG.mask_prob) < 0.005
    positions = out["masked_lm_positions"]
    rows = np.arange(len(positions))[:, None]
    chosen = weights > 0
    shown = out["masked_ids"][rows, positions]
    mask_share = (shown[chosen] == CONFIG.mask_id).mean()
    assert abs(mask_share - 0.85) < 0.02
    # The other 15% keep their original token; none gets a random one.
    np.testing.assert_array_equal(shown[chosen & (shown != CONFIG.mask_id)],
                                  out["masked_lm_ids"][chosen & (shown != CONFIG.mask_id)])
    original = batch["input_ids"][rows, positions][chosen]
    np.testing.assert_array_equal(out["masked_lm_ids"][chosen], original)
    assert not np.isin(original, [CONFIG.pad_id, CONFIG.cls_id, CONFIG.sep_id, CONFIG.mask_id]).any()
    assert (batch["input_mask"][rows, positions][chosen] == 1).all()
    for row in range(len(positions)):  # without replacement
        assert len(set(positions[row][chosen[row]])) == chosen[row].sum()
    # Nothing changes outside the chosen positions.
    changed = out["masked_ids"] != batch["input_ids"]
    assert changed.sum() == (chosen & (shown == CONFIG.mask_id)).sum()


def test_positions_are_spread_over_the_sequence():
    batch = random_batch(CONFIG, 2048, seed=2, min_len=CONFIG.max_seq_length)
    out = _mask(batch)
    hits = np.bincount(out["masked_lm_positions"][out["masked_lm_weights"] > 0], minlength=128)
    interior = hits[1:-1]
    assert interior.min() > 0.6 * interior.mean()


def test_existing_mask_tokens_and_short_sequences():
    batch = random_batch(CONFIG, 4, seed=3)
    batch["input_ids"][:, 1:5] = CONFIG.mask_id
    batch["input_mask"][0, 3:] = 0  # [CLS] x x | padding: one candidate at most
    batch["input_ids"][0, 3:] = 0
    batch["input_ids"][0, 1:3] = [7, CONFIG.sep_id]
    out = _mask(batch)
    assert out["masked_lm_weights"][0].sum() == 1 and out["masked_lm_positions"][0, 0] == 1
    chosen = out["masked_lm_weights"] > 0
    rows = np.arange(4)[:, None]
    assert not (batch["input_ids"][rows, out["masked_lm_positions"]][chosen] == CONFIG.mask_id).any()


def test_masking_is_keyed_by_seed_step_and_example_position():
    batch = random_batch(CONFIG, 16, seed=4)
    a, b = _mask(batch, step=5), _mask(batch, step=5)
    np.testing.assert_array_equal(a["masked_ids"], b["masked_ids"])
    assert (a["masked_ids"] != _mask(batch, step=6)["masked_ids"]).any()
    assert (a["masked_ids"] != _mask(batch, step=5, seed=1)["masked_ids"]).any()
    # Two halves masked as replicas 0 and 1 of one global batch equal the whole.
    half = {k: v[8:] for k, v in batch.items()}
    second = _mask(half, step=5, example_index=tf.range(8, 16))
    np.testing.assert_array_equal(second["masked_ids"], a["masked_ids"][8:])


def test_keyed_uniform_is_uniform_independent_and_backend_stable():
    keys = keyed_random.example_keys(7, 3, tf.range(64), keyed_random.GUMBEL)
    u = keyed_random.uniform(keys, [50, 40]).numpy()
    assert u.shape == (64, 50, 40) and u.min() > 0 and u.max() < 1
    assert abs(u.mean() - 0.5) < 0.005 and abs(u.var() - 1 / 12) < 0.002
    hist = np.histogram(u, bins=20, range=(0, 1))[0]
    assert hist.min() > 0.9 * hist.mean()
    flat = u.reshape(-1)
    assert abs(np.corrcoef(flat[:-1], flat[1:])[0, 1]) < 0.01  # neighbours uncorrelated
    other = keyed_random.uniform(keyed_random.example_keys(7, 3, tf.range(64), keyed_random.MASKING), [50, 40])
    assert abs(np.corrcoef(flat, other.numpy().reshape(-1))[0, 1]) < 0.01  # streams independent
    xla = tf.function(lambda k: keyed_random.uniform(k, [50, 40]), jit_compile=True)(keys)
    np.testing.assert_array_equal(xla.numpy(), u)


def _fmix32(x):
    x = x ^ (x >> np.uint32(16))
    x = x * np.uint32(0x85EBCA6B)
    x = x ^ (x >> np.uint32(13))
    x = x * np.uint32(0xC2B2AE35)
    return x ^ (x >> np.uint32(16))


def test_keyed_uniform_is_the_documented_hash_computed_in_numpy():
    # uniform() runs its integer ops under XLA; the bits must be the plain
    # uint32 arithmetic of its definition, here done by numpy.
    keys = keyed_random.example_keys(7, 3, tf.range(5), keyed_random.GUMBEL).numpy()
    counter = np.arange(9 * 7702, dtype=np.uint32)
    with np.errstate(over="ignore"):
        bits = _fmix32(_fmix32(keys[:, None] + counter[None, :] * np.uint32(0x9E3779B9)) ^ keys[:, None])
    expected = ((bits >> np.uint32(8)).astype(np.float32) + np.float32(0.5)) * np.float32(2.0 ** -24)
    np.testing.assert_array_equal(keyed_random.uniform(tf.constant(keys), [9, 7702]).numpy(),
                                  expected.reshape(5, 9, 7702))


@pytest.mark.parametrize("prob", [0.15, 0.25])
def test_mask_prob_is_honoured(prob):
    config = CONFIG.replace(mask_prob=prob)
    batch = random_batch(config, 1024, seed=5, min_len=64)
    out = _mask(batch, config=config)
    assert abs(out["masked_lm_weights"].sum() / batch["input_mask"].sum() - prob) < 0.005
