"""Stopping and continuing run_finetuning: SIGTERM at start, mid-epoch and during the export, changed settings.

Every test compares with one uninterrupted two-trial run (`reference`), which also shows the end-of-run summary.
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
from conftest import SUBPROCESS_TIMEOUT, USER_ENV, Run, catches_sigterm, checkpoint_tensors, run_module, summary_scalars
from test_run_finetuning import BAD, GOOD

STEPS_PER_EPOCH = 38  # 1,200 examples in batches of 32
TOTAL = 2 * STEPS_PER_EPOCH


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("reviews")
    rows = {"train": [(t, "pos") for t in GOOD * 120] + [(t, "neg") for t in BAD * 120],
            "dev": [(t, "pos") for t in GOOD[:3]] + [(t, "neg") for t in BAD[:3]]}
    for split, examples in rows.items():
        (directory / f"{split}.tsv").write_text("review\tsentiment\n" + "".join(f"{t}\t{y}\n" for t, y in examples))
    (directory / "test.tsv").write_text("review\na great movie\nan awful film\nit was fine\n")
    return directory


def _flags(data_dir, model_dir, output_dir, *extra):
    return [f"--data_dir={data_dir}", "--text_a_column=review", "--label_column=sentiment",
            f"--init_checkpoint={model_dir}", f"--output_dir={output_dir}", "--max_seq_length=16",
            "--train_batch_size=32", "--eval_batch_size=4", "--num_train_epochs=2", "--learning_rate=3e-4",
            "--num_trials=2", "--log_every_steps=2", *extra]


@pytest.fixture(scope="module")
def reference(data_dir, finetuning_model_dir, tmp_path_factory):
    """An uninterrupted run: its output_dir and the process's result."""
    out = tmp_path_factory.mktemp("reference") / "out"
    result = run_module("electra_tf.run_finetuning", *_flags(data_dir, finetuning_model_dir, out), env=USER_ENV)
    return out, result


def _results(out):
    """eval_results.json without the entries that name paths."""
    results = json.loads((out / "eval_results.json").read_text())
    return {k: v for k, v in results.items() if k not in ("export", "predictions")}


def _best_checkpoint(trial_dir):
    (index,) = glob.glob(f"{trial_dir}/checkpoints/best-*.index")
    return index[:-len(".index")]


def test_a_run_is_quiet_notes_few_updates_and_ends_with_a_summary_of_files_that_exist(reference):
    out, result = reference
    assert result.stderr == ""  # no TensorFlow start-up messages, no retracing warnings
    lines = result.stdout.splitlines()
    assert ("note: 2 epochs of 38 batches are only 76 optimizer updates, and so few tend to underfit; "
            "--num_train_epochs=3 gives 114 (docs/finetuning/classification.md, \"Small data\")") in lines
    results = json.loads((out / "eval_results.json").read_text())
    chosen = results["predictions_from_trial"]
    trial = results["trials"][chosen - 1]
    assert lines[-5] == f"dev accuracy: median {results['accuracy']:.4f} over 2 trials (" + " ".join(
        f"{t['accuracy']:.4f}" for t in results["trials"]) + ")"
    assert lines[-4] == (f"selected trial {chosen} (seed {trial['seed']}), epoch {trial['epoch']} of 2, by dev "
                         f"accuracy {trial['accuracy']:.4f}: its weights made the predictions and the export")
    named = dict(line.split(": ", 1) for line in lines[-3:])
    assert named == {"results": str(out / "eval_results.json"), "predictions": str(out / "predictions" / "test.tsv"),
                     "export": str(out / "export")}
    assert all(os.path.exists(path) for path in named.values())
    assert results["predictions"] == [named["predictions"]] and results["export"] == named["export"]
    # A finished trial keeps its state and best weights only; its training state is gone.
    for k in (1, 2):
        state = json.loads((out / f"trial_{k}" / "trial_state.json").read_text())
        assert state["result"] == results["trials"][k - 1] and state["step"] == TOTAL
        assert not (out / f"trial_{k}" / "resume").exists()


def test_sigterm_at_start_mid_epoch_and_during_the_export_each_exit_0_and_the_run_ends_as_an_uninterrupted_one(
        data_dir, finetuning_model_dir, reference, tmp_path):
    ref, _ = reference
    out = tmp_path / "out"
    flags = _flags(data_dir, finetuning_model_dir, out)

    # At start: the handler is there before TensorFlow loads.
    run = Run(tmp_path, *flags, module="electra_tf.run_finetuning")
    deadline = time.monotonic() + SUBPROCESS_TIMEOUT
    while not catches_sigterm(run.process.pid) and time.monotonic() < deadline and run.process.poll() is None:
        time.sleep(0.005)
    with open(f"/proc/{run.process.pid}/maps") as f:
        assert "libtensorflow" not in f.read()
    run.process.send_signal(signal.SIGTERM)
    code, stdout, stderr = run.finish()
    assert code == 0, stderr[-2000:]
    assert stdout.strip() == ("stopped by SIGTERM before training started; nothing needed saving. "
                              "Re-run the same command to continue.")
    assert not out.exists()

    # In the middle of trial 2's first epoch.
    run = Run(tmp_path, *flags, module="electra_tf.run_finetuning")
    run.wait_for(rf"^trial 2/2 \(seed 1\)\n(.*\n)*?\d+/{TOTAL} steps", poll=0.005)
    run.process.send_signal(signal.SIGTERM)
    code, stdout, stderr = run.finish()
    assert code == 0, stderr[-2000:]
    stopped = re.search(rf"^stopped by SIGTERM in trial 2/2 at step (\d+) of {TOTAL}; its training state is saved in "
                        rf"(\S+). Re-run the same command to continue.$", stdout, re.M)
    assert stopped, stdout[-2000:]
    step = int(stopped.group(1))
    assert 0 < step < STEPS_PER_EPOCH, step
    assert stopped.group(2) == f"{out}/trial_2/resume/ckpt-{step}" and glob.glob(f"{stopped.group(2)}.index")
    trial_1 = sorted(glob.glob(f"{out}/trial_1/checkpoints/*")) + [f"{out}/trial_1/trial_state.json"]
    written = {path: os.stat(path).st_mtime_ns for path in trial_1}
    # As if the stopped invocation had trained trial 2 for 1,000 s more: the time must carry over.
    state_path = out / "trial_2" / "trial_state.json"
    state = json.loads(state_path.read_text())
    assert state["seconds"] > 0
    seconds_at_stop = state["seconds"] = state["seconds"] + 1000
    state_path.write_text(json.dumps(state))

    # During the export; the re-run continues trial 2 (trial 1 is not trained again).
    run = Run(tmp_path, *flags, module="electra_tf.run_finetuning")
    deadline = time.time() + SUBPROCESS_TIMEOUT
    while not glob.glob(f"{out}/.export.tmp-*"):
        assert run.process.poll() is None and time.time() < deadline, run.stdout()[-3000:]
        time.sleep(0.005)
    run.process.send_signal(signal.SIGTERM)
    code, stdout, stderr = run.finish()
    assert code == 0, stderr[-2000:]
    assert "trial 1/2 (seed 0) finished before: dev accuracy" in stdout
    assert f"continuing trial 2/2 from step {step} of {TOTAL} ({out}/trial_2/resume/ckpt-{step})" in stdout
    assert not glob.glob(f"{out}/.export.*")  # no partial export left
    # Mostly the signal interrupts the export; TensorFlow can hold the main thread until it is written.
    if "stopped by SIGTERM while writing the predictions and the export" in stdout:
        assert not (out / "eval_results.json").exists() and not (out / "export").exists()
        result = run_module("electra_tf.run_finetuning", *flags)
        assert "results: " in result.stdout
    else:
        assert "(stopped by SIGTERM as the run finished; everything above is written)" in stdout, stdout[-2000:]

    assert _results(out) == _results(ref)
    assert (out / "predictions" / "test.tsv").read_text() == (ref / "predictions" / "test.tsv").read_text()
    assert {path: os.stat(path).st_mtime_ns for path in trial_1} == written
    # The card's wall time adds up every invocation's training, not only the last one's.
    seconds = [json.loads((out / f"trial_{k}" / "trial_state.json").read_text())["seconds"] for k in (1, 2)]
    assert seconds[1] > seconds_at_stop
    assert json.loads((out / "export" / "finetuning_config.json").read_text())["wall_seconds"] >= sum(seconds)
    for k in (1, 2):
        tensors = checkpoint_tensors(_best_checkpoint(out / f"trial_{k}"))
        expected = checkpoint_tensors(_best_checkpoint(ref / f"trial_{k}"))
        assert sorted(tensors) == sorted(expected)
        for name, value in expected.items():
            assert np.array_equal(tensors[name], value), name
    # The running training loss across the stop is the uninterrupted run's, each step logged once.
    losses = summary_scalars(out / "trial_2", "loss/train")
    assert losses == summary_scalars(ref / "trial_2", "loss/train")
    assert sorted(losses) == list(range(2, TOTAL + 1, 2))


def _copy(ref, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(ref, out)
    return out


def test_a_finished_run_needs_overwrite(data_dir, finetuning_model_dir, reference, tmp_path):
    out = _copy(reference[0], tmp_path)
    result = run_module("electra_tf.run_finetuning", *_flags(data_dir, finetuning_model_dir, out), check=False)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"error: --output_dir {out} already holds the results of a finished run (eval_results.json, export, "
        "finetuning_config.json, predictions); pass --overwrite to replace them or choose another directory"]


def test_an_unfinished_run_with_other_settings_is_refused_naming_them(data_dir, finetuning_model_dir, reference,
                                                                     tmp_path):
    out = _copy(reference[0], tmp_path)
    os.remove(out / "eval_results.json")  # as a run stopped during its export leaves it
    before = {path: os.stat(path).st_mtime_ns for path in glob.glob(f"{out}/**", recursive=True)}
    flags = _flags(data_dir, finetuning_model_dir, out, "--learning_rate=1e-3", "--seed=5")
    result = run_module("electra_tf.run_finetuning", *flags, check=False)
    assert result.returncode == 2, result.stderr[-2000:]
    (line,) = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert line == (f"error: --output_dir {out} holds an unfinished run with other settings (--learning_rate recorded "
                    "0.0003, now 0.001; --seed recorded 0, now 5); re-run with the recorded values to continue it, or "
                    "pass --overwrite to start over")
    assert {path: os.stat(path).st_mtime_ns for path in glob.glob(f"{out}/**", recursive=True)} == before
