"""Stopping and resuming run_pretraining as an operator meets it: kills, preemption, damage, changed flags.

Every test resumes from a copy of one finished 30-step run (`reference`), so each costs one or two starts.
"""

import glob
import json
import os
import re
import shutil
import signal
import time

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_text  # noqa: F401  (registers the ops the exported serve_text uses)
from conftest import (
    SUBPROCESS_TIMEOUT,
    Run,
    catches_sigterm,
    checkpoint_steps,
    checkpoint_tensors,
    error_lines,
    pretraining_flags,
    run_module,
    summary_steps,
)

from electra_tf.training import run_state


@pytest.fixture(scope="module")
def data_dir(pretraining_data):
    return pretraining_data


@pytest.fixture(scope="module")
def reference(data_dir, tmp_path_factory):
    """An uninterrupted 30-step run (checkpoints at 10, 20, 30, exported at the end)."""
    model_dir = tmp_path_factory.mktemp("reference") / "run"
    run_module("electra_tf.run_pretraining", *pretraining_flags(data_dir, model_dir, 30))
    return model_dir


def _copy(reference, tmp_path):
    model_dir = tmp_path / "run"
    shutil.copytree(reference, model_dir)
    return model_dir


def _assert_bit_identical(prefix, expected_prefix):
    values, expected = checkpoint_tensors(prefix), checkpoint_tensors(expected_prefix)
    assert sorted(values) == sorted(expected)
    assert any("dropout_seeds" in name for name in values)  # dropout's generator state resumes too
    for name, value in expected.items():
        assert np.array_equal(values[name], value), name


def _listed(model_dir):
    with open(model_dir / "checkpoints" / "checkpoint") as f:
        return re.findall(r'^all_model_checkpoint_paths: "([^"]+)"', f.read(), re.M)


def test_kills_at_several_moments_end_bit_identical_to_an_uninterrupted_run(data_dir, reference, tmp_path):
    model_dir = tmp_path / "run"
    flags = pretraining_flags(data_dir, model_dir, 30, "--noexport_at_end")
    # Right after the progress line of step 10, the run is writing summaries and checkpoint 10.
    run = Run(tmp_path, *flags)
    run.wait_for(r"^10/30 steps")
    run.process.send_signal(signal.SIGKILL)
    run.finish()
    # During start-up.
    run = Run(tmp_path, *flags)
    run.wait_for_cpu(1.0)
    run.process.send_signal(signal.SIGKILL)
    run.finish()
    # In the middle of the steps after a resume.
    run = Run(tmp_path, *flags)
    run.wait_for(r"^(15|25)/30 steps")
    run.process.send_signal(signal.SIGKILL)
    run.finish()
    code, stdout, stderr = Run(tmp_path, *flags).finish()
    assert code == 0, stderr[-2000:]
    assert "trained to step 30" in stdout
    _assert_bit_identical(model_dir / "checkpoints" / "ckpt-30", reference / "checkpoints" / "ckpt-30")
    assert not glob.glob(f"{model_dir}/checkpoints/*_temp")
    assert all(step in checkpoint_steps(model_dir) for step in (int(n.split("-")[1]) for n in _listed(model_dir)))


def test_damaged_and_half_written_run_dir_is_repaired_before_resuming(data_dir, reference, tmp_path):
    model_dir = _copy(reference, tmp_path)
    checkpoints = model_dir / "checkpoints"
    os.remove(checkpoints / "ckpt-30.index")  # the latest is damaged; ckpt-20 beside it is whole
    (checkpoints / "ckpt-30_temp").mkdir()  # an interrupted save
    (checkpoints / "ckpt-30_temp" / "part-00000-of-00001.data-00000-of-00001").write_bytes(b"x" * 100_000)
    (model_dir / "export" / ".discriminator.tmp-k1ll3d").mkdir()  # an interrupted export
    # A kill during the checkpoint manager's clean-up leaves the list naming a deleted checkpoint.
    state = (checkpoints / "checkpoint").read_text()
    (checkpoints / "checkpoint").write_text(state.replace('all_model_checkpoint_paths: "ckpt-10"',
                                                          'all_model_checkpoint_paths: "ckpt-5"\n'
                                                          'all_model_checkpoint_paths: "ckpt-10"')
                                            .replace("all_model_checkpoint_timestamps:",
                                                     "all_model_checkpoint_timestamps: 1.0\n"
                                                     "all_model_checkpoint_timestamps:", 1))
    assert "ckpt-5" in _listed(model_dir)

    result = run_module("electra_tf.run_pretraining", *pretraining_flags(data_dir, model_dir, 30, "--noexport_at_end"))
    out = result.stdout
    removed = next(line for line in out.splitlines() if line.startswith("removed what an interrupted run left"))
    assert "checkpoints/ckpt-30_temp (0.1 MB)" in removed and "export/.discriminator.tmp-k1ll3d" in removed
    warning = next(line for line in out.splitlines() if line.startswith("warning: cannot read"))
    assert "ckpt-30 (ckpt-30.index is missing)" in warning and "resuming from ckpt-20" in warning
    assert "dropped ckpt-5 (files gone)" in out
    assert re.search(r"resuming from \S+ckpt-20 at step 20", out)
    assert os.listdir(model_dir / "export") == ["discriminator"]
    assert not glob.glob(f"{checkpoints}/*_temp")
    assert _listed(model_dir) == ["ckpt-10", "ckpt-20", "ckpt-30"]
    # Steps 21-30 were logged by the first run and again now: TensorBoard must see each once.
    for tag, steps in summary_steps(model_dir).items():
        assert len(steps) == len(set(steps)), (tag, steps)
    assert summary_steps(model_dir)["loss/total"] == [5, 10, 15, 20, 25, 30]
    _assert_bit_identical(checkpoints / "ckpt-30", reference / "checkpoints" / "ckpt-30")


def test_no_readable_checkpoint_is_one_line_naming_the_files(data_dir, reference, tmp_path):
    model_dir = _copy(reference, tmp_path)
    for index in glob.glob(f"{model_dir}/checkpoints/*.index"):
        os.remove(index)
    result = run_module("electra_tf.run_pretraining", *pretraining_flags(data_dir, model_dir, 40), check=False)
    assert result.returncode == 2
    (line,) = error_lines(result.stderr)
    assert "no checkpoint in" in line and "move" in line and "away" in line
    for step in (10, 20, 30):
        assert f"ckpt-{step} (ckpt-{step}.index is missing)" in line
    assert glob.glob(f"{model_dir}/checkpoints/ckpt-30.data-*")  # nothing deleted


def test_changed_batch_size_is_refused_unless_allowed(data_dir, reference, tmp_path):
    model_dir = _copy(reference, tmp_path)
    flags = pretraining_flags(data_dir, model_dir, 35, "--train_batch_size=16")
    result = run_module("electra_tf.run_pretraining", *flags, check=False)
    assert result.returncode == 2
    (line,) = error_lines(result.stderr)
    assert "--train_batch_size recorded 8, now 16" in line and "--allow_changed_settings" in line
    assert checkpoint_steps(model_dir) == [10, 20, 30]

    result = run_module("electra_tf.run_pretraining", *flags, "--allow_changed_settings", "--noexport_at_end")
    assert "warning: continuing from step 30 with changed settings (--train_batch_size recorded 8, now 16)" \
        in result.stdout
    assert checkpoint_steps(model_dir) == [10, 20, 30, 35]
    recorded = json.loads((model_dir / "run_config.json").read_text())
    assert recorded["data_order"]["train_batch_size"] == 16
    assert recorded["changes"] == [{"step": 30, "settings": {"--train_batch_size": [8, 16]}}]


def _start(model_dir, vocab, config, trained_step=10, allow=False, **order):
    defaults = dict(train_batch_size=8, gradient_accumulation_steps=1, shuffle_buffer=100, seed=config.seed)
    data = os.path.dirname(vocab)
    return run_state.start_or_check(str(model_dir), config, vocab, True, trained_step=trained_step,
                                    data_order=run_state.data_order(data, {}, **{**defaults, **order}),
                                    allow_changed=allow)


@pytest.fixture
def vocab_and_config(tmp_path):
    from electra_tf.modeling.config import ElectraConfig

    vocab = tmp_path / "data" / "vocab.txt"
    vocab.parent.mkdir()
    vocab.write_text("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nthe\n")
    (tmp_path / "data" / "pretrain_data.tfrecord-0-of-1").write_bytes(b"records")
    return str(vocab), ElectraConfig.for_size("tiny", vocab_size=6, unk_id=1, cls_id=2, sep_id=3, mask_id=4)


def test_changed_seed_data_and_masking_are_refused_naming_each(vocab_and_config, tmp_path):
    vocab, config = vocab_and_config
    _start(tmp_path / "run", vocab, config)
    with pytest.raises(ValueError) as refused:
        _start(tmp_path / "run", vocab, config.replace(seed=1, mask_prob=0.2), gradient_accumulation_steps=2)
    message = str(refused.value)
    assert "\n" not in message
    for part in ("--mask_prob recorded 0.15, now 0.2", "--gradient_accumulation_steps recorded 1, now 2",
                 "--seed recorded 0, now 1", "from step 10 on"):
        assert part in message
    (tmp_path / "data" / "pretrain_data.tfrecord-0-of-1").write_bytes(b"other records")
    with pytest.raises(ValueError, match="--data_dir recorded"):
        _start(tmp_path / "run", vocab, config)
    state = _start(tmp_path / "run", vocab, config.replace(seed=1), allow=True)
    assert run_state.load(str(tmp_path / "run")).data_order["seed"] == 1 == state.config.seed
    with pytest.raises(ValueError, match="another model config"):  # the architecture never changes
        _start(tmp_path / "run", vocab, config.replace(hidden_size=128, seed=1), allow=True)


def test_settings_unknown_or_untrained_are_recorded(vocab_and_config, tmp_path):
    vocab, config = vocab_and_config
    # A converted checkpoint (and a run older than data_order) records no data settings.
    run_state.start_or_check(str(tmp_path / "run"), config, vocab, True)
    assert run_state.load(str(tmp_path / "run")).data_order is None
    notes = []
    run_state.start_or_check(str(tmp_path / "run"), config.replace(seed=3), vocab, True, trained_step=1000,
                             data_order=run_state.data_order(str(tmp_path / "data"), {}, train_batch_size=64,
                                                             gradient_accumulation_steps=1, shuffle_buffer=10,
                                                             seed=3), report=notes.append)
    assert run_state.load(str(tmp_path / "run")).data_order["train_batch_size"] == 64
    assert "did not record its data order" in notes[0]
    # Nothing trained yet: nothing depends on the old settings.
    _start(tmp_path / "run", vocab, config, trained_step=0, train_batch_size=32)
    assert run_state.load(str(tmp_path / "run")).data_order["train_batch_size"] == 32


def test_sigterm_in_the_first_second_exits_0(data_dir, tmp_path):
    # The signal goes the moment the handler exists: what remains before it is the interpreter's own
    # start-up, which no Python code can shorten (and which a loaded machine may stretch past 0.5 s).
    run = Run(tmp_path, *pretraining_flags(data_dir, tmp_path / "run", 10))
    deadline = time.monotonic() + SUBPROCESS_TIMEOUT
    while not catches_sigterm(run.process.pid) and time.monotonic() < deadline and run.process.poll() is None:
        time.sleep(0.005)
    with open(f"/proc/{run.process.pid}/maps") as f:
        assert "libtensorflow" not in f.read()  # installed before the seconds TensorFlow takes to load
    run.process.send_signal(signal.SIGTERM)
    code, stdout, stderr = run.finish()
    assert code == 0, stderr[-2000:]
    assert stdout.strip() == ("stopped by SIGTERM before training started; nothing needed saving. "
                              "Re-run the same command to continue.")


def test_sigterm_stops_inside_a_long_loop_with_a_checkpoint(data_dir, reference, tmp_path):
    model_dir = _copy(reference, tmp_path)
    # One loop of 100,000 steps: only a check inside the compiled loop can stop it early.
    run = Run(tmp_path, *pretraining_flags(data_dir, model_dir, 100_000, "--steps_per_loop=100000",
                                           "--save_checkpoints_steps=100000", "--noexport_at_end"))
    run.wait_for(r"^built the training loop")
    run.wait_for_cpu(3.0)
    run.process.send_signal(signal.SIGTERM)
    code, stdout, stderr = run.finish()
    assert code == 0, stderr[-2000:]
    step = int(re.search(r"stopped by SIGTERM at step (\d+); checkpoint written", stdout).group(1))
    assert 30 < step < 100_000
    assert checkpoint_steps(model_dir)[-1] == step
    resumed = run_module("electra_tf.run_pretraining",
                         *pretraining_flags(data_dir, model_dir, step + 5, "--noexport_at_end"))
    assert f"at step {step}" in resumed.stdout and f"trained to step {step + 5}" in resumed.stdout


def test_sigterm_during_the_export_keeps_the_previous_export(data_dir, reference, tmp_path):
    model_dir = _copy(reference, tmp_path)
    export = model_dir / "export" / "discriminator"
    before = (export / "saved_model.pb").read_bytes()
    # The run is finished, so re-running it only exports again.
    run = Run(tmp_path, *pretraining_flags(data_dir, model_dir, 30))
    deadline = time.time() + SUBPROCESS_TIMEOUT
    while not glob.glob(f"{model_dir}/export/.discriminator.tmp-*"):
        assert run.process.poll() is None and time.time() < deadline, run.stdout()
        time.sleep(0.01)
    run.process.send_signal(signal.SIGTERM)
    code, stdout, stderr = run.finish()
    assert code == 0, stderr[-2000:]
    assert os.listdir(model_dir / "export") == ["discriminator"]  # no staging directory left behind
    # Mostly the signal interrupts the export and the previous one stays. TensorFlow can hold the main
    # thread until the export is written; then the new one is whole, and the run says so.
    if "stopped by SIGTERM during the export" in stdout:
        assert (export / "saved_model.pb").read_bytes() == before
    else:
        assert "stopped by SIGTERM as the export finished" in stdout, stdout[-2000:]
    assert "serving_default" in tf.saved_model.load(str(export)).signatures
