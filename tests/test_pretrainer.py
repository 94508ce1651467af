import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import random_batch

from electra_tf import ElectraConfig, ElectraPretrainer, OptimizerConfig, create_optimizer
from electra_tf.pretraining.pretrainer import ELECTRA_METRICS, MLM_METRICS

TINY = ElectraConfig.for_size("tiny", vocab_size=300, pad_id=0, unk_id=1, cls_id=2, sep_id=3, mask_id=4,
                              hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)


def _compiled(config=TINY, learning_rate=1e-3, steps=1000):
    pretrainer = ElectraPretrainer(config)
    pretrainer.compile(optimizer=create_optimizer(
        OptimizerConfig(learning_rate=learning_rate, num_train_steps=steps, num_warmup_steps=0)))
    return pretrainer


def _tensors(batch):
    return {k: tf.constant(v) for k, v in batch.items()}


def test_train_step_returns_exactly_the_named_metrics():
    pretrainer = _compiled()
    metrics = pretrainer.train_step(_tensors(random_batch(TINY, 8)))
    assert tuple(metrics) == ELECTRA_METRICS
    assert all(np.isfinite(float(v)) for v in metrics.values())
    assert 0.10 < float(metrics["masked_fraction"]) < 0.2
    assert float(metrics["replaced_fraction"]) <= float(metrics["masked_fraction"])


def _with_generator_bias(pretrainer, token):
    bias = np.full(TINY.vocab_size, -1e4, "float32")
    bias[token] = 1e4
    pretrainer.generator.head.output_bias.assign(bias)


def test_sample_equal_to_original_is_labelled_original():
    pretrainer = ElectraPretrainer(TINY)
    batch = random_batch(TINY, 8)
    batch["input_ids"] = np.where(batch["input_ids"] > TINY.mask_id, 9, batch["input_ids"]).astype("int32")
    _with_generator_bias(pretrainer, 9)  # the generator always proposes the original token
    out = pretrainer(_tensors(batch))
    assert (out["sampled_ids"].numpy()[out["masked_lm_weights"].numpy() > 0] == 9).all()
    assert out["rtd_labels"].numpy().sum() == 0
    np.testing.assert_array_equal(out["corrupted_ids"], batch["input_ids"])


def test_replaced_positions_and_only_they_are_labelled_replaced():
    pretrainer = ElectraPretrainer(TINY)
    batch = random_batch(TINY, 8)
    _with_generator_bias(pretrainer, 10)
    out = {k: v.numpy() for k, v in pretrainer(_tensors(batch)).items()}
    labels = np.zeros_like(batch["input_ids"])
    rows = np.arange(8)[:, None]
    chosen = out["masked_lm_weights"] > 0
    labels[rows.repeat(chosen.shape[1], 1)[chosen], out["masked_lm_positions"][chosen]] = 1
    labels[batch["input_ids"] == 10] = 0  # already 10: a "replacement" by itself is no replacement
    np.testing.assert_array_equal(out["rtd_labels"], labels)
    assert (out["corrupted_ids"][labels == 1] == 10).all()
    assert (out["rtd_labels"][batch["input_mask"] == 0] == 0).all()


def _grads(config, batch):
    pretrainer = ElectraPretrainer(config)
    with tf.GradientTape() as tape:
        outputs = pretrainer(_tensors(batch), training=True)
        loss, _ = pretrainer._compute_losses(outputs, *pretrainer._denominators([outputs]))
    variables = pretrainer.trainable_variables
    grads = tape.gradient(loss, variables)
    by_id = {id(v): g for v, g in zip(variables, grads)}
    norm = lambda vs: sum(0.0 if by_id[id(v)] is None else float(tf.norm(by_id[id(v)])) for v in vs)  # noqa: E731
    shared = {id(v) for v in pretrainer.embeddings.trainable_variables}
    own = lambda model: [v for v in model.trainable_variables if id(v) not in shared]  # noqa: E731
    return (norm(own(pretrainer.generator)), norm(own(pretrainer.discriminator)),
            norm(pretrainer.embeddings.trainable_variables))


def test_gradient_isolation_between_towers():
    batch = random_batch(TINY, 8)
    gen, disc, shared = _grads(TINY.replace(gen_weight=0.0), batch)
    assert gen == 0.0 and disc > 0 and shared > 0  # no gradient through the sampling
    gen, disc, shared = _grads(TINY.replace(disc_weight=0.0), batch)
    assert disc == 0.0 and gen > 0 and shared > 0
    gen, disc, shared = _grads(TINY, batch)
    assert gen > 0 and disc > 0 and shared > 0


def test_tiny_model_overfits_one_batch():
    # 5e-4: at 2e-3 the generator memorises the batch and the discriminator
    # stays at the base rate while the loss still halves (measured on 4 seeds).
    keras.utils.set_random_seed(0)
    pretrainer = _compiled(learning_rate=5e-4, steps=400)
    batch = _tensors(random_batch(TINY, 16, seed=3))
    step = tf.function(pretrainer.train_step)
    first = float(step(batch)["loss"])
    for _ in range(300):
        step(batch)
    pretrainer.reset_metrics()
    for _ in range(20):
        metrics = step(batch)
    assert float(metrics["loss"]) < first / 2
    base_rate = 1 - float(metrics["replaced_fraction"])
    assert float(metrics["rtd_accuracy"]) > base_rate + 0.05
    assert float(metrics["rtd_auc"]) > 0.9


def test_mlm_objective_trains_one_discriminator_sized_masked_lm():
    config = TINY.replace(objective="mlm")
    pretrainer = _compiled(config)
    assert pretrainer.discriminator is None
    assert pretrainer.generator.encoder.hidden_size == config.hidden_size
    assert pretrainer.encoder is pretrainer.generator.encoder
    metrics = pretrainer.train_step(_tensors(random_batch(config, 8)))
    assert tuple(metrics) == MLM_METRICS
    assert float(metrics["loss"]) == pytest.approx(float(metrics["mlm_loss"]), rel=1e-5)


def test_randomness_is_reproducible_from_the_seed():
    batch = _tensors(random_batch(TINY, 8))
    runs = []
    for seed in (0, 0, 1):
        keras.utils.set_random_seed(123)  # same initial weights each time
        pretrainer = _compiled(TINY.replace(seed=seed))
        runs.append([float(pretrainer.train_step(batch)["loss"]) for _ in range(3)])
    assert runs[0] == runs[1]
    assert runs[0] != runs[2]


def _loss_after_one_step(policy, jit_compile=False, config=TINY, loss_scale=None):
    keras.mixed_precision.set_dtype_policy(policy)
    keras.utils.set_random_seed(7)
    pretrainer = ElectraPretrainer(config)
    optimizer = create_optimizer(OptimizerConfig(learning_rate=1e-3, num_train_steps=1000, num_warmup_steps=0))
    if loss_scale:
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer, initial_scale=loss_scale)
    pretrainer.compile(optimizer=optimizer)
    step = tf.function(pretrainer.train_step, jit_compile=jit_compile)
    batch = _tensors(random_batch(config, 8, seed=1))
    losses = [float(step(batch)["loss"]) for _ in range(2)]
    keras.mixed_precision.set_dtype_policy("float32")
    return losses, pretrainer


def test_bfloat16_xla_and_float16_give_finite_losses_close_to_float32():
    reference, _ = _loss_after_one_step("float32")
    xla, _ = _loss_after_one_step("float32", jit_compile=True)
    np.testing.assert_allclose(xla, reference, rtol=1e-4)
    bf16, pretrainer = _loss_after_one_step("mixed_bfloat16")
    assert pretrainer.discriminator.encoder.blocks[0].compute_dtype == "bfloat16"
    assert pretrainer.trainable_variables[0].dtype == "float32"
    np.testing.assert_allclose(bf16, reference, rtol=0.03)
    fp16, pretrainer = _loss_after_one_step("mixed_float16")
    assert isinstance(pretrainer.optimizer, keras.optimizers.LossScaleOptimizer)
    # Keras' dynamic loss scale starts at 2**15, where this model's gradients overflow float16: the
    # step is skipped and the scale lowered, as it should be. From a scale that fits, the step applies.
    assert float(pretrainer.optimizer.dynamic_scale) < 2**15 and fp16[1] == fp16[0]
    fp16, _ = _loss_after_one_step("mixed_float16", loss_scale=2**8)
    np.testing.assert_allclose(fp16, reference, rtol=0.03)


@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
def test_towers_run_eagerly_under_mixed_precision(policy):
    keras.mixed_precision.set_dtype_policy(policy)
    pretrainer = ElectraPretrainer(TINY)
    outputs = pretrainer(_tensors(random_batch(TINY, 2)), training=False)  # eager, as the example summary runs
    assert outputs["mlm_logits"].dtype == tf.float32 and outputs["rtd_logits"].dtype == tf.float32
    assert np.isfinite(outputs["rtd_logits"].numpy()).all()


def test_keras_fit_drives_the_same_train_step():
    pretrainer = _compiled()
    data = tf.data.Dataset.from_tensors(random_batch(TINY, 8)).repeat(3)
    history = pretrainer.fit(data, epochs=1, verbose=0)
    assert set(ELECTRA_METRICS) <= set(history.history)
    assert int(pretrainer.optimizer.iterations) == 3
