"""A first pre-training run on one's own corpus, as README's "Pre-training your own" runs it, at toy size.

From a directory outside the repository, under umask 022: a slice of the demo corpus -> build_vocab ->
build_pretraining_dataset -> run_pretraining --config=quick (20 steps, no --num_warmup_steps) -> convert_checkpoint
to Hugging Face and keras-hub, and back from Hugging Face. Then: the loss went down, every file written is
readable by others, and every export holds a model card stating the run's records.
"""

import json
import os
import stat
import subprocess
import sys

import pytest
from conftest import CLI_ENV, ROOT, SUBPROCESS_TIMEOUT, summary_scalars

STEPS = 20


def _run(cwd, module, *args):
    result = subprocess.run([sys.executable, "-m", module, *args], cwd=cwd, capture_output=True, text=True,
                            timeout=SUBPROCESS_TIMEOUT, env={**CLI_ENV, "PYTHONPATH": ROOT},
                            preexec_fn=lambda: os.umask(0o022))
    assert result.returncode == 0, f"{module}:\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
    return result


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    work = tmp_path_factory.mktemp("my_corpus")
    assert not str(work).startswith(ROOT)
    _run(work, "data_prep.export_corpus", "--output=corpus.txt", "--max_documents=200")
    _run(work, "data_prep.build_vocab", "--input=corpus.txt", "--vocab_size=1200", "--output=vocab.txt")
    _run(work, "data_prep.build_pretraining_dataset", "--input=corpus.txt", "--vocab_file=vocab.txt",
         "--output_dir=data", "--max_seq_length=128", "--num_out_files=2")
    train = _run(work, "electra_tf.run_pretraining", "--config=quick", "--data_dir=data", "--model_dir=model",
                 f"--num_train_steps={STEPS}", "--train_batch_size=8", "--steps_per_loop=5", "--log_every_steps=5",
                 "--save_checkpoints_steps=10", "--export_generator")
    _run(work, "electra_tf.convert_checkpoint", "--model_dir=model", "--to_hf=hf", "--to_keras_hub=keras_hub")
    _run(work, "electra_tf.convert_checkpoint", "--hf_discriminator=hf/discriminator", "--hf_generator=hf/generator",
         "--output_dir=imported")
    return work, train


def test_quick_recipe_runs_from_another_directory_and_its_default_warmup_lowers_the_loss(first_run):
    work, train = first_run
    assert f"trained to step {STEPS}" in train.stdout and "warning:" not in train.stderr
    record = json.loads((work / "model" / "training_record.json").read_text())
    assert record["optimizer"]["num_warmup_steps"] == 0  # 1% of 20 steps
    assert record["optimizer"]["learning_rate"] == 1e-3 and record["max_seq_length"] == 128  # quick.flags' values
    losses = summary_scalars(str(work / "model"), "loss/total")
    assert sorted(losses) == [5, 10, 15, 20]
    # With the old fixed 10,000-step warmup 20 steps moved it by 0.1%.
    assert losses[20] < 0.9 * losses[5], losses


def test_every_file_written_is_readable_by_others_under_umask_022(first_run):
    work, _ = first_run
    unreadable, count = [], 0
    for directory, subdirectories, files in os.walk(work):
        for name in subdirectories:
            mode = os.stat(os.path.join(directory, name)).st_mode
            if mode & 0o055 != 0o055:
                unreadable.append(f"{os.path.relpath(os.path.join(directory, name), work)}/ {stat.filemode(mode)}")
        for name in files:
            count += 1
            mode = os.stat(os.path.join(directory, name)).st_mode
            if mode & 0o044 != 0o044:
                unreadable.append(f"{os.path.relpath(os.path.join(directory, name), work)} {stat.filemode(mode)}")
    written = {os.path.relpath(os.path.join(d, f), work) for d, _, files in os.walk(work) for f in files}
    for expected in ("vocab.txt", "data/dataset_info.json", "model/run_config.json", "model/training_record.json",
                     "model/export/discriminator/saved_model.pb", "model/export/discriminator/README.md",
                     "hf/discriminator/config.json", "hf/generator/model.safetensors", "keras_hub/README.md",
                     "imported/run_config.json", "imported/export/discriminator/README.md"):
        assert expected in written
    assert count > 30 and not unreadable, unreadable


def _card_states_the_record(card, record):
    assert f"- Steps: {record['step']:,} ({record['examples']:,} examples of batch {record['train_batch_size']}" in card
    assert f"- Wall time: {record['wall_seconds']:,.0f} s" in card and record["hardware"] in card
    data = record["dataset"]
    assert f"- Examples: {data['num_examples']:,} of {data['max_seq_length']} tokens" in card
    assert f"- Corpus: corpus.txt ({data['input_bytes']:,} bytes, {data['documents']:,} documents)" in card
    assert f"### Final metrics (at step {record['metrics_step']})" in card
    for name in ("loss/total", "rtd/auc", "mlm/accuracy"):
        assert f"| {name} | {record['metrics'][name]:.4g} |" in card


def test_every_export_holds_a_model_card_with_the_runs_figures(first_run):
    work, _ = first_run
    model = work / "model"
    record = json.loads((model / "training_record.json").read_text())
    # The record is the run's: its step, examples and last logged loss are TensorBoard's.
    assert record["step"] == STEPS and record["examples"] == STEPS * 8 and record["wall_seconds"] > 0
    assert record["metrics_step"] == STEPS
    assert record["metrics"]["loss/total"] == pytest.approx(summary_scalars(str(model), "loss/total")[STEPS], 1e-5)
    vocab_size = len((work / "vocab.txt").read_text().splitlines())
    cards = {"model/export/discriminator": "ELECTRA discriminator (TensorFlow SavedModel)",
             "model/export/generator": "ELECTRA generator (TensorFlow SavedModel)",
             "hf/discriminator": "ELECTRA discriminator (Hugging Face transformers)",
             "hf/generator": "ELECTRA generator (Hugging Face transformers)",
             "keras_hub": "ELECTRA discriminator (keras-hub preset)"}
    for directory, title in cards.items():
        card = (work / directory / "README.md").read_text(encoding="utf-8")
        assert f"# {title}\n" in card, directory
        _card_states_the_record(card, record)
        assert f"- Vocabulary: {vocab_size:,} WordPiece tokens, uncased" in card
        assert "- Discriminator: 2 layers, hidden size 128, 2 attention heads" in card or "generator" in directory
        assert "tf.saved_model.load" in card and "from_pretrained" in card and "ElectraBackbone.from_preset" in card
        if directory.startswith("hf/"):
            assert card.startswith("---\nlicense: apache-2.0\nlanguage: en\nlibrary_name: transformers\ntags:\n")
        else:
            assert not card.startswith("---")
    generator = (work / "model/export/generator/README.md").read_text()
    assert "- Generator: 2 layers, hidden size 32, 1 attention heads, feed-forward 128" in generator
    imported = (work / "imported/export/discriminator/README.md").read_text()
    assert "Converted from" in imported and "hf/discriminator" in imported
