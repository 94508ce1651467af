"""Every model source through the one resolver: Hugging Face ELECTRA and BERT directories, keras-hub presets, and the
errors for hub names, missing paths and unknown directories (tiny random models made here; nothing downloaded)."""

import os
import shutil

import numpy as np
import pytest
import tensorflow as tf
import torch
from conftest import error_lines, run_module
from test_run_finetuning import _write_reviews
from transformers import BertConfig, BertForPreTraining, ElectraForPreTraining, ElectraModel
from transformers import ElectraConfig as HFElectraConfig

from electra_tf import ElectraClassifier
from electra_tf.finetuning import sources
from electra_tf.utils.errors import UserError


def _vocab_size(model_dir):
    with open(os.path.join(model_dir, "vocab.txt"), encoding="utf-8") as f:
        return len(f.read().split("\n")) - 1


def _hf_electra(vocab_size, cls=ElectraForPreTraining):
    torch.manual_seed(0)
    config = HFElectraConfig(vocab_size=vocab_size, embedding_size=32, hidden_size=64, num_hidden_layers=2,
                             num_attention_heads=1, intermediate_size=128, max_position_embeddings=32,
                             initializer_range=0.1, attn_implementation="eager")
    return cls(config).eval()


def _save(model, directory, vocab_dir, bin_file=False):
    if bin_file:  # what older transformers wrote: a pickled state dict
        os.makedirs(directory)
        model.config.save_pretrained(directory)
        torch.save(model.state_dict(), os.path.join(directory, "pytorch_model.bin"))
    else:
        model.save_pretrained(directory)
    shutil.copyfile(os.path.join(vocab_dir, "vocab.txt"), os.path.join(directory, "vocab.txt"))
    return str(directory)


@pytest.fixture(scope="module")
def hf_electra_dir(finetuning_model_dir, tmp_path_factory):
    """A random tiny ElectraForPreTraining saved with save_pretrained, with the test vocabulary."""
    model = _hf_electra(_vocab_size(finetuning_model_dir))
    return model, _save(model, tmp_path_factory.mktemp("hf") / "electra", finetuning_model_dir)


def _ids(classifier):
    features = classifier.preprocessor(["a great film", "the cat sat on the mat"])
    return {k: v.numpy() for k, v in features.items()}


def _assert_encodes_like(classifier, hf_encoder, features):
    ours = classifier.encode(features, training=False).numpy()
    with torch.no_grad():
        theirs = hf_encoder(input_ids=torch.tensor(features["input_ids"]).long(),
                            attention_mask=torch.tensor(features["input_mask"]).long(),
                            token_type_ids=torch.tensor(features["segment_ids"]).long()).last_hidden_state.numpy()
    real = features["input_mask"].astype(bool)
    np.testing.assert_allclose(ours[real], theirs[real], atol=1e-4)


def _fits(classifier):
    before = [v.numpy() for v in classifier.encoder.trainable_weights]
    classifier.compile()
    history = classifier.fit(["a great film", "a dull movie"] * 4, ["pos", "neg"] * 4, epochs=1, batch_size=4,
                             verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    moved = [not np.array_equal(a, b.numpy()) for a, b in zip(before, classifier.encoder.trainable_weights)]
    assert all(moved) and classifier.labels == ["neg", "pos"]


def test_hugging_face_electra_fine_tunes_through_from_pretrained(hf_electra_dir):
    model, directory = hf_electra_dir
    assert sources.locate(directory) == "hugging_face"
    classifier = ElectraClassifier.from_pretrained(directory, sequence_length=16)
    assert classifier.config.embedding_size == 32 and classifier.config.num_layers == 2
    _assert_encodes_like(classifier, model.electra, _ids(classifier))
    _fits(classifier)


def test_bert_and_pytorch_bin_directories(finetuning_model_dir, tmp_path):
    torch.manual_seed(1)
    bert = BertForPreTraining(BertConfig(vocab_size=_vocab_size(finetuning_model_dir), hidden_size=32,
                                         num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                                         max_position_embeddings=32, attn_implementation="eager")).eval()
    directory = _save(bert, tmp_path / "bert", finetuning_model_dir)
    source = sources.resolve(directory)
    assert source.kind == "hugging_face" and any("cls, pooler" in note for note in source.notes), source.notes
    classifier = ElectraClassifier.from_pretrained(directory, sequence_length=16)
    assert classifier.encoder.projection is None  # BERT's embeddings are as wide as its hidden states
    _assert_encodes_like(classifier, bert.bert, _ids(classifier))
    _fits(classifier)
    # An ElectraModel (no prefix, no head) written as a pickled pytorch_model.bin reads the same, without torch.
    headless = _hf_electra(_vocab_size(finetuning_model_dir), ElectraModel)
    directory = _save(headless, tmp_path / "bin", finetuning_model_dir, bin_file=True)
    classifier = ElectraClassifier.from_pretrained(directory, sequence_length=16)
    _assert_encodes_like(classifier, headless, _ids(classifier))


def test_keras_hub_preset_gives_the_converted_weights(finetuning_model_dir, tmp_path):
    from electra_tf.convert_checkpoint import Options, run

    preset = str(tmp_path / "keras_hub")
    run(Options(model_dir=finetuning_model_dir, to_keras_hub=preset))
    from_preset = ElectraClassifier.from_pretrained(preset, sequence_length=16)
    from_run = ElectraClassifier.from_pretrained(finetuning_model_dir, sequence_length=16)
    assert from_preset.preprocessor.vocabulary == from_run.preprocessor.vocabulary
    assert from_preset.preprocessor.lowercase is True
    for a, b in zip(from_preset.encoder.weights, from_run.encoder.weights, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    # A fine-tuned preset is a source too: its encoder, under a new head.
    from_run.save_to_preset(str(tmp_path / "finetuned"))
    again = ElectraClassifier.from_pretrained(str(tmp_path / "finetuned"), sequence_length=16, num_classes=3)
    assert again.num_classes == 3
    np.testing.assert_array_equal(again.encoder.weights[0].numpy(), from_run.encoder.weights[0].numpy())


def test_hub_names_missing_paths_and_unknown_directories(finetuning_model_dir, tmp_path):
    cases = {
        "google/electra-small-discriminator": r"downloads nothing at run time: .*huggingface-cli download "
                                              r"google/electra-small-discriminator --local-dir DIR\) and pass that",
        "hf://google/electra-small-discriminator": "downloads nothing at run time",
        str(tmp_path / "nowhere"): "nowhere does not exist; give a model_dir",
        str(tmp_path): "none of the models electra-tf reads; .*convert_checkpoint",
        f"{finetuning_model_dir}/vocab.txt": "is a file; give",
    }
    (tmp_path / "notes.txt").write_text("not a model")
    for path, expected in cases.items():
        with pytest.raises(UserError, match=expected) as error:
            ElectraClassifier.from_pretrained(path)
        assert "\n" not in str(error.value)
    tf1 = tmp_path / "tf1"
    tf.train.Checkpoint(v=tf.Variable(1.0)).write(str(tf1 / "model.ckpt"))
    with pytest.raises(UserError, match="convert_checkpoint --tf1_checkpoint="):
        sources.locate(str(tf1))


def test_command_line_fine_tunes_a_hugging_face_directory(hf_electra_dir, tmp_path):
    _, directory = hf_electra_dir
    data = _write_reviews(tmp_path / "reviews")
    out = tmp_path / "out"
    result = run_module("electra_tf.run_finetuning", f"--data_dir={data}", "--text_a_column=review",
                        "--label_column=sentiment", f"--init_checkpoint={directory}", f"--output_dir={out}",
                        "--max_seq_length=16", "--train_batch_size=8", "--num_train_epochs=1", "--noexport")
    assert f"pre-trained the Hugging Face directory {directory}" in result.stdout, result.stdout
    assert (out / "eval_results.json").exists()


@pytest.mark.parametrize("module, flag", [("electra_tf.run_finetuning", "init_checkpoint"),
                                          ("electra_tf.export", "model_dir")])
def test_command_line_reports_a_hub_name_or_missing_path_first(module, flag, hf_electra_dir, tmp_path):
    # --data_dir does not exist either: the model is checked before any data is read.
    extra = [f"--data_dir={tmp_path / 'no_data'}", f"--output_dir={tmp_path / 'out'}"] \
        if module.endswith("run_finetuning") else []
    for path, expected in [("google/electra-small-discriminator", "downloads nothing at run time"),
                           (str(tmp_path / "missing"), "missing does not exist")]:
        result = run_module(module, f"--{flag}={path}", *extra, check=False)
        assert result.returncode == 2 and len(error_lines(result.stderr)) == 1, result.stderr[-2000:]
        assert expected in error_lines(result.stderr)[0]
    if module.endswith("export"):  # a Hugging Face directory is no pre-training run to export
        result = run_module(module, f"--model_dir={hf_electra_dir[1]}", check=False)
        assert result.returncode == 2 and "convert_checkpoint --hf_discriminator" in error_lines(result.stderr)[0]
    assert not (tmp_path / "out").exists()
