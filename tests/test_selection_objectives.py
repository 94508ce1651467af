"""teams and mc_bert: candidate sets, labels, losses and gradients on hand-built batches; the whole run through the
command line on one device and on two replicas; export, Hugging Face conversion and fine-tuning of the main model."""

import glob
import math
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_text  # noqa: F401  (registers the ops of the exports' serve_text)
from conftest import CLI_ENV, ROOT, SUBPROCESS_TIMEOUT, random_batch, run_module

from electra_tf import ElectraConfig, ElectraPretrainer, OptimizerConfig, create_optimizer
from electra_tf.pretraining.objectives.mc_bert import ORIGINAL, REJECT

SPECIAL = (0, 1, 2, 3, 4)  # pad, unk, cls, sep, mask
BASE = dict(vocab_size=300, pad_id=0, unk_id=1, cls_id=2, sep_id=3, mask_id=4, hidden_dropout_prob=0.0,
            attention_probs_dropout_prob=0.0)
TEAMS = ElectraConfig.for_size("tiny", objective="teams", generator_hidden_size=1.0, **BASE)
MC_BERT = ElectraConfig.for_size("tiny", objective="mc_bert", **BASE)


def _tensors(batch):
    return {k: tf.constant(v) for k, v in batch.items()}


def _sure_of(pretrainer, tokens):
    """A generator (meta controller) all but certain of `tokens`: candidates must still exclude the originals."""
    bias = np.zeros(pretrainer.config.vocab_size, "float32")
    bias[list(tokens)] = 30.0
    pretrainer.generator.head.output_bias.assign(bias)


def _gelu(x):
    return 0.5 * x * (1.0 + np.vectorize(math.erf)(x / np.sqrt(2.0)))


def _transform(dense, norm, hidden):
    """dense(GELU) -> LayerNorm, in NumPy."""
    x = _gelu(hidden @ dense.kernel.numpy() + dense.bias.numpy())
    mean, var = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + 1e-12) * norm.gamma.numpy() + norm.beta.numpy()


def _log_softmax(x):
    x = x - x.max(-1, keepdims=True)
    return x - np.log(np.exp(x).sum(-1, keepdims=True))


def _bce(logits, labels):
    return np.maximum(logits, 0) - logits * labels + np.log1p(np.exp(-np.abs(logits)))


def _gradient_norms(pretrainer, batch, step=3):
    with tf.GradientTape() as tape:
        outputs = pretrainer(_tensors(batch), training=True, step=step)
        loss, _ = pretrainer._compute_losses(outputs, *pretrainer._denominators([outputs]))
    grads = tape.gradient(loss, pretrainer.trainable_variables)
    return {id(v): 0.0 if g is None else float(tf.norm(tf.convert_to_tensor(g)))
            for v, g in zip(pretrainer.trainable_variables, grads)}


def _reached(norms, layers, embeddings):
    """Per layer: True if every variable got a gradient, False if none did (anything else fails).

    A head's variables include the word embeddings it is tied to: those count as `embeddings`' only.
    """
    shared = {id(v) for v in embeddings.trainable_variables}
    result = []
    for layer in layers:
        hits = [norms[id(v)] > 0 for v in layer.trainable_variables if layer is embeddings or id(v) not in shared]
        assert hits and len(set(hits)) == 1, (layer.name, hits)
        result.append(hits[0])
    return result


# ---------------------------------------------------------------- teams


def test_teams_candidates_hold_the_original_once_and_no_special_token():
    pretrainer = ElectraPretrainer(TEAMS)
    batch = random_batch(TEAMS, 8, seed=1)
    originals = set(batch["input_ids"][batch["input_mask"] > 0].tolist()) - set(SPECIAL)
    _sure_of(pretrainer, list(originals) + list(SPECIAL))  # the generator would propose nothing else
    out = pretrainer(_tensors(batch), step=5)
    chosen = out["masked_lm_weights"].numpy() > 0
    sets = out["candidate_ids"].numpy()[chosen]
    original = out["masked_lm_ids"].numpy()[chosen]
    assert sets.shape == (chosen.sum(), 5) and chosen.sum() > 20
    np.testing.assert_array_equal(sets[:, 0], original)  # the label, 0, points at the original ...
    assert (out["candidate_labels"].numpy() == 0).all()
    assert ((sets == original[:, None]).sum(1) == 1).all()  # ... which is there exactly once
    assert not np.isin(sets, SPECIAL).any()
    assert all(len(set(row)) == 5 for row in sets)  # without replacement
    # Positions are the masked ones; the logits are of the discriminator's last layer at them.
    np.testing.assert_array_equal(out["candidate_positions"], out["masked_lm_positions"])


def test_teams_losses_match_numpy():
    config = TEAMS.replace(gen_weight=0.7, teams_rtd_weight=3.0, mws_weight=2.5)
    pretrainer = ElectraPretrainer(config)
    batch = random_batch(config, 4, seed=2)
    out = pretrainer(_tensors(batch), step=1)
    loss, _ = pretrainer._compute_losses(out, *pretrainer._denominators([out]))

    disc = pretrainer.discriminator
    layers = disc.encoder.layer_outputs(out["corrupted_ids"], out["segment_ids"], out["input_mask"])
    assert config.task_agnostic_layers == 1 and len(layers) == 2
    # Detection reads layer 1 of 2 through its own layer; selection reads the last.
    rtd = disc.head(pretrainer.rtd_layers(layers[0], out["input_mask"])).numpy()
    np.testing.assert_allclose(out["rtd_logits"], rtd, atol=1e-5)
    positions, sets = out["masked_lm_positions"].numpy(), out["candidate_ids"].numpy()
    hidden = np.take_along_axis(layers[-1].numpy(), positions[..., None], 1)
    transformed = _transform(pretrainer.mws_head.dense, pretrainer.mws_head.layer_norm, hidden)
    table = disc.embeddings.word_embeddings.embeddings.numpy()
    mws_logits = np.einsum("bpe,bpke->bpk", transformed, table[sets])
    np.testing.assert_allclose(out["candidate_logits"], mws_logits, atol=1e-4)

    weights, real = out["masked_lm_weights"].numpy(), batch["input_mask"].astype("float32")
    mlm = -np.take_along_axis(_log_softmax(out["mlm_logits"].numpy()), out["masked_lm_ids"].numpy()[..., None], -1)
    mws = -_log_softmax(mws_logits)[..., 0]
    rtd_losses = _bce(rtd, out["rtd_labels"].numpy())
    expected = (0.7 * (mlm[..., 0] * weights).sum() / weights.sum() + 3.0 * (rtd_losses * real).sum() / real.sum()
                + 2.5 * (mws * weights).sum() / weights.sum())
    np.testing.assert_allclose(float(loss), expected, rtol=1e-5)


def test_teams_shares_layers_and_sends_each_loss_where_it_belongs():
    pretrainer = ElectraPretrainer(TEAMS)
    gen, disc = pretrainer.generator.encoder, pretrainer.discriminator.encoder
    assert TEAMS.shared_generator_blocks == 1
    assert gen.blocks[0] is disc.blocks[0] and gen.blocks[1] is not disc.blocks[1]
    assert gen.projection is disc.projection and pretrainer.generator.embeddings is pretrainer.discriminator.embeddings
    weights = pretrainer.get_weights()
    batch = random_batch(TEAMS, 8, seed=3)
    expected = {  # shared layer, generator's own layer, generator head, discriminator top, rtd layers, rtd head,
        # mws head, embeddings
        "mlm": [True, True, True, False, False, False, False, True],
        "rtd": [True, False, False, False, True, True, False, True],
        "mws": [True, False, False, True, False, False, True, True],
    }
    for loss, (gen_weight, rtd_weight, mws_weight) in {"mlm": (1, 0, 0), "rtd": (0, 1, 0), "mws": (0, 0, 1)}.items():
        alone = ElectraPretrainer(TEAMS.replace(gen_weight=gen_weight, teams_rtd_weight=rtd_weight,
                                                mws_weight=mws_weight))
        alone.set_weights(weights)
        names = ["shared", "gen_own", "gen_head", "disc_top", "rtd_layers", "rtd_head", "mws_head", "embeddings"]
        parts = [alone.generator.encoder.blocks[0], alone.generator.encoder.blocks[1], alone.generator.head,
                 alone.discriminator.encoder.blocks[1], alone.rtd_layers, alone.discriminator.head, alone.mws_head,
                 alone.embeddings]
        reached = _reached(_gradient_norms(alone, batch), parts, alone.embeddings)
        assert reached == expected[loss], (loss, dict(zip(names, reached)))


def test_teams_settings_are_checked():
    with pytest.raises(ValueError, match="generator_hidden_size=1.0"):
        TEAMS.replace(generator_hidden_size=0.5)
    assert TEAMS.replace(generator_hidden_size=0.5, shared_generator_layers=0.0).shared_generator_blocks == 0
    with pytest.raises(ValueError, match="teams_rtd_weight"):
        TEAMS.replace(disc_weight=10.0)
    with pytest.raises(ValueError, match="num_task_agnostic_layers"):
        TEAMS.replace(num_task_agnostic_layers=2)
    with pytest.raises(ValueError, match="gdes"):
        TEAMS.replace(embedding_sharing="gdes")


# ---------------------------------------------------------------- mc_bert


def test_mc_bert_candidates_labels_and_reject_option():
    pretrainer = ElectraPretrainer(MC_BERT)
    batch = random_batch(MC_BERT, 8, seed=1)
    originals = set(batch["input_ids"][batch["input_mask"] > 0].tolist()) - set(SPECIAL)
    _sure_of(pretrainer, list(originals) + list(SPECIAL))
    out = pretrainer(_tensors(batch), step=5)
    ids = batch["input_ids"]
    scored = out["candidate_weights"].numpy() > 0
    np.testing.assert_array_equal(scored, (batch["input_mask"] > 0) & ~np.isin(ids, SPECIAL))  # no [CLS], [SEP]
    sets = out["candidate_ids"].numpy()[scored]
    assert sets.shape == (scored.sum(), 10)
    assert (sets[:, REJECT] == -1).all() and (sets[:, ORIGINAL] == ids[scored]).all()
    assert ((sets == ids[scored][:, None]).sum(1) == 1).all()
    assert not np.isin(sets, SPECIAL).any() and all(len(set(row)) == 10 for row in sets)
    # The answer: the original where the token was replaced, the reject option where it is the original.
    replaced = out["corrupted_ids"].numpy() != ids
    assert replaced.sum() > 5 and (replaced == (out["rtd_labels"].numpy() > 0)).all()
    labels = out["candidate_labels"].numpy()
    assert (labels[replaced] == ORIGINAL).all() and (labels[~replaced] == REJECT).all()


@pytest.mark.parametrize("sharing", ["tied", "gdes"])
def test_mc_bert_loss_matches_numpy(sharing):
    config = MC_BERT.replace(gen_weight=0.5, disc_weight=20.0, embedding_sharing=sharing)
    pretrainer = ElectraPretrainer(config)
    rng = np.random.RandomState(0)
    main = pretrainer.main_mlm
    words = main.embeddings.word_embeddings.embeddings  # with gdes, the residual the main model adds
    words.assign(rng.normal(scale=0.02, size=words.shape).astype("float32"))
    pretrainer.main_mlm.head.output_bias.assign(rng.normal(size=config.vocab_size).astype("float32"))
    pretrainer.reject_option.bias.assign(0.3)
    batch = random_batch(config, 4, seed=2)
    out = pretrainer(_tensors(batch), step=1)
    loss, _ = pretrainer._compute_losses(out, *pretrainer._denominators([out]))

    hidden = main.encoder(out["corrupted_ids"], out["segment_ids"], out["input_mask"]).numpy()
    transformed = _transform(main.head.dense, main.head.layer_norm, hidden)
    sets = out["candidate_ids"].numpy()
    table = words.numpy()
    if sharing == "gdes":
        table = table + pretrainer.generator.embeddings.word_embeddings.embeddings.numpy()
    table = np.concatenate([table, pretrainer.reject_option.embedding.numpy()[None]])  # row -1: the reject option
    bias = np.concatenate([main.head.output_bias.numpy(), [0.3]])
    logits = np.einsum("bse,bske->bsk", transformed, table[sets]) + bias[sets]
    np.testing.assert_allclose(out["candidate_logits"], logits, atol=1e-4)
    weights, real = out["candidate_weights"].numpy(), batch["input_mask"].sum()
    labels = out["candidate_labels"].numpy()
    mc = -np.take_along_axis(_log_softmax(logits), labels[..., None], -1)[..., 0]
    mlm = -np.take_along_axis(_log_softmax(out["mlm_logits"].numpy()), out["masked_lm_ids"].numpy()[..., None], -1)
    masked = out["masked_lm_weights"].numpy()
    expected = 0.5 * (mlm[..., 0] * masked).sum() / masked.sum() + 20.0 * (mc * weights).sum() / real
    np.testing.assert_allclose(float(loss), expected, rtol=1e-5)


def test_mc_bert_sends_each_loss_where_it_belongs():
    pretrainer = ElectraPretrainer(MC_BERT)
    weights = pretrainer.get_weights()
    batch = random_batch(MC_BERT, 8, seed=3)
    for gen_weight, disc_weight, expected in ((1.0, 0.0, [True, True, False, False, False, True]),
                                              (0.0, 1.0, [False, False, True, True, True, True])):
        alone = ElectraPretrainer(MC_BERT.replace(gen_weight=gen_weight, disc_weight=disc_weight))
        alone.set_weights(weights)
        # meta controller's layers, its head, main model's layers, its head, reject option, (shared) embeddings
        parts = [*alone.generator.encoder.blocks, alone.generator.head, *alone.main_mlm.encoder.blocks,
                 alone.main_mlm.head, alone.reject_option, alone.embeddings]
        reached = _reached(_gradient_norms(alone, batch), parts, alone.embeddings)
        blocks = len(alone.generator.encoder.blocks)
        assert reached == [expected[0]] * blocks + expected[1:2] + [expected[2]] * blocks + expected[3:], reached


# ---------------------------------------------------------------- both


@pytest.mark.parametrize("config", [TEAMS, MC_BERT], ids=["teams", "mc_bert"])
@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision_steps_are_finite(config, policy):
    keras.mixed_precision.set_dtype_policy(policy)
    pretrainer = ElectraPretrainer(config, num_train_steps=10)
    pretrainer.compile(optimizer=create_optimizer(OptimizerConfig(learning_rate=1e-3, num_train_steps=10,
                                                                  num_warmup_steps=0)))
    metrics = pretrainer.train_step(_tensors(random_batch(config, 4)))
    assert all(np.isfinite(float(v)) for v in metrics.values()), metrics


@pytest.mark.parametrize("config", [TEAMS, MC_BERT], ids=["teams", "mc_bert"])
def test_checkpoint_restores_every_weight_and_the_next_step(config, tmp_path):
    def compiled():
        model = ElectraPretrainer(config, num_train_steps=10)
        model.compile(optimizer=create_optimizer(OptimizerConfig(learning_rate=1e-3, num_train_steps=10,
                                                                 num_warmup_steps=0)))
        return model

    first, batch = compiled(), _tensors(random_batch(config, 4))
    first.train_step(batch)
    prefix = tf.train.Checkpoint(model=first, optimizer=first.optimizer).write(str(tmp_path / "ckpt"))
    second = compiled()
    tf.train.Checkpoint(model=second, optimizer=second.optimizer).read(prefix).assert_consumed()
    first.train_step(batch)
    second.train_step(batch)
    for a, b in zip(first.trainable_variables, second.trainable_variables, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.path)


@pytest.mark.parametrize("config", [TEAMS, MC_BERT], ids=["teams", "mc_bert"])
def test_gradient_accumulation_is_one_big_batch(config):
    def trained(micro_batches):
        keras.utils.set_random_seed(1)
        model = ElectraPretrainer(config, num_train_steps=10)
        model.compile(optimizer=create_optimizer(OptimizerConfig(learning_rate=1e-3, num_train_steps=10,
                                                                 num_warmup_steps=0)))
        for _ in range(2):
            model.train_step(micro_batches)
        return model

    batch = random_batch(config, 8, seed=4)
    whole = trained(_tensors(batch))
    halves = trained([_tensors({k: v[i:i + 4] for k, v in batch.items()}) for i in (0, 4)])
    for a, b in zip(whole.trainable_variables, halves.trainable_variables, strict=True):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-5, rtol=0, err_msg=a.path)


def _checkpoint_values(model_dir):
    reader = tf.train.load_checkpoint(os.path.join(model_dir, "checkpoints"))
    return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()
            if name.startswith("optimizer/")}


def _tags(model_dir):
    tags, texts = set(), []
    for path in glob.glob(f"{model_dir}/train/events.out.tfevents.*"):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                tags.add(value.tag)
                if value.tag.startswith("examples/"):
                    texts.append(tf.make_ndarray(value.tensor).item().decode())
    return tags, texts


CLI = {"teams": (["--objective=teams", "--generator_hidden_size=1.0"], {"mws/accuracy", "loss/mws", "rtd/auc"},
                 "mws_acc"),
       "mc_bert": (["--objective=mc_bert", "--mask_token_prob=1.0"], {"mc/accuracy", "mc/replaced_accuracy", "loss/mc"},
                   "mc_acc")}


@pytest.mark.parametrize("name", sorted(CLI))
def test_trains_through_the_command_line_alike_on_one_device_and_two_replicas(name, pretraining_data, tmp_path):
    """One device and two logical CPU replicas reach the same weights; the run writes its own TensorBoard
    metrics and candidates, exports its main model's encoder, converts to Hugging Face and is found for
    fine-tuning."""
    extra, tags, progress = CLI[name]
    flags = [f"--data_dir={pretraining_data}", "--model_size=tiny", "--max_seq_length=64", "--train_batch_size=8",
             "--num_train_steps=4", "--num_warmup_steps=1", "--steps_per_loop=2", "--save_checkpoints_steps=4",
             "--log_every_steps=2", "--example_every_steps=2", "--hidden_dropout_prob=0",
             "--attention_probs_dropout_prob=0", *extra]
    one, two = tmp_path / "one", tmp_path / "two"
    mirrored = subprocess.Popen([sys.executable, "-m", "electra_tf.run_pretraining", *flags, f"--model_dir={two}",
                                 "--distribution_strategy=mirrored", "--num_cpu_devices=2", "--noexport_at_end"],
                                env=CLI_ENV, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        result = run_module("electra_tf.run_pretraining", *flags, f"--model_dir={one}")
        out, err = mirrored.communicate(timeout=SUBPROCESS_TIMEOUT)
    finally:
        mirrored.kill()
        mirrored.wait()
    assert mirrored.returncode == 0, err[-3000:]
    assert "trained to step 4" in result.stdout and "exported the encoder" in result.stdout, result.stdout[-1500:]
    assert progress in result.stderr + result.stdout
    alone, replicas = _checkpoint_values(one), _checkpoint_values(two)
    assert sorted(alone) == sorted(replicas) and len(alone) > 100
    for key, value in alone.items():
        np.testing.assert_allclose(replicas[key], value, atol=1e-5, rtol=0, err_msg=key)

    written, texts = _tags(one)
    assert tags <= written and not [t for t in written if t.startswith("train/")], sorted(written)
    assert texts and "candidates" in texts[-1]

    # The export: the main model's encoder, without a detection output.
    served = tf.saved_model.load(str(one / "export" / "encoder")).signatures["serving_default"]
    ids = tf.constant([[2, 40, 41, 3]], tf.int32)
    outputs = served(input_ids=ids, input_mask=tf.ones_like(ids), segment_ids=tf.zeros_like(ids))
    assert set(outputs) == {"sequence_output", "pooled_output"}

    # Hugging Face: the main encoder as an ElectraModel (the heads dropped, said so), the generator as ever.
    from electra_tf.convert_checkpoint import Options, run
    from electra_tf.finetuning.sources import resolve

    lines = run(Options(model_dir=str(one), to_hf=str(tmp_path / "hf")))
    assert any(line.startswith("dropped ") for line in lines) and "(ElectraModel)" in lines[0], lines
    from transformers import ElectraForMaskedLM, ElectraModel

    hf, info = ElectraModel.from_pretrained(str(tmp_path / "hf" / "discriminator"), output_loading_info=True)
    assert not any(info.values()), info
    generator = ElectraForMaskedLM.from_pretrained(str(tmp_path / "hf" / "generator")).eval()
    import torch

    pretrained = resolve(str(one))
    from electra_tf.training import run_state

    pretrainer = run_state.restore_pretrainer(run_state.load(str(one)))
    with torch.no_grad():
        theirs = hf.eval()(torch.tensor(ids.numpy()).long()).last_hidden_state.numpy()
        their_logits = generator(torch.tensor(ids.numpy()).long()).logits.numpy()
    ours = pretrainer.encoder(ids, tf.zeros_like(ids), tf.ones_like(ids)).numpy()
    np.testing.assert_allclose(theirs, ours, atol=1e-4)
    positions = tf.constant([[0, 1, 2, 3]])
    our_logits = pretrainer.generator({"input_ids": ids, "input_mask": tf.ones_like(ids),
                                       "segment_ids": tf.zeros_like(ids), "masked_lm_positions": positions})
    np.testing.assert_allclose(their_logits, our_logits, atol=1e-3)
    # Fine-tuning reads the same encoder, from the model_dir and from the export.
    for source in (pretrained, resolve(str(one / "export" / "encoder"))):
        from electra_tf.modeling.embeddings import ElectraEmbeddings
        from electra_tf.modeling.encoder import ElectraEncoder

        encoder = ElectraEncoder(source.config, "discriminator", ElectraEmbeddings(source.config))
        encoder.build((None, 64))
        source.load_encoder(encoder)
        np.testing.assert_allclose(encoder(ids, tf.zeros_like(ids), tf.ones_like(ids)), ours, atol=1e-5)
