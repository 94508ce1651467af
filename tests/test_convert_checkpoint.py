"""convert_checkpoint against transformers, keras-hub and the original TF1 layout, on tiny random models.

The Hugging Face models are built from random initialisation in-process
(eager attention, embedding size 96 != hidden sizes 128 and 64, heads as the
original derives them: hidden // 64), so nothing is downloaded.
"""

import dataclasses
import json
import os
import shutil

import numpy as np
import pytest
import tensorflow as tf
import torch
from conftest import USER_ENV, random_batch, run_module
from safetensors.numpy import load_file, save_file
from transformers import AutoTokenizer, ElectraForMaskedLM, ElectraForPreTraining
from transformers import ElectraConfig as HFConfig

from electra_tf.convert import checkpoint_import, keras_hub_export
from electra_tf.convert_checkpoint import Options, run
from electra_tf.modeling.config import ElectraConfig
from electra_tf.modeling.encoder import exact_gelu
from electra_tf.pretraining.pretrainer import ElectraPretrainer
from electra_tf.training import run_state
from electra_tf.utils.errors import UserError

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [f"tok{i}" for i in range(115)]
SEQ = 48
# keras-hub's blocks use the tanh GELU, whose largest gap to the exact one is 4.7e-4 (at x = +-2.7).
# Measured on this model: sequence_output moves by 1.0e-3 (1.2e-3 on the converter's probe batch);
# with the exact GELU swapped into keras-hub's blocks the outputs are identical (difference 0.0).
KERAS_HUB_TOLERANCE = 2e-3


def _hf_config(hidden, intermediate):
    return HFConfig(vocab_size=len(VOCAB), embedding_size=96, hidden_size=hidden, num_hidden_layers=2,
                    num_attention_heads=max(1, hidden // 64), intermediate_size=intermediate,
                    max_position_embeddings=64, attn_implementation="eager", initializer_range=0.1)


def _write_vocab(directory):
    with open(os.path.join(directory, "vocab.txt"), "w", encoding="utf-8") as f:
        f.write("\n".join(VOCAB) + "\n")


@pytest.fixture(scope="module")
def hf_pair(tmp_path_factory):
    """Random ElectraForPreTraining + ElectraForMaskedLM with tied embeddings, saved as transformers does."""
    root = tmp_path_factory.mktemp("hf")
    torch.manual_seed(0)
    disc = ElectraForPreTraining(_hf_config(128, 512)).eval()
    gen = ElectraForMaskedLM(_hf_config(64, 256)).eval()
    # The released pairs share one embedding table (the original trains one).
    gen.electra.embeddings.load_state_dict(disc.electra.embeddings.state_dict())
    disc.save_pretrained(root / "discriminator")
    gen.save_pretrained(root / "generator")
    _write_vocab(root / "discriminator")
    with open(root / "discriminator" / "tokenizer_config.json", "w") as f:
        json.dump({"do_lower_case": False}, f)
    return {"disc": disc, "gen": gen, "discriminator_dir": str(root / "discriminator"),
            "generator_dir": str(root / "generator"), "root": root}


@pytest.fixture(scope="module")
def imported(hf_pair):
    """The pair converted to a model_dir; returns (model_dir, report lines)."""
    out = str(hf_pair["root"] / "ours")
    lines = run(Options(hf_discriminator=hf_pair["discriminator_dir"], hf_generator=hf_pair["generator_dir"],
                        output_dir=out, max_seq_length=SEQ))
    return out, lines


@pytest.fixture(scope="module")
def exported(imported, hf_pair):
    model_dir, _ = imported
    to_hf, to_keras_hub = str(hf_pair["root"] / "back_to_hf"), str(hf_pair["root"] / "keras_hub")
    lines = run(Options(model_dir=model_dir, to_hf=to_hf, to_keras_hub=to_keras_hub))
    return to_hf, to_keras_hub, lines


def _batch(config, seed=1):
    batch = random_batch(config, 4, seed=seed, min_len=12)
    assert (batch["input_mask"] == 0).any(), "the batch must contain padding"
    return batch


def _masked(batch, config, per_row=3, seed=2):
    """Puts [MASK] at `per_row` real positions of each row; returns (ids, positions)."""
    rng = np.random.default_rng(seed)
    ids = batch["input_ids"].copy()
    positions = np.stack([rng.choice(np.arange(1, int(mask.sum()) - 1), per_row, replace=False)
                          for mask in batch["input_mask"]]).astype("int32")
    np.put_along_axis(ids, positions, config.mask_id, axis=1)
    return ids, positions


def _hf_logits(model, ids, batch):
    with torch.no_grad():
        return model(input_ids=torch.tensor(ids, dtype=torch.long),
                     attention_mask=torch.tensor(batch["input_mask"], dtype=torch.long),
                     token_type_ids=torch.tensor(batch["segment_ids"], dtype=torch.long)).logits.numpy()


def _assert_matches_hf(pretrainer, disc, gen):
    """Discriminator logits everywhere and generator logits at masked positions within 1e-4 of transformers'."""
    config = pretrainer.config
    batch = _batch(config)
    ours = pretrainer.discriminator(batch, training=False)["logits"].numpy()
    np.testing.assert_allclose(ours, _hf_logits(disc, batch["input_ids"], batch), atol=1e-4, rtol=0)
    ids, positions = _masked(batch, config)
    ours = pretrainer.generator({**batch, "input_ids": ids, "masked_lm_positions": positions}, training=False)
    theirs = np.take_along_axis(_hf_logits(gen, ids, batch), positions[:, :, None], axis=1)
    np.testing.assert_allclose(ours.numpy(), theirs, atol=1e-4, rtol=0)
    return batch


def test_hf_import_matches_transformers(imported, hf_pair):
    model_dir, lines = imported
    assert any("equal the discriminator's (tied" in line for line in lines), lines
    state = run_state.load(model_dir)
    assert state.lowercase is False  # from tokenizer_config.json
    assert (state.config.hidden_size, state.config.embedding_size, state.config.generator_dims) == (128, 96,
                                                                                                    (64, 1, 256))
    pretrainer = run_state.restore_pretrainer(state)
    batch = _assert_matches_hf(pretrainer, hf_pair["disc"], hf_pair["gen"])

    # The SavedModel export holds the same weights.
    served = tf.saved_model.load(os.path.join(model_dir, "export", "discriminator")).signatures["serving_default"]
    probabilities = served(**{k: tf.constant(v) for k, v in batch.items()})["rtd_probabilities"].numpy()
    expected = 1 / (1 + np.exp(-_hf_logits(hf_pair["disc"], batch["input_ids"], batch))) * batch["input_mask"]
    np.testing.assert_allclose(probabilities, expected, atol=1e-5)

    # model.flags reproduces the recorded config, so run_pretraining's resume check passes.
    with open(os.path.join(model_dir, "model.flags")) as f:
        values = dict(line[2:].strip().split("=", 1) for line in f if line.startswith("--"))
    recorded = state.config.to_dict()
    assert {k: str(recorded[k]) for k in values} == values
    assert set(recorded) - set(values) == {"seed", "pad_id", "unk_id", "cls_id", "sep_id", "mask_id"}


def test_round_trip_to_hf_is_bit_identical_and_loads_cleanly(exported, hf_pair):
    to_hf, _, _ = exported
    for tower, cls in (("discriminator", ElectraForPreTraining), ("generator", ElectraForMaskedLM)):
        original = load_file(os.path.join(hf_pair[f"{tower}_dir"], "model.safetensors"))
        back = load_file(os.path.join(to_hf, tower, "model.safetensors"))
        assert sorted(back) == sorted(original)
        for key, value in original.items():
            assert back[key].dtype == value.dtype and np.array_equal(back[key], value), key
        model, info = cls.from_pretrained(os.path.join(to_hf, tower), output_loading_info=True)
        assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"], info
        assert torch.equal(model.electra.embeddings.word_embeddings.weight,
                           hf_pair["disc"].electra.embeddings.word_embeddings.weight)
    # Tied output layer: transformers restores it from the word embeddings.
    assert torch.equal(model.generator_lm_head.weight, model.electra.embeddings.word_embeddings.weight)
    tokenizer = AutoTokenizer.from_pretrained(os.path.join(to_hf, "discriminator"))
    assert tokenizer("tok1 tok2")["input_ids"] == [2, 6, 7, 3]


def test_keras_hub_backbone_within_the_gelu_difference(exported, imported):
    import keras_hub

    _, to_keras_hub, lines = exported
    reported = float(next(line for line in lines if "GELU" in line).split("at most ")[1].split()[0])
    backbone = keras_hub.models.ElectraBackbone.from_preset(to_keras_hub)
    tokenizer = keras_hub.models.ElectraTokenizer.from_preset(to_keras_hub)
    assert tokenizer.vocabulary_size() == len(VOCAB)
    pretrainer = run_state.restore_pretrainer(run_state.load(imported[0]))
    batch = _batch(pretrainer.config)
    ours = pretrainer.discriminator(batch, training=False)["sequence_output"].numpy()
    inputs = {"token_ids": batch["input_ids"], "segment_ids": batch["segment_ids"], "padding_mask": batch["input_mask"]}
    real = batch["input_mask"].astype(bool)
    theirs = backbone(inputs, training=False)
    tanh_difference = np.max(np.abs(ours - theirs["sequence_output"].numpy())[real])
    assert 0 < reported <= KERAS_HUB_TOLERANCE and tanh_difference <= KERAS_HUB_TOLERANCE
    np.testing.assert_allclose(theirs["pooled_output"], np.tanh(theirs["sequence_output"][:, 0]), atol=1e-6)

    for layer in backbone.transformer_layers:  # the only difference left: the GELU
        layer._feedforward_intermediate_dense.activation = exact_gelu
    exact_difference = np.max(np.abs(ours - backbone(inputs, training=False)["sequence_output"].numpy())[real])
    assert exact_difference < 1e-6 < tanh_difference, (tanh_difference, exact_difference)


def _hf_to_tf1(disc, gen):
    """The pair as the original's variables: names from model/modeling.py and run_pretraining.py."""
    tensors = {}

    def dense(name, linear):
        tensors[f"{name}/kernel"] = linear.weight.detach().numpy().T
        tensors[f"{name}/bias"] = linear.bias.detach().numpy()

    def norm(name, layer_norm):
        tensors[f"{name}/gamma"] = layer_norm.weight.detach().numpy()
        tensors[f"{name}/beta"] = layer_norm.bias.detach().numpy()

    embeddings = disc.electra.embeddings
    for table in ("word_embeddings", "position_embeddings", "token_type_embeddings"):
        tensors[f"electra/embeddings/{table}"] = getattr(embeddings, table).weight.detach().numpy()
    norm("electra/embeddings/LayerNorm", embeddings.LayerNorm)
    for scope, model in (("electra", disc), ("generator", gen)):
        dense(f"{scope}/embeddings_project", model.electra.embeddings_project)
        for i, layer in enumerate(model.electra.encoder.layer):
            prefix = f"{scope}/encoder/layer_{i}"
            for part in ("query", "key", "value"):
                dense(f"{prefix}/attention/self/{part}", getattr(layer.attention.self, part))
            dense(f"{prefix}/attention/output/dense", layer.attention.output.dense)
            norm(f"{prefix}/attention/output/LayerNorm", layer.attention.output.LayerNorm)
            dense(f"{prefix}/intermediate/dense", layer.intermediate.dense)
            dense(f"{prefix}/output/dense", layer.output.dense)
            norm(f"{prefix}/output/LayerNorm", layer.output.LayerNorm)
    dense("discriminator_predictions/dense", disc.discriminator_predictions.dense)
    dense("discriminator_predictions/dense_1", disc.discriminator_predictions.dense_prediction)
    dense("generator_predictions/dense", gen.generator_predictions.dense)
    norm("generator_predictions/LayerNorm", gen.generator_predictions.LayerNorm)
    tensors["generator_predictions/output_bias"] = gen.generator_lm_head.bias.detach().numpy()
    return tensors


def _save_tf1(prefix, tensors):
    """Writes a name-based (TF1-style) checkpoint, as tf.compat.v1.train.Saver does."""
    names = sorted(tensors)
    tf.raw_ops.SaveV2(prefix=prefix, tensor_names=names, shape_and_slices=[""] * len(names),
                      tensors=[tf.constant(tensors[n]) for n in names])


def test_original_tf1_checkpoint_converts_and_runs(hf_pair, tmp_path):
    tensors = _hf_to_tf1(hf_pair["disc"], hf_pair["gen"])
    # AdamWeightDecayOptimizer's slots and the step counter are in every released checkpoint.
    tensors.update({f"{name}/adam_{slot}": np.zeros_like(value) for name, value in list(tensors.items())[:5]
                    for slot in "mv"})
    tensors["global_step"] = np.array(1000000, dtype=np.int64)
    os.makedirs(tmp_path / "electra_tiny")
    _save_tf1(str(tmp_path / "electra_tiny" / "model.ckpt-1000000"), tensors)
    _write_vocab(tmp_path / "electra_tiny")
    lines = run(Options(tf1_checkpoint=str(tmp_path / "electra_tiny" / "model.ckpt-1000000"),
                        output_dir=str(tmp_path / "ours"), max_seq_length=SEQ))
    assert any("hidden_size // 64" in line for line in lines), lines
    pretrainer = run_state.restore_pretrainer(run_state.load(str(tmp_path / "ours")))
    _assert_matches_hf(pretrainer, hf_pair["disc"], hf_pair["gen"])


def test_untied_generator_embeddings_keep_the_discriminators(hf_pair, tmp_path):
    untied = tmp_path / "generator"
    shutil.copytree(hf_pair["generator_dir"], untied)
    weights = load_file(untied / "model.safetensors")
    weights["electra.embeddings.word_embeddings.weight"] = weights["electra.embeddings.word_embeddings.weight"] + 0.5
    save_file(weights, untied / "model.safetensors", metadata={"format": "pt"})
    found = checkpoint_import.from_hf(hf_pair["discriminator_dir"], str(untied))
    pretrainer, remark = checkpoint_import.build_pretrainer(found, checkpoint_import.make_config(found, SEQ))
    assert "word_embeddings (max |difference| 0.5)" in remark and "kept the discriminator's" in remark
    np.testing.assert_array_equal(pretrainer.embeddings.word_embeddings.embeddings.numpy(),
                                  hf_pair["disc"].electra.embeddings.word_embeddings.weight.detach().numpy())


def test_generator_saved_under_its_output_layer_name(hf_pair, tmp_path):
    # A shared tensor is stored once: some conversions kept generator_lm_head.weight, not the embeddings.
    generator = shutil.copytree(hf_pair["generator_dir"], tmp_path / "generator")
    weights = load_file(generator / "model.safetensors")
    weights["generator_lm_head.weight"] = weights.pop("electra.embeddings.word_embeddings.weight")
    save_file(weights, generator / "model.safetensors", metadata={"format": "pt"})
    found = checkpoint_import.from_hf(hf_pair["discriminator_dir"], str(generator))
    _, remark = checkpoint_import.build_pretrainer(found, checkpoint_import.make_config(found, SEQ))
    assert "equal the discriminator's" in remark


def _copy_hf(source, target, drop=None, config_changes=None):
    shutil.copytree(source, target)
    if drop:
        os.remove(os.path.join(target, drop))
    if config_changes:
        path = os.path.join(target, "config.json")
        with open(path) as f:
            config = json.load(f)
        with open(path, "w") as f:
            json.dump({**config, **config_changes}, f)
    return str(target)


def _short_vocab(tmp):
    path = tmp / "short_vocab.txt"
    path.write_text("\n".join(VOCAB[:100]) + "\n")
    return str(path)


def _bert_tf1(tmp):
    _save_tf1(str(tmp / "bert_model.ckpt"), {"bert/embeddings/word_embeddings": np.zeros((10, 4), np.float32)})
    return str(tmp / "bert_model.ckpt")


# name: (options from the HF pair and a scratch directory, what the one error line must say)
BAD_INPUTS = {
    "missing weights": (lambda p, tmp: Options(hf_discriminator=_copy_hf(p["discriminator_dir"], tmp / "d",
                                                                         drop="model.safetensors")),
                        "model.safetensors not found"),
    "missing config": (lambda p, tmp: Options(hf_discriminator=_copy_hf(p["discriminator_dir"], tmp / "d",
                                                                        drop="config.json")), "config.json not found"),
    "missing TF1 checkpoint": (lambda p, tmp: Options(tf1_checkpoint=str(tmp / "model.ckpt-1")), ".index not found"),
    "missing vocab": (lambda p, tmp: Options(hf_discriminator=_copy_hf(p["discriminator_dir"], tmp / "d",
                                                                       drop="vocab.txt")), "no vocab.txt"),
    "not ELECTRA (HF)": (lambda p, tmp: Options(hf_discriminator=_copy_hf(
        p["discriminator_dir"], tmp / "d", config_changes={"model_type": "bert"})), "not ELECTRA"),
    "generator as discriminator": (lambda p, tmp: Options(hf_discriminator=p["generator_dir"]),
                                   "not ElectraForPreTraining"),
    "not ELECTRA (TF1)": (lambda p, tmp: Options(tf1_checkpoint=_bert_tf1(tmp)), "is not an ELECTRA checkpoint"),
    "vocabulary size": (lambda p, tmp: Options(hf_discriminator=p["discriminator_dir"], vocab_file=_short_vocab(tmp)),
                        "vocabulary size disagrees"),
    "shape mismatch": (lambda p, tmp: Options(hf_discriminator=_copy_hf(
        p["discriminator_dir"], tmp / "d", config_changes={"intermediate_size": 256})), "shape mismatch"),
    "pair mismatch": (lambda p, tmp: Options(hf_discriminator=p["discriminator_dir"], hf_generator=_copy_hf(
        p["generator_dir"], tmp / "g", config_changes={"layer_norm_eps": 1e-5})), "layer_norm_eps is 1e-05"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_is_one_line_and_writes_nothing(case, hf_pair, tmp_path):
    make_options, expected = BAD_INPUTS[case]
    options = dataclasses.replace(make_options(hf_pair, tmp_path), output_dir=str(tmp_path / "out" / "model"))
    with pytest.raises(UserError) as error:
        run(options)
    assert expected in str(error.value) and "\n" not in str(error.value), str(error.value)
    assert not (tmp_path / "out").exists()


def test_bad_exports_and_occupied_outputs(imported, tmp_path):
    model_dir, _ = imported
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "file").write_text("keep me")
    cases = [
        (Options(model_dir=str(tmp_path / "no_run"), to_hf=str(tmp_path / "hf")), "run_config.json not found"),
        (Options(model_dir=model_dir, to_hf=str(tmp_path / "hf"), to_keras_hub=str(tmp_path / "taken")),
         "exists and is not empty"),
        (Options(hf_discriminator=model_dir, output_dir=str(tmp_path / "taken")), "exists and is not empty"),
        (Options(model_dir=model_dir, to_hf=str(tmp_path / "hf"), hf_discriminator=model_dir), "one conversion"),
        (Options(), "nothing to do"),
    ]
    for options, expected in cases:
        with pytest.raises(UserError, match=expected):
            run(options)
    assert sorted(os.listdir(tmp_path)) == ["taken"] and os.listdir(tmp_path / "taken") == ["file"]
    # keras-hub's ElectraBackbone has no LayerNorm epsilon argument.
    with pytest.raises(UserError, match="epsilon"):
        keras_hub_export.build_backbone(ElectraPretrainer(ElectraConfig.for_size("tiny", layer_norm_epsilon=1e-5)))


def test_interrupted_import_leaves_nothing(hf_pair, tmp_path, monkeypatch):
    def fail(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(checkpoint_import, "export_pretrainer", fail)
    with pytest.raises(KeyboardInterrupt):
        run(Options(hf_discriminator=hf_pair["discriminator_dir"], output_dir=str(tmp_path / "model")))
    assert os.listdir(tmp_path) == []


def test_command_line_error_is_one_line(hf_pair, tmp_path):
    bad = _copy_hf(hf_pair["discriminator_dir"], tmp_path / "d", config_changes={"intermediate_size": 256})
    result = run_module("electra_tf.convert_checkpoint", f"--hf_discriminator={bad}",
                        f"--output_dir={tmp_path / 'out'}", check=False, env=USER_ENV)
    errors = result.stderr.splitlines()  # the error alone: TensorFlow started quietly
    assert result.returncode == 2 and len(errors) == 1 and "shape mismatch" in errors[0], result.stderr[-2000:]
    assert not (tmp_path / "out").exists()


def test_run_pretraining_continues_from_the_import(imported, tmp_path):
    model_dir = shutil.copytree(imported[0], tmp_path / "model")
    config = run_state.load(str(model_dir)).config
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    batch = random_batch(config, 8, seed=3)
    with tf.io.TFRecordWriter(str(data_dir / "pretrain_data.tfrecord-0-of-1")) as writer:
        for row in range(8):
            feature = {name: tf.train.Feature(int64_list=tf.train.Int64List(value=batch[name][row]))
                       for name in ("input_ids", "input_mask", "segment_ids")}
            writer.write(tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString())
    result = run_module("electra_tf.run_pretraining", f"--flagfile={model_dir}/model.flags", f"--data_dir={data_dir}",
                        f"--model_dir={model_dir}", f"--vocab_file={model_dir}/vocab.txt", "--train_batch_size=4",
                        "--num_train_steps=2", "--num_warmup_steps=1", "--learning_rate=1e-6", "--steps_per_loop=1",
                        "--save_checkpoints_steps=2", "--log_every_steps=1", "--example_every_steps=100",
                        "--noexport_at_end")
    assert "trained to step 2" in result.stdout, result.stdout[-2000:]
    state = run_state.load(str(model_dir))
    before = run_state.restore_pretrainer(state, f"{model_dir}/checkpoints/ckpt-0")
    after = run_state.restore_pretrainer(state, f"{model_dir}/checkpoints/ckpt-2")
    moved = [float(np.max(np.abs(a.numpy() - b.numpy()))) for a, b in zip(before.weights, after.weights)]
    # Trained from the imported weights: every weight within two tiny steps of them, and some moved.
    assert max(moved) < 1e-4 and sum(m > 0 for m in moved) > len(moved) // 2, max(moved)


# ---------------------------------------------------------------- the generator and embedding knobs


def _pretrainer_model_dir(config, directory, seed=0):
    """A model_dir holding a randomly initialised pretrainer of `config` (perturbed, so no table is zero)."""
    from electra_tf.modeling.embeddings import GdesEmbeddings

    tf.keras.utils.set_random_seed(seed)
    pretrainer = ElectraPretrainer(config)
    if isinstance(pretrainer.discriminator.embeddings, GdesEmbeddings):
        rng = np.random.default_rng(seed)
        for residual in pretrainer.discriminator.embeddings.residuals():
            residual.assign(rng.normal(scale=0.1, size=residual.shape).astype("float32"))
    os.makedirs(directory)
    _write_vocab(directory)
    state = run_state.start_or_check(str(directory / "run"), config, str(directory / "vocab.txt"), True)
    tf.train.CheckpointManager(tf.train.Checkpoint(model=pretrainer), state.checkpoint_dir, 1).save(0)
    return pretrainer, str(directory / "run")


def _knob_config(**changes):
    ids = {"pad_id": 0, "unk_id": 1, "cls_id": 2, "sep_id": 3, "mask_id": 4}
    return ElectraConfig.for_size("tiny", vocab_size=len(VOCAB), max_seq_length=SEQ, **ids, **changes)


def _assert_same_towers(ours, theirs, generator=True):
    batch = _batch(ours.config)
    np.testing.assert_allclose(theirs.discriminator(batch, training=False)["logits"],
                               ours.discriminator(batch, training=False)["logits"], atol=1e-5, rtol=0)
    if generator:
        ids, positions = _masked(batch, ours.config)
        inputs = {**batch, "input_ids": ids, "masked_lm_positions": positions}
        np.testing.assert_allclose(theirs.generator(inputs, training=False), ours.generator(inputs, training=False),
                                   atol=1e-5, rtol=0)


def test_gdes_exports_one_folded_table(tmp_path):
    config = _knob_config(embedding_sharing="gdes")
    pretrainer, model_dir = _pretrainer_model_dir(config, tmp_path / "gdes")
    run(Options(model_dir=model_dir, to_hf=str(tmp_path / "hf"), to_keras_hub=str(tmp_path / "keras_hub")))
    generator_words = pretrainer.generator.embeddings.word_embeddings.embeddings.numpy()
    folded = generator_words + pretrainer.discriminator.embeddings.residuals()[0].numpy()
    disc = ElectraForPreTraining.from_pretrained(str(tmp_path / "hf" / "discriminator")).eval()
    gen = ElectraForMaskedLM.from_pretrained(str(tmp_path / "hf" / "generator")).eval()
    np.testing.assert_array_equal(disc.electra.embeddings.word_embeddings.weight.detach().numpy(), folded)
    np.testing.assert_array_equal(gen.electra.embeddings.word_embeddings.weight.detach().numpy(), generator_words)
    _assert_matches_hf(pretrainer, disc, gen)
    import keras_hub

    backbone = keras_hub.models.ElectraBackbone.from_preset(str(tmp_path / "keras_hub"))
    np.testing.assert_array_equal(backbone.token_embedding.embeddings.numpy(), folded)
    # The SavedModel export holds the folded discriminator too.
    from electra_tf.serving.savedmodel import export_pretrainer

    path = export_pretrainer(pretrainer, str(tmp_path / "gdes" / "vocab.txt"), str(tmp_path / "export"))
    batch = _batch(config)
    served = tf.saved_model.load(path).signatures["serving_default"](**{k: tf.constant(v) for k, v in batch.items()})
    expected = tf.sigmoid(pretrainer.discriminator(batch)["logits"]).numpy() * batch["input_mask"]
    np.testing.assert_allclose(served["rtd_probabilities"], expected, atol=1e-6)


def test_untied_shallower_generator_round_trips_through_hf_and_the_original_layout(tmp_path):
    from electra_tf.convert import pretrainer_weights

    config = _knob_config(untied_generator_embeddings=True, generator_hidden_size=0.25, generator_layers=0.5)
    pretrainer, model_dir = _pretrainer_model_dir(config, tmp_path / "untied")
    assert pretrainer.generator.embeddings.word_embeddings.embeddings.shape == (len(VOCAB), 16)
    run(Options(model_dir=model_dir, to_hf=str(tmp_path / "hf")))
    lines = run(Options(hf_discriminator=str(tmp_path / "hf" / "discriminator"),
                        hf_generator=str(tmp_path / "hf" / "generator"), output_dir=str(tmp_path / "from_hf"),
                        max_seq_length=SEQ))
    assert any("untied_generator_embeddings" in line for line in lines) and any("/ 1 layer," in line for line in lines)
    # The original's layout: generator/embeddings/* as wide as the generator, no generator projection.
    tensors = pretrainer_weights.extract(pretrainer_weights.pretrainer_variables(pretrainer))
    assert tensors["generator/embeddings/word_embeddings"].shape == (len(VOCAB), 16)
    assert "generator/embeddings_project/kernel" not in tensors and "generator/encoder/layer_1/output/dense/bias" \
        not in tensors
    os.makedirs(tmp_path / "tf1")
    _save_tf1(str(tmp_path / "tf1" / "model.ckpt-10"), tensors)
    _write_vocab(tmp_path / "tf1")
    run(Options(tf1_checkpoint=str(tmp_path / "tf1"), output_dir=str(tmp_path / "from_tf1"), max_seq_length=SEQ,
                num_heads=config.num_heads))
    for imported in ("from_hf", "from_tf1"):
        state = run_state.load(str(tmp_path / imported))
        assert (state.config.sharing, state.config.generator_layers) == ("untied", 0.5), imported
        _assert_same_towers(pretrainer, run_state.restore_pretrainer(state))
