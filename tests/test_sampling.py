"""Both samplers draw from softmax(logits / T): a chi-square test over many keyed draws."""

import numpy as np
import pytest
import tensorflow as tf

from electra_tf import ElectraConfig
from electra_tf.pretraining.sampling import gumbel_sample, inverse_cdf_sample, sample

SAMPLERS = {"gumbel": gumbel_sample, "inverse_cdf": inverse_cdf_sample}
DRAWS = 200_000


def _logits(vocab=300):
    # A spread of probabilities from ~0.1 down to ~1e-7, the likeliest ids in the last, partial block
    # of the inverse-CDF sampler (300 = 2 x 128 + 44), and two ids that can never be drawn.
    logits = np.random.RandomState(1).normal(0, 2.5, vocab).astype("float32")
    logits[-3:] += 6.0
    logits[[5, 200]] = -1e30
    return logits


def _draw(sampler, logits, temperature, step=5):
    batch = tf.constant(np.tile(logits, (DRAWS, 1, 1)))  # one position per example, each its own key
    ids = tf.function(lambda: SAMPLERS[sampler](batch, temperature, 0, step, tf.range(DRAWS)))()
    return np.bincount(ids.numpy().ravel(), minlength=len(logits))


def _chi_square_p_value(counts, probs):
    """Pearson's test of the counts against the probabilities; ids expected fewer than 5 times are pooled."""
    means = probs * counts.sum()
    big, small = means >= 5, (means > 0) & (means < 5)
    observed, expected = list(counts[big]), list(means[big])
    if small.any():
        observed.append(counts[small].sum())
        expected.append(means[small].sum())
    observed, expected = np.array(observed), np.array(expected)
    chi2 = ((observed - expected) ** 2 / expected).sum()
    return float(tf.math.igammac((len(observed) - 1) / 2, chi2 / 2))  # the chi-square survival function


@pytest.mark.parametrize("temperature", [1.0, 2.0])
@pytest.mark.parametrize("sampler", list(SAMPLERS))
def test_sampler_draws_from_the_softmax(sampler, temperature):
    logits = _logits()
    scaled = logits.astype("float64") / temperature
    probs = np.exp(scaled - scaled.max())
    probs /= probs.sum()
    counts = _draw(sampler, logits, temperature)
    assert counts[[5, 200]].sum() == 0 and counts.sum() == DRAWS
    # The draws are keyed, so this is deterministic; a sampler off by one id, or that ignored the
    # temperature, gives p-values below 1e-100 here.
    assert _chi_square_p_value(counts, probs) > 1e-3


def test_samplers_are_keyed_and_chosen_by_the_config():
    logits = tf.constant(np.tile(_logits(), (8, 3, 1)))
    config = ElectraConfig.for_size("tiny", vocab_size=300, sampler="inverse_cdf")
    first = sample(logits, config, 1.0, 4, tf.range(8)).numpy()
    np.testing.assert_array_equal(first, inverse_cdf_sample(logits, 1.0, config.seed, 4, tf.range(8)))
    np.testing.assert_array_equal(sample(logits[4:], config, 1.0, 4, tf.range(4, 8)).numpy(), first[4:])
    assert (sample(logits, config, 1.0, 5, tf.range(8)).numpy() != first).any()
    # disallow_correct: the given ids are not drawn.
    assert not (sample(logits, config, 1.0, 4, tf.range(8), disallow_ids=tf.constant(first)).numpy() == first).any()
    gumbel = sample(logits, config.replace(sampler="gumbel"), 1.0, 4, tf.range(8)).numpy()
    np.testing.assert_array_equal(gumbel, gumbel_sample(logits, 1.0, config.seed, 4, tf.range(8)))
    # A config recorded before the field existed was trained with Gumbel-max, and resumes so.
    recorded = {k: v for k, v in config.to_dict().items() if k != "sampler"}
    assert ElectraConfig.from_dict(recorded).sampler == "gumbel"
    with pytest.raises(ValueError, match="sampler"):
        config.replace(sampler="top_k")
