"""The pre-training objectives and their knobs: labels, losses, gradients, checkpoints, on hand-built batches."""

import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_text  # noqa: F401  (registers the ops of the exports' serve_text)
from conftest import ROOT, random_batch, run_module, summary_steps
from tensorflow.core.protobuf import trackable_object_graph_pb2

from electra_tf import ElectraConfig, ElectraPretrainer, OptimizerConfig, create_optimizer
from electra_tf.modeling import config as config_lib
from electra_tf.modeling.embeddings import GdesEmbeddings
from electra_tf.modeling.models import ElectraDiscriminator, ElectraGenerator
from electra_tf.pretraining import objectives
from electra_tf.pretraining.masking import mask_tokens, scatter_at_positions
from electra_tf.pretraining.objectives.all_tokens_mlm import copy_mixture_log_prob, copy_mixture_prediction
from electra_tf.pretraining.sampling import gumbel_sample, temperature_at
from electra_tf.training.summaries import scalar_tag

TINY = ElectraConfig.for_size("tiny", vocab_size=300, pad_id=0, unk_id=1, cls_id=2, sep_id=3, mask_id=4,
                              hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
OBJECTIVES = config_lib.OBJECTIVES


def _tensors(batch):
    return {k: tf.constant(v) for k, v in batch.items()}


def _compiled(config, steps=100):
    pretrainer = ElectraPretrainer(config, num_train_steps=steps)
    pretrainer.compile(optimizer=create_optimizer(
        OptimizerConfig(learning_rate=1e-3, num_train_steps=steps, num_warmup_steps=0)))
    return pretrainer


def test_every_objective_is_registered_and_trains_a_step():
    assert set(objectives.OBJECTIVES) == set(OBJECTIVES)
    batch = _tensors(random_batch(TINY, 8))
    for name in OBJECTIVES:
        # teams shares generator layers with the discriminator, which needs them equally wide.
        pretrainer = _compiled(TINY.replace(objective=name, **({"generator_hidden_size": 1.0} if name == "teams"
                                                               else {})))
        metrics = pretrainer.train_step(batch)
        assert tuple(metrics) == pretrainer.objective.metric_names, name
        assert all(np.isfinite(float(v)) for v in metrics.values()), (name, metrics)
        # Every metric is in a TensorBoard group.
        assert not [m for m in metrics if scalar_tag(m).startswith("train/")], name


# ---------------------------------------------------------------- electra, unchanged


def test_electra_loss_is_the_direct_computation():
    """The objective's forward pass and loss equal the original's recipe written out here step by step."""
    keras.utils.set_random_seed(0)
    pretrainer = ElectraPretrainer(TINY.replace(sampler="gumbel"))  # the original's sampler, written out below
    batch = _tensors(random_batch(TINY, 8, seed=4))
    step = 7
    outputs = pretrainer(batch, step=step)
    loss, _ = pretrainer._compute_losses(outputs, *pretrainer._denominators([outputs]))

    ids, mask, segments = batch["input_ids"], batch["input_mask"], batch["segment_ids"]
    masked = mask_tokens(ids, mask, TINY, TINY.seed, step, tf.range(8))
    logits = pretrainer.generator({"input_ids": masked["masked_ids"], "input_mask": mask, "segment_ids": segments,
                                   "masked_lm_positions": masked["masked_lm_positions"]})
    sampled = gumbel_sample(logits, TINY.temperature, TINY.seed, step, tf.range(8))
    weights = masked["masked_lm_weights"]
    corrupted = scatter_at_positions(masked["masked_ids"], masked["masked_lm_positions"], sampled, weights > 0)
    labels = tf.cast(corrupted != ids, tf.float32)
    disc = pretrainer.discriminator({"input_ids": corrupted, "input_mask": mask, "segment_ids": segments})
    rtd_logits = disc["logits"]
    real = tf.cast(mask, tf.float32)
    mlm = tf.reduce_sum(tf.nn.sparse_softmax_cross_entropy_with_logits(masked["masked_lm_ids"], logits) * weights)
    rtd = tf.reduce_sum(tf.nn.sigmoid_cross_entropy_with_logits(labels, rtd_logits) * real)
    expected = 1.0 * (mlm / tf.reduce_sum(weights)) + 50.0 * (rtd / tf.reduce_sum(real))
    np.testing.assert_array_equal(outputs["corrupted_ids"], corrupted)
    assert float(loss) == float(expected)


def _object_graph(prefix):
    """Each variable of a checkpoint as every object path that reaches it, and its shape."""
    reader = tf.train.load_checkpoint(prefix)
    graph = trackable_object_graph_pb2.TrackableObjectGraph()
    graph.ParseFromString(reader.get_tensor("_CHECKPOINTABLE_OBJECT_GRAPH"))
    paths = {}
    stack = [(0, "")]
    while stack:
        node, path = stack.pop()
        paths.setdefault(node, []).append(path)
        stack += [(child.node_id, f"{path}/{child.local_name}" if path else child.local_name)
                  for child in graph.nodes[node].children]
    shapes = reader.get_variable_to_shape_map()
    return sorted(" = ".join(sorted(paths[node])) + f" {shapes[attribute.checkpoint_key]}"
                  for node, obj in enumerate(graph.nodes) for attribute in obj.attributes
                  if attribute.name == "VARIABLE_VALUE")


@pytest.mark.parametrize("objective", ["electra", "mlm"])
def test_checkpoints_keep_the_layout_of_release_0_2(objective, tmp_path):
    """tests/data holds the object graph of a checkpoint written by 0.2.0 (16dd575) for this config after one
    step; one written now must be the same graph, so 0.2 checkpoints restore (model and optimizer)."""
    config = ElectraConfig(vocab_size=40, embedding_size=8, hidden_size=16, num_layers=2, num_heads=2,
                           intermediate_size=32, generator_hidden_size=0.5, max_position_embeddings=16,
                           max_seq_length=16, pad_id=0, unk_id=1, cls_id=2, sep_id=3, mask_id=4, objective=objective)
    pretrainer = _compiled(config, 10)
    ids = np.random.RandomState(0).randint(5, 40, (4, 16)).astype("int32")
    pretrainer.train_step(_tensors({"input_ids": ids, "input_mask": np.ones_like(ids), "segment_ids": 0 * ids}))
    prefix = tf.train.Checkpoint(model=pretrainer, optimizer=pretrainer.optimizer).write(str(tmp_path / "ckpt"))
    with open(os.path.join(ROOT, "tests", "data", f"checkpoint_graph_0.2_{objective}.txt")) as f:
        recorded = f.read().splitlines()
    assert _object_graph(prefix) == recorded


# ---------------------------------------------------------------- electra_15


def _hand_built():
    """One example, 6 tokens, masked at 1 and 3; the generator put 9 at 1 (replaced) and the original at 3."""
    ids = tf.constant([[2, 10, 11, 12, 13, 3]])
    outputs = {
        "input_ids": ids, "input_mask": tf.ones_like(ids), "masked_lm_positions": tf.constant([[1, 3]]),
        "masked_lm_ids": tf.constant([[10, 12]]), "masked_lm_weights": tf.constant([[1.0, 1.0]]),
        "mlm_logits": tf.zeros([1, 2, TINY.vocab_size]),
        "corrupted_ids": tf.constant([[2, 9, 11, 12, 13, 3]]),
        "rtd_labels": tf.constant([[0, 1, 0, 0, 0, 0]]),
    }
    return outputs


def test_electra_15_takes_the_detection_loss_on_masked_positions_only():
    objective = objectives.create(TINY.replace(objective="electra_15", gen_weight=0.0))
    outputs = _hand_built()
    logits = np.array([[3.0, -2.0, 5.0, 1.0, -4.0, 2.0]], "float32")
    loss, _ = objective.losses({**outputs, "rtd_logits": tf.constant(logits)}, 2.0, 6.0)
    # Masked: position 1 (replaced, logit -2) and 3 (original, logit 1); mean over those two.
    bce = lambda z, y: np.log1p(np.exp(-z)) if y else np.log1p(np.exp(z))  # noqa: E731
    np.testing.assert_allclose(float(loss), 50.0 * (bce(-2.0, 1) + bce(1.0, 0)) / 2, rtol=1e-6)
    changed = logits.copy()
    changed[0, [0, 2, 4, 5]] = [-9.0, 9.0, 9.0, -9.0]  # unmasked positions do not count
    same, _ = objective.losses({**outputs, "rtd_logits": tf.constant(changed)}, 2.0, 6.0)
    assert float(same) == float(loss)
    electra = objectives.create(TINY.replace(gen_weight=0.0))  # ... where electra counts every token
    everywhere, _ = electra.losses({**outputs, "rtd_logits": tf.constant(changed)}, 2.0, 6.0)
    assert float(everywhere) != float(loss)


# ---------------------------------------------------------------- replace_mlm


def test_replace_mlm_learns_the_originals_from_the_generators_fill():
    pretrainer = ElectraPretrainer(TINY.replace(objective="replace_mlm"))
    out = pretrainer(_tensors(random_batch(TINY, 8)))
    chosen = out["masked_lm_weights"].numpy() > 0
    filled = np.take_along_axis(out["corrupted_ids"].numpy(), out["masked_lm_positions"].numpy(), 1)[chosen]
    np.testing.assert_array_equal(filled, out["sampled_ids"].numpy()[chosen])  # samples, never [MASK]
    assert (out["corrupted_ids"].numpy() != TINY.mask_id).all()
    # The main model reads the corrupted input and is scored against the originals.
    main = pretrainer.main_mlm({"input_ids": out["corrupted_ids"], "input_mask": out["input_mask"],
                                "segment_ids": out["segment_ids"], "masked_lm_positions": out["masked_lm_positions"]})
    np.testing.assert_allclose(out["main_logits"], main, atol=1e-6)

    objective = objectives.create(TINY.replace(objective="replace_mlm", gen_weight=0.0))
    main_logits = np.zeros([1, 2, TINY.vocab_size], "float32")
    main_logits[0, 0, 10] = np.log(3 * (TINY.vocab_size - 1))  # p(original 10) = 3/4 at the first position
    loss, _ = objective.losses({**_hand_built(), "main_logits": tf.constant(main_logits)}, 2.0, 6.0)
    np.testing.assert_allclose(float(loss), (-np.log(0.75) + np.log(TINY.vocab_size)) / 2, rtol=1e-5)


# ---------------------------------------------------------------- all_tokens_mlm


def test_copy_mixture_at_the_extremes_and_between():
    vocab_logits = tf.constant(np.random.RandomState(0).normal(size=(1, 3, 7)).astype("float32"))
    shown = tf.constant([[1, 2, 3]])
    target = tf.constant([[1, 5, 3]])  # position 1 was replaced (2 shown, 5 original)
    log_softmax = tf.nn.log_softmax(vocab_logits).numpy()
    always_copy = copy_mixture_log_prob(tf.fill([1, 3], -1e4), vocab_logits, shown, target).numpy()
    assert always_copy[0, 0] == 0.0 and always_copy[0, 2] == 0.0  # copy probability 1: the input token, probability 1
    assert always_copy[0, 1] < -1e3  # and nothing left for a replaced token's original
    never_copy = copy_mixture_log_prob(tf.fill([1, 3], 1e4), vocab_logits, shown, target).numpy()
    np.testing.assert_allclose(never_copy[0], log_softmax[0, [0, 1, 2], [1, 5, 3]], rtol=1e-6)  # the softmax alone
    half = copy_mixture_log_prob(tf.zeros([1, 3]), vocab_logits, shown, target).numpy()
    q = np.exp(log_softmax[0])
    np.testing.assert_allclose(np.exp(half[0]), [0.5 + 0.5 * q[0, 1], 0.5 * q[1, 5], 0.5 + 0.5 * q[2, 3]], rtol=1e-5)
    # The prediction: the input token when copying, the softmax's best when not.
    np.testing.assert_array_equal(copy_mixture_prediction(tf.fill([1, 3], -1e4), vocab_logits, shown), shown)
    np.testing.assert_array_equal(copy_mixture_prediction(tf.fill([1, 3], 1e4), vocab_logits, shown),
                                  np.argmax(log_softmax, -1))


def test_all_tokens_mlm_scores_every_real_token():
    pretrainer = ElectraPretrainer(TINY.replace(objective="all_tokens_mlm", gen_weight=0.0))
    batch = random_batch(TINY, 4)
    out = pretrainer(_tensors(batch))
    assert tuple(out["main_logits"].shape) == batch["input_ids"].shape + (TINY.vocab_size,)
    loss, parts = pretrainer._compute_losses(out, *pretrainer._denominators([out]))
    real = batch["input_mask"].astype(bool)
    expected = -copy_mixture_log_prob(out["rtd_logits"], out["main_logits"], out["corrupted_ids"],
                                      out["input_ids"]).numpy()
    np.testing.assert_allclose(float(loss), expected[real].mean(), rtol=1e-5)
    # Padding is not scored: changing its logits changes nothing.
    logits = out["rtd_logits"].numpy()
    logits[~real] = 30.0
    padded, _ = pretrainer._compute_losses({**out, "rtd_logits": tf.constant(logits)},
                                           *pretrainer._denominators([out]))
    assert float(padded) == float(loss)


# ---------------------------------------------------------------- knobs


def _with_generator_bias(pretrainer, token):
    # Sure of `token` (softmax 1 - 1e-11), but not beyond the original's disallow penalty of 1000.
    bias = np.zeros(TINY.vocab_size, "float32")
    bias[token] = 30.0
    pretrainer.generator.head.output_bias.assign(bias)


def test_disallow_correct_never_samples_the_original():
    batch = random_batch(TINY, 8)
    batch["input_ids"] = np.where(batch["input_ids"] > TINY.mask_id, 9, batch["input_ids"]).astype("int32")
    for disallow in (False, True):
        pretrainer = ElectraPretrainer(TINY.replace(disallow_correct=disallow))
        _with_generator_bias(pretrainer, 9)  # the generator is sure of the original token
        out = pretrainer(_tensors(batch))
        chosen = out["masked_lm_weights"].numpy() > 0
        sampled = out["sampled_ids"].numpy()[chosen]
        if disallow:
            assert (sampled != 9).all() and out["rtd_labels"].numpy().sum() == chosen.sum()
        else:
            assert (sampled == 9).all() and out["rtd_labels"].numpy().sum() == 0


def test_generator_layers_sets_the_generators_depth():
    config = TINY.replace(generator_layers=0.5)
    pretrainer = ElectraPretrainer(config)
    assert len(pretrainer.generator.encoder.blocks) == 1 and len(pretrainer.discriminator.encoder.blocks) == 2
    assert ElectraConfig.for_size("small", generator_layers=1 / 3).tower_layers("generator") == 4
    with pytest.raises(ValueError, match="generator_layers"):
        TINY.replace(generator_layers=0.1)  # rounds to no layer


def test_temperature_schedule_values():
    config = TINY.replace(temperature=2.0, final_temperature=0.5)
    values = [float(temperature_at(config, step, 1000)) for step in (0, 250, 500, 1000, 3000)]
    np.testing.assert_allclose(values, [2.0, 1.625, 1.25, 0.5, 0.5], rtol=1e-6)
    assert temperature_at(TINY.replace(temperature=2.0), 500, 1000) == 2.0  # no schedule: constant
    with pytest.raises(ValueError, match="num_train_steps"):
        ElectraPretrainer(config)(_tensors(random_batch(TINY, 2)))


def test_scheduled_temperature_is_the_one_sampled_at():
    config = TINY.replace(temperature=3.0, final_temperature=1.0)
    pretrainer = ElectraPretrainer(config, num_train_steps=100)
    # Logits far apart, so that the temperature decides samples.
    pretrainer.generator.head.output_bias.assign(np.random.RandomState(0).normal(scale=3.0, size=TINY.vocab_size))
    batch = _tensors(random_batch(TINY, 8))
    scheduled = pretrainer(batch, step=50)
    fixed = ElectraPretrainer(config.replace(temperature=2.0, final_temperature=0.0))
    fixed.set_weights(pretrainer.get_weights())
    at_two = fixed(batch, step=50)  # the schedule's value at step 50 of 100
    np.testing.assert_array_equal(scheduled["sampled_ids"], at_two["sampled_ids"])
    assert not np.array_equal(pretrainer(batch, step=0)["sampled_ids"], fixed(batch, step=0)["sampled_ids"])


def _gradient_norms(pretrainer, batch):
    with tf.GradientTape() as tape:
        outputs = pretrainer(_tensors(batch), training=True)
        loss, _ = pretrainer._compute_losses(outputs, *pretrainer._denominators([outputs]))
    variables = pretrainer.trainable_variables
    grads = tape.gradient(loss, variables)
    return {id(v): 0.0 if g is None else float(tf.norm(tf.convert_to_tensor(g))) for v, g in zip(variables, grads)}


def test_untied_embeddings_are_the_generators_own_at_its_width():
    config = ElectraConfig.for_size("tiny", vocab_size=300, generator_hidden_size=0.25, pad_id=0, unk_id=1,
                                    cls_id=2, sep_id=3, mask_id=4)
    for untied in (config.replace(embedding_sharing="untied"), config.replace(untied_generator_embeddings=True)):
        pretrainer = ElectraPretrainer(untied.replace(gen_weight=0.0))
        generator, discriminator = pretrainer.generator, pretrainer.discriminator
        assert generator.embeddings is not discriminator.embeddings and pretrainer.embeddings is generator.embeddings
        assert generator.embeddings.word_embeddings.embeddings.shape == (300, 16)  # 64 x 0.25: no projection
        assert generator.encoder.projection is None and discriminator.encoder.projection is not None
        # Detection's gradient reaches the discriminator's set and not the generator's.
        norms = _gradient_norms(pretrainer, random_batch(untied, 4))
        assert all(norms[id(v)] == 0.0 for v in generator.embeddings.trainable_variables)
        assert all(norms[id(v)] > 0 for v in discriminator.embeddings.trainable_variables)
    tied = ElectraPretrainer(config)
    assert tied.generator.embeddings is tied.discriminator.embeddings
    with pytest.raises(ValueError, match="exclude each other"):
        config.replace(untied_generator_embeddings=True, embedding_sharing="gdes")


def test_gdes_sends_no_discriminator_gradient_into_the_generators_table():
    config = TINY.replace(embedding_sharing="gdes")
    batch = random_batch(config, 8)
    pretrainer = ElectraPretrainer(config)
    residual = pretrainer.discriminator.embeddings
    assert isinstance(residual, GdesEmbeddings) and residual.source is pretrainer.generator.embeddings
    generator_tables = pretrainer.generator.embeddings.trainable_variables
    residuals = residual.residuals()
    assert all(float(tf.reduce_max(tf.abs(r))) == 0.0 for r in residuals)  # starts as the generator's
    detection_only = ElectraPretrainer(config.replace(gen_weight=0.0))
    detection_only.set_weights(pretrainer.get_weights())
    norms = _gradient_norms(detection_only, batch)
    by_id = {id(v): v for v in detection_only.trainable_variables}
    gen_ids = [id(v) for v in detection_only.generator.embeddings.trainable_variables]
    res_ids = [id(v) for v in detection_only.discriminator.embeddings.residuals()]
    assert all(norms[i] == 0.0 for i in gen_ids), [by_id[i].path for i in gen_ids if norms[i]]
    assert all(norms[i] > 0 for i in res_ids)
    mlm_only = ElectraPretrainer(config.replace(disc_weight=0.0))
    mlm_only.set_weights(pretrainer.get_weights())
    norms = _gradient_norms(mlm_only, batch)
    assert norms[id(mlm_only.generator.embeddings.trainable_variables[0])] > 0
    assert all(norms[id(v)] == 0.0 for v in mlm_only.discriminator.embeddings.residuals())
    assert len(generator_tables) == len(residuals) == 5


def test_gdes_kept_model_folds_the_residual_into_one_table():
    config = TINY.replace(embedding_sharing="gdes")
    pretrainer = ElectraPretrainer(config)
    rng = np.random.RandomState(1)
    for residual in pretrainer.discriminator.embeddings.residuals():
        residual.assign(rng.normal(scale=0.05, size=residual.shape).astype("float32"))
    batch = _tensors(random_batch(config, 4))
    kept = pretrainer.kept_model()
    assert isinstance(kept, ElectraDiscriminator) and type(kept.embeddings).__name__ == "ElectraEmbeddings"
    inside = pretrainer.discriminator(batch)
    alone = kept(batch)
    np.testing.assert_array_equal(alone["logits"], inside["logits"])
    folded = kept.embeddings.word_embeddings.embeddings.numpy()
    np.testing.assert_array_equal(folded, pretrainer.generator.embeddings.word_embeddings.embeddings.numpy()
                                  + pretrainer.discriminator.embeddings.residuals()[0].numpy())
    assert ElectraPretrainer(TINY).kept_model() is not None


@pytest.mark.parametrize("objective,kept", [("mlm", ElectraGenerator), ("replace_mlm", ElectraGenerator),
                                            ("all_tokens_mlm", ElectraDiscriminator)])
def test_kept_model_of_the_masked_lm_objectives(objective, kept):
    pretrainer = ElectraPretrainer(TINY.replace(objective=objective))
    model = pretrainer.kept_model()
    assert isinstance(model, kept) and model.encoder.hidden_size == TINY.hidden_size
    assert pretrainer.encoder is model.encoder


# ---------------------------------------------------------------- through the command line


# Between them every objective and knob: (flags, what the run exports, TensorBoard tags it must write).
CLI_RUNS = {
    "electra_15": (["--objective=electra_15", "--disallow_correct", "--temperature=2.0", "--final_temperature=1.0"],
                   "discriminator", {"rtd/auc", "mlm/sampling_temperature"}),
    "replace_mlm": (["--objective=replace_mlm", "--embedding_sharing=gdes", "--generator_layers=0.5"],
                    "encoder", {"loss/main", "main/replaced_accuracy"}),
    "all_tokens_mlm": (["--objective=all_tokens_mlm", "--untied_generator_embeddings"],
                       "discriminator", {"loss/main", "main/copy_probability"}),
}


@pytest.mark.parametrize("name", sorted(CLI_RUNS))
def test_objectives_and_knobs_train_through_the_command_line(name, pretraining_data, tmp_path):
    extra, exported, tags = CLI_RUNS[name]
    model_dir = tmp_path / "run"
    result = run_module("electra_tf.run_pretraining", f"--data_dir={pretraining_data}", f"--model_dir={model_dir}",
                        "--model_size=tiny", "--max_seq_length=64", "--train_batch_size=8", "--num_train_steps=6",
                        "--num_warmup_steps=2", "--steps_per_loop=3", "--save_checkpoints_steps=6",
                        "--log_every_steps=3", "--example_every_steps=3", *extra)
    assert "trained to step 6" in result.stdout and f"exported the {exported}" in result.stdout, result.stdout[-1500:]
    with open(model_dir / "run_config.json") as f:
        recorded = json.load(f)["electra_config"]
    for flag in extra:
        key, _, value = flag[2:].partition("=")
        assert str(recorded[key]) == (value or "True"), (key, recorded[key])
    written = set(summary_steps(model_dir))
    assert tags <= written and not [t for t in written if t.startswith("train/")], sorted(written)
    served = tf.saved_model.load(str(model_dir / "export" / exported)).signatures["serving_default"]
    ids = tf.constant([[2, 40, 41, 3]], tf.int32)
    outputs = served(input_ids=ids, input_mask=tf.ones_like(ids), segment_ids=tf.zeros_like(ids))
    assert outputs["sequence_output"].shape == (1, 4, 64)
    assert ("rtd_probabilities" in outputs) == (exported == "discriminator")
