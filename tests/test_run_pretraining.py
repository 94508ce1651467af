"""run_pretraining end to end, through the command line, on a slice of the demo corpus."""

import glob
import json
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_text  # noqa: F401  (registers the ops the exported serve_text uses)
from conftest import (
    CLI_ENV,
    ROOT,
    SUBPROCESS_TIMEOUT,
    USER_ENV,
    checkpoint_steps,
    error_lines,
    summary_scalars,
    summary_steps,
)
from conftest import pretraining_flags as _flags
from conftest import run_module as _run

from electra_tf.demo import SWAPPED

SCALARS = {"loss/total", "loss/mlm", "loss/rtd", "mlm/accuracy", "mlm/sampled_accuracy", "mlm/masked_fraction",
           "rtd/accuracy", "rtd/precision", "rtd/recall", "rtd/auc", "rtd/replaced_fraction",
           "optimizer/learning_rate", "optimizer/grad_norm", "speed/examples_per_second",
           "speed/tokens_per_second", "speed/seconds_per_step"}


@pytest.fixture(scope="module")
def data_dir(pretraining_data):
    return pretraining_data


def test_train_resume_summaries_and_export(data_dir, tmp_path):
    model_dir = tmp_path / "run"
    first = _run("electra_tf.run_pretraining", *_flags(data_dir, model_dir, 20, "--noexport_at_end"))
    assert "trained to step 20" in first.stdout
    assert checkpoint_steps(model_dir) == [10, 20]
    tags = summary_steps(model_dir)
    assert SCALARS <= set(tags), SCALARS - set(tags)
    assert "examples/replaced_token_detection" in tags
    assert set(tags) - SCALARS == {"examples/replaced_token_detection"}  # every tag is in a group
    assert max(tags["loss/total"]) == 20

    second = _run("electra_tf.run_pretraining", *_flags(data_dir, model_dir, 30))
    assert "resuming from" in second.stdout and "at step 20" in second.stdout
    assert re.search(r"^30/30 steps", second.stdout, re.M) and not re.search(r"^5/30 steps", second.stdout, re.M)
    assert checkpoint_steps(model_dir) == [10, 20, 30]
    assert min(s for s in summary_steps(model_dir)["loss/total"] if s > 20) == 25

    export_dir = model_dir / "export" / "discriminator"
    assert {"saved_model.pb", "vocab.txt", "electra_config.json"} <= set(os.listdir(export_dir))
    probe = """
import sys, json
import tensorflow as tf, tensorflow_text  # noqa: F401
model = tf.saved_model.load(sys.argv[1])
# A zero-width space inside "city": BERT's cleanup removes it, as data preparation did.
text = model.signatures["serve_text"](tf.constant(["the ci\\u200bty is large .", "a river"]))
ids = tf.constant([[2, 40, 41, 3, 0, 0]], tf.int32)
raw = model.signatures["serving_default"](input_ids=ids, input_mask=tf.cast(ids > 0, tf.int32),
                                          segment_ids=tf.zeros_like(ids))
print(json.dumps({"electra_tf_imported": "electra_tf" in sys.modules,
                  "tokens": [t.decode() for t in text["tokens"].numpy()[0] if t],
                  "p_text": text["rtd_probabilities"].numpy()[0, :7].tolist(),
                  "pooled": list(text["pooled_output"].shape),
                  "seq": list(raw["sequence_output"].shape), "p_raw": raw["rtd_probabilities"].numpy()[0].tolist()}))
"""
    result = subprocess.run([sys.executable, "-c", probe, str(export_dir)], capture_output=True, text=True,
                            timeout=SUBPROCESS_TIMEOUT, cwd=str(tmp_path),
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert result.returncode == 0, result.stderr[-2000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["electra_tf_imported"] is False
    assert out["tokens"][0] == "[CLS]" and out["tokens"][-1] == "[SEP]" and "city" in out["tokens"]
    assert all(0 < p < 1 for p in out["p_text"][: len(out["tokens"])])
    assert out["pooled"] == [2, 64] and out["seq"] == [1, 6, 64]
    assert out["p_raw"][4:] == [0.0, 0.0]  # padding gets no probability

    # make demo's last step, on this export: one line per sentence and the count.
    shown = _run("electra_tf.demo", f"--export_dir={export_dir}", env=USER_ENV)
    assert shown.stderr == ""  # TensorFlow starts quietly
    verdicts = [line for line in shown.stdout.splitlines() if line[:4] in ("HIT ", "miss")]
    assert len(verdicts) == len(SWAPPED) and all("*" in line for line in verdicts)
    hits = sum(line.startswith("HIT ") for line in verdicts)
    assert f"swapped word in {hits} of {len(SWAPPED)} sentences" in shown.stdout

    # The export command, from an older checkpoint, with the generator.
    exported = tmp_path / "exported"
    result = _run("electra_tf.export", f"--model_dir={model_dir}", f"--checkpoint={model_dir}/checkpoints/ckpt-10",
                  f"--export_dir={exported}", "--export_generator", env=USER_ENV)
    assert result.stderr == ""
    generator = tf.saved_model.load(str(exported / "generator")).signatures["serving_default"]
    ids = tf.constant([[2, 40, 4, 3]], tf.int32)
    logits = generator(input_ids=ids, input_mask=tf.ones_like(ids), segment_ids=tf.zeros_like(ids),
                       masked_lm_positions=tf.constant([[2]], tf.int32))["logits"]
    vocab_size = json.loads((model_dir / "run_config.json").read_text())["electra_config"]["vocab_size"]
    assert logits.shape == (1, 1, vocab_size)
    inputs = dict(input_ids=ids, input_mask=tf.ones_like(ids), segment_ids=tf.zeros_like(ids))
    at_10 = tf.saved_model.load(str(exported / "discriminator")).signatures["serving_default"](**inputs)
    at_30 = tf.saved_model.load(str(export_dir)).signatures["serving_default"](**inputs)
    assert not np.allclose(at_10["rtd_probabilities"], at_30["rtd_probabilities"])  # it exported ckpt-10
    missing = _run("electra_tf.export", f"--model_dir={tmp_path / 'nothing'}", check=False)
    assert missing.returncode != 0 and "run_config.json" in missing.stderr


def test_bf16_with_xla_trains_and_resumes_in_float32(data_dir, tmp_path):
    model_dir = tmp_path / "run"
    first = _run("electra_tf.run_pretraining", *_flags(data_dir, model_dir, 10, "--mixed_precision=bfloat16",
                                                        "--jit_compile", "--noexport_at_end"))
    assert "trained to step 10" in first.stdout
    reader = tf.train.load_checkpoint(str(model_dir / "checkpoints" / "ckpt-10"))
    weights = [name for name in reader.get_variable_to_shape_map()
               if "_trainable_variables/" in name and "OPTIMIZER" not in name]
    assert len(weights) > 20
    for name in weights:  # the variables stay float32 under the bf16 policy
        value = reader.get_tensor(name)
        assert value.dtype == np.float32 and np.isfinite(value).all(), name
    # The flags took effect: the losses are not float32's (as they would be if bf16 were ignored), but close.
    float32_dir = tmp_path / "float32"
    _run("electra_tf.run_pretraining", *_flags(data_dir, float32_dir, 10, "--noexport_at_end"))
    bf16_losses, float32_losses = summary_scalars(model_dir, "loss/total"), summary_scalars(float32_dir, "loss/total")
    assert sorted(bf16_losses) == sorted(float32_losses) == [5, 10]
    for step in (5, 10):
        difference = abs(bf16_losses[step] - float32_losses[step])
        assert 1e-5 * float32_losses[step] < difference < 0.02 * float32_losses[step], (step, difference)

    second = _run("electra_tf.run_pretraining", *_flags(data_dir, model_dir, 20, "--noexport_at_end"))
    assert "resuming from" in second.stdout and "at step 10" in second.stdout
    assert checkpoint_steps(model_dir) == [10, 20]


def test_non_finite_loss_stops_without_touching_the_last_good_checkpoint(data_dir, tmp_path):
    model_dir = tmp_path / "run"
    result = subprocess.run([sys.executable, os.path.join(ROOT, "tests", "nan_run.py"), "15",
                             *_flags(data_dir, model_dir, 40)], env=CLI_ENV, cwd=ROOT, capture_output=True, text=True,
                            timeout=SUBPROCESS_TIMEOUT)
    assert result.returncode == 3
    assert "non-finite loss at step" in result.stderr and "ckpt-10" in result.stderr
    assert len(error_lines(result.stderr)) == 1
    assert checkpoint_steps(model_dir) == [10]
    reader = tf.train.load_checkpoint(str(model_dir / "checkpoints" / "ckpt-10"))
    for name in reader.get_variable_to_shape_map():
        value = reader.get_tensor(name)
        if isinstance(value, np.ndarray) and value.dtype.kind == "f":
            assert np.isfinite(value).all(), name


def test_corrupt_shard_stops_with_the_file_named(data_dir, tmp_path):
    corrupt_dir = tmp_path / "data"
    shutil.copytree(data_dir, corrupt_dir)
    shard = sorted(glob.glob(f"{corrupt_dir}/pretrain_data.tfrecord*"))[0]
    size = os.path.getsize(shard)
    with open(shard, "r+b") as f:
        f.truncate(size - 100)  # cut inside the last record
    model_dir = tmp_path / "run"
    # A small shuffle buffer reads the shards gradually, so the cut is met mid-run.
    result = _run("electra_tf.run_pretraining",
                  *_flags(str(corrupt_dir), model_dir, 200, "--save_checkpoints_steps=5", "--shuffle_buffer=8"),
                  check=False)
    assert result.returncode == 1
    errors = error_lines(result.stderr)
    assert len(errors) == 1 and "corrupt or truncated TFRecord file" in errors[0] and shard in errors[0], errors
    assert checkpoint_steps(model_dir)  # what was trained before is kept


@pytest.mark.parametrize("extra,message", [
    (["--no_such_flag=1"], "no_such_flag"),
    (["--vocab_size=999"], "disagrees with"),
    (["--max_seq_length=32"], "built with 64"),
    (["--mask_prob=1.5"], "mask_prob"),
    (["--distribution_strategy=mirrored", "--num_cpu_devices=2", "--train_batch_size=7"], "not divisible"),
    (["--distribution_strategy=tpu"], "needs --tpu"),
])
def test_bad_flags_fail_fast_with_one_line(data_dir, tmp_path, extra, message):
    result = _run("electra_tf.run_pretraining", *_flags(data_dir, tmp_path / "run", 10), *extra, check=False)
    assert result.returncode != 0
    assert message in result.stderr
    assert len(error_lines(result.stderr)) == 1, result.stderr[-1500:]
    # Fast, however loaded the machine: refused before the run is recorded, let alone its step traced.
    run = tmp_path / "run"
    assert not (run / "run_config.json").exists() and not (run / "train").exists(), glob.glob(f"{run}/*")
    assert not glob.glob(str(run / "checkpoints" / "*"))


def test_missing_data_dir_and_resume_with_another_model_are_refused(data_dir, tmp_path):
    result = _run("electra_tf.run_pretraining", *_flags(str(tmp_path / "nowhere"), tmp_path / "run", 10), check=False)
    assert result.returncode == 2 and "is not a directory" in result.stderr
    model_dir = tmp_path / "run2"
    _run("electra_tf.run_pretraining", *_flags(data_dir, model_dir, 5, "--noexport_at_end"))
    result = _run("electra_tf.run_pretraining", *_flags(data_dir, model_dir, 10, "--hidden_size=128"), check=False)
    assert result.returncode == 2 and "another model config" in result.stderr
    assert checkpoint_steps(model_dir) == [5]
