import numpy as np
import pytest
import tensorflow as tf

from electra_tf import ElectraAdamW, ElectraConfig, ElectraPretrainer, WarmupPolynomialDecay
from electra_tf.training.optimization import create_optimizer
from electra_tf.training.optimizer_config import OptimizerConfig


@pytest.mark.parametrize("step", [0, 1, 500, 9_999, 10_000, 10_001, 500_000, 999_999, 1_000_000, 1_200_000])
def test_schedule_is_warmup_times_polynomial_decay(step):
    schedule = WarmupPolynomialDecay(5e-4, num_train_steps=1_000_000, num_warmup_steps=10_000, power=1.0)
    expected = 5e-4 * (1 - min(step, 1_000_000) / 1_000_000) * min(1.0, step / 10_000)
    # float32, like the original: 1 - step/total loses ~1e-7 of the peak near the end.
    assert float(schedule(step)) == pytest.approx(expected, rel=1e-5, abs=5e-4 * 2e-7)


def test_schedule_power_and_no_warmup():
    schedule = WarmupPolynomialDecay(1e-3, num_train_steps=100, num_warmup_steps=0, power=2.0)
    assert float(schedule(0)) == pytest.approx(1e-3)
    assert float(schedule(50)) == pytest.approx(1e-3 * 0.25)


def test_weight_decay_skips_layer_norm_and_biases():
    pretrainer = ElectraPretrainer(ElectraConfig.for_size("tiny", vocab_size=300, pad_id=0, unk_id=1, cls_id=2,
                                                          sep_id=3, mask_id=4))
    optimizer = create_optimizer()
    decayed = {v.path for v in pretrainer.trainable_variables if optimizer._use_weight_decay(v)}
    skipped = {v.path for v in pretrainer.trainable_variables} - decayed
    assert any("word_embeddings/embeddings" in p for p in decayed)
    assert any("layer_0/self_attention_layer/query/kernel" in p for p in decayed)
    assert any("feedforward_intermediate_dense/kernel" in p for p in decayed)
    assert all(p.rsplit("/", 1)[1] in ("bias", "gamma", "beta", "output_bias") for p in skipped)
    assert any(p.endswith("generator_predictions/output_bias") for p in skipped)
    assert any("embeddings/layer_norm/gamma" in p for p in skipped)
    assert any("feedforward_layer_norm/beta" in p for p in skipped)
    assert any("self_attention_layer/query/bias" in p for p in skipped)


def _adam_reference(w, grads, lr, wd, bias_correction, b1=0.9, b2=0.999, eps=1e-6):
    m = np.zeros_like(w)
    v = np.zeros_like(w)
    for t, g in enumerate(grads, start=1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        mh, vh = (m / (1 - b1 ** t), v / (1 - b2 ** t)) if bias_correction else (m, v)
        w = w - lr * (mh / (np.sqrt(vh) + eps) + wd * w)
    return w


@pytest.mark.parametrize("bias_correction", [False, True])
def test_update_matches_the_original_formula(bias_correction):
    rng = np.random.RandomState(0)
    w0 = rng.randn(4, 3).astype("float32")
    grads = [0.1 * rng.randn(4, 3).astype("float32") for _ in range(3)]
    kernel = tf.Variable(w0, name="kernel")
    bias = tf.Variable(w0[0], name="bias")
    optimizer = ElectraAdamW(1e-2, weight_decay=0.1, bias_correction=bias_correction, global_clipnorm=None)
    for g in grads:
        optimizer.apply_gradients([(tf.constant(g), kernel), (tf.constant(g[0]), bias)])
    np.testing.assert_allclose(kernel.numpy(), _adam_reference(w0, grads, 1e-2, 0.1, bias_correction), rtol=1e-5)
    np.testing.assert_allclose(bias.numpy(), _adam_reference(w0[0], [g[0] for g in grads], 1e-2, 0.0,
                                                            bias_correction), rtol=1e-5)


def test_global_norm_clipping():
    kernel = tf.Variable(np.zeros((2,), "float32"))
    optimizer = ElectraAdamW(1.0, weight_decay=0.0, beta_1=0.0, beta_2=0.0, epsilon=0.0, global_clipnorm=1.0)
    # beta = 0 makes the update g / |g| elementwise; check clipping reached the moments instead.
    optimizer.apply_gradients([(tf.constant([30.0, 40.0]), kernel)])
    np.testing.assert_allclose(optimizer._momentums[0].numpy(), [0.6, 0.8], rtol=1e-6)


def test_create_optimizer_uses_the_recipe():
    optimizer = create_optimizer(OptimizerConfig(learning_rate=2e-4, num_train_steps=100, num_warmup_steps=10))
    assert (optimizer.beta_1, optimizer.beta_2, optimizer.epsilon) == (0.9, 0.999, 1e-6)
    assert optimizer.weight_decay == 0.01 and optimizer.global_clipnorm == 1.0
    assert optimizer.bias_correction is False
    assert float(optimizer.learning_rate) == 0.0  # step 0 of the warmup
    with pytest.raises(ValueError, match="num_train_steps"):
        OptimizerConfig(num_train_steps=0)


@pytest.mark.parametrize("steps,warmup", [(1_000_000, 10_000), (2_000_000, 10_000), (766_000, 7_660), (10_000, 100),
                                          (20, 0)])
def test_default_warmup_is_one_percent_of_the_run_at_most_the_papers_10000(steps, warmup):
    assert OptimizerConfig(num_train_steps=steps).num_warmup_steps == warmup
    assert OptimizerConfig(num_train_steps=steps, num_warmup_steps=5).num_warmup_steps == 5  # a given one is kept


def test_a_warmup_over_half_of_the_run_warns():
    with pytest.warns(UserWarning, match="num_warmup_steps 60 is over half of the 100 training steps"):
        OptimizerConfig(num_train_steps=100, num_warmup_steps=60)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        OptimizerConfig(num_train_steps=100, num_warmup_steps=50)
        OptimizerConfig(num_train_steps=100)


def test_readme_snippet_short_run_lowers_the_loss():
    """README's "In Python": a short run with the default warmup learns (the fixed 10,000 steps did not)."""
    import keras
    from conftest import random_batch

    config = ElectraConfig.for_size("tiny", vocab_size=300, pad_id=0, unk_id=1, cls_id=2, sep_id=3, mask_id=4)
    keras.utils.set_random_seed(0)
    pretrainer = ElectraPretrainer(config)
    pretrainer.compile(optimizer=create_optimizer(OptimizerConfig(num_train_steps=50)))
    batch = {k: tf.constant(v) for k, v in random_batch(config, 8).items()}
    losses = [float(pretrainer.train_step(batch)["loss"]) for _ in range(20)]
    assert np.mean(losses[-5:]) < 0.9 * np.mean(losses[:5]), losses
