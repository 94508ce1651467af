import glob
import json
import os
import re
import signal
import subprocess
import sys
import time

# The environment the command-line tools give themselves (electra_tf.utils.cli), set before TF loads.
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLI_ENV = dict(os.environ)
# A user's shell: TensorFlow's log level not set, so the tools choose it (electra_tf.utils.cli). For tests
# that the tools are quiet; with CLI_ENV's level 2, TensorFlow's own error-level notices would show.
USER_ENV = {k: v for k, v in CLI_ENV.items() if k != "TF_CPP_MIN_LOG_LEVEL"}

# The time limit of every subprocess a test starts: it catches a hang, it does not measure speed. On a
# 2-core machine shared with other jobs (load average 5-15) a tiny run's few seconds become minutes.
SUBPROCESS_TIMEOUT = 900

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _float32_policy():
    """Every test starts in float32 and cannot leak a mixed policy into the next."""
    keras.mixed_precision.set_dtype_policy("float32")
    yield
    keras.mixed_precision.set_dtype_policy("float32")


def random_batch(config, batch_size, seed=0, min_len=None):
    """A batch shaped like packed pre-training data: [CLS] A [SEP] B [SEP] + padding."""
    rng = np.random.RandomState(seed)
    seq = config.max_seq_length
    first_id = max(config.pad_id, config.unk_id, config.cls_id, config.sep_id, config.mask_id) + 1
    ids = rng.randint(first_id, config.vocab_size, (batch_size, seq)).astype("int32")
    mask = np.zeros_like(ids)
    segments = np.zeros_like(ids)
    for row in range(batch_size):
        length = rng.randint(min_len or 8, seq + 1)
        split = rng.randint(2, length - 1)
        ids[row, 0] = config.cls_id
        ids[row, split] = config.sep_id
        ids[row, length - 1] = config.sep_id
        ids[row, length:] = config.pad_id
        mask[row, :length] = 1
        segments[row, split + 1:length] = 1
    return {"input_ids": ids, "input_mask": mask, "segment_ids": segments}


def run_module(module, *args, timeout=SUBPROCESS_TIMEOUT, check=True, env=None):
    """Runs `python -m module args` from the repository root, as a user would."""
    result = subprocess.run([sys.executable, "-m", module, *map(str, args)], env=env or CLI_ENV, cwd=ROOT,
                            capture_output=True, text=True, timeout=timeout)
    if check and result.returncode:
        raise AssertionError(
            f"{module} failed ({result.returncode}):\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return result


@pytest.fixture(scope="session")
def pretraining_data(tmp_path_factory):
    """TFRecords (seq 64, 2 shards) from the first 300 documents of the demo corpus."""
    root = tmp_path_factory.mktemp("pretraining_data")
    text = root / "wiki.txt"
    run_module("data_prep.export_corpus", f"--output={text}", "--max_documents=300")
    run_module("data_prep.build_vocab", f"--input={text}", "--vocab_size=1500", f"--output={root / 'vocab.txt'}")
    run_module("data_prep.build_pretraining_dataset", f"--input={text}", f"--vocab_file={root / 'vocab.txt'}",
               f"--output_dir={root / 'data'}", "--max_seq_length=64", "--num_out_files=2")
    return str(root / "data")


# Words of the fine-tuning tests' sentences; every piece of them is in the tiny vocabulary below.
FINETUNING_WORDS = ("a the film movie is was great fine lovely good bad dull awful boring it and very not of "
                    "cat sat on mat dog ran he left went away").split()


@pytest.fixture(scope="session")
def finetuning_model_dir(tmp_path_factory):
    """A tiny pre-training model_dir (run_config.json, vocab.txt, checkpoints/ckpt-7, export/discriminator).

    Written as run_pretraining and convert_checkpoint write one, with random weights: the fine-tuning
    tests need the layout and exact weights to compare, not a trained model.
    """
    import string

    import tensorflow as tf

    from electra_tf import ElectraConfig, ElectraPretrainer
    from electra_tf.serving.savedmodel import export_pretrainer
    from electra_tf.text.vocab import RESERVED_TOKENS, special_token_ids
    from electra_tf.training import run_state

    root = tmp_path_factory.mktemp("finetuning_model")
    vocab_file = root / "vocab.txt"
    pieces = list(RESERVED_TOKENS) + list(string.ascii_lowercase + string.punctuation)
    pieces += ["##" + c for c in string.ascii_lowercase] + list(FINETUNING_WORDS)
    vocab_file.write_text("\n".join(dict.fromkeys(pieces)) + "\n", encoding="utf-8")
    config = ElectraConfig.for_size("tiny", **special_token_ids(str(vocab_file)))
    keras.utils.set_random_seed(3)
    pretrainer = ElectraPretrainer(config)
    model_dir = root / "model"
    state = run_state.start_or_check(str(model_dir), config, str(vocab_file), True)
    tf.train.CheckpointManager(tf.train.Checkpoint(model=pretrainer), state.checkpoint_dir,
                               max_to_keep=1).save(checkpoint_number=7)
    export_pretrainer(pretrainer, state.vocab_file, str(model_dir / "export"), True)
    return str(model_dir)


def pretraining_flags(data_dir, model_dir, steps, *extra):
    """run_pretraining flags for a tiny model on the `pretraining_data` fixture's data."""
    return [f"--data_dir={data_dir}", f"--model_dir={model_dir}", "--model_size=tiny", "--max_seq_length=64",
            "--train_batch_size=8", f"--num_train_steps={steps}", "--num_warmup_steps=5", "--learning_rate=1e-3",
            "--steps_per_loop=5", "--save_checkpoints_steps=10", "--log_every_steps=5",
            "--example_every_steps=10", *extra]


def error_lines(stderr):
    # TF's C++ start-up messages reach stderr whatever the log level; ours start with "error:".
    return [line for line in stderr.splitlines() if line.startswith(("error:", "FATAL", "ERROR"))]


def checkpoint_steps(model_dir):
    """Steps of the checkpoints in model_dir that have an index file."""
    return sorted(int(p.rsplit("-", 1)[1].split(".")[0]) for p in glob.glob(f"{model_dir}/checkpoints/ckpt-*.index"))


def summary_steps(model_dir):
    """{tag: [step, ...]} over every TensorBoard event file of the run, in file order."""
    import tensorflow as tf

    tags = {}
    for path in sorted(glob.glob(f"{model_dir}/train/events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                tags.setdefault(value.tag, []).append(event.step)
    return tags


def summary_scalars(model_dir, tag):
    """{step: value} of one TensorBoard scalar of the run."""
    import tensorflow as tf

    values = {}
    for path in sorted(glob.glob(f"{model_dir}/train/events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                if value.tag == tag:
                    values[event.step] = float(tf.make_ndarray(value.tensor))
    return values


class Run:
    """A tool (run_pretraining unless `module` says) in the background, its output in files, to signal or kill."""

    def __init__(self, tmp_path, *flags, module="electra_tf.run_pretraining", env=None):
        self.stdout_path = tmp_path / f"stdout-{time.monotonic_ns()}.txt"
        self.stderr_path = self.stdout_path.with_suffix(".err")
        with open(self.stdout_path, "w") as out, open(self.stderr_path, "w") as err:
            self.process = subprocess.Popen([sys.executable, "-m", module, *map(str, flags)],
                                            env=env or CLI_ENV, cwd=ROOT, stdout=out, stderr=err)

    def stdout(self):
        return self.stdout_path.read_text()

    def wait_for(self, pattern, timeout=SUBPROCESS_TIMEOUT, poll=0.05):
        """Waits until stdout matches `pattern` (a regex); fails if the process ends first."""
        deadline = time.time() + timeout
        while not re.search(pattern, self.stdout(), re.M):
            assert self.process.poll() is None, \
                f"ended before {pattern!r}:\n{self.stdout()}\n{self.stderr_path.read_text()[-2000:]}"
            assert time.time() < deadline, f"no {pattern!r} in {timeout} s:\n{self.stdout()}"
            time.sleep(poll)

    def cpu_seconds(self):
        fields = open(f"/proc/{self.process.pid}/stat").read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def wait_for_cpu(self, seconds):
        """Waits until the process has used `seconds` more CPU time: progress that does not depend on the load."""
        target = self.cpu_seconds() + seconds
        while self.cpu_seconds() < target:
            assert self.process.poll() is None, self.stdout()
            time.sleep(0.05)

    def finish(self, timeout=SUBPROCESS_TIMEOUT):
        try:
            self.process.wait(timeout=timeout)
        finally:
            self.process.kill()
            self.process.wait()
        return self.process.returncode, self.stdout(), self.stderr_path.read_text()


def catches_sigterm(pid):
    """Whether the process has a handler for SIGTERM (its SigCgt mask in /proc)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            caught = next(line for line in f if line.startswith("SigCgt:"))
    except (FileNotFoundError, StopIteration):
        return False
    return bool(int(caught.split()[1], 16) >> (signal.SIGTERM - 1) & 1)


def finetuning_stopped_and_continued(tmp_path, flags):
    """run_finetuning with `flags(output_dir)`: once uninterrupted, once stopped by SIGTERM after its first step and
    run again. Checks the stop's message and the continuation's; returns the two output directories.

    For a single-trial run; the caller compares what the task writes.
    """
    reference, out = tmp_path / "reference", tmp_path / "out"
    run_module("electra_tf.run_finetuning", *flags(reference))
    total = json.loads((reference / "trial_state.json").read_text())["step"]
    run = Run(tmp_path, *flags(out), module="electra_tf.run_finetuning")
    run.wait_for(rf"^[1-9]\d*/{total} steps", poll=0.005)
    run.process.send_signal(signal.SIGTERM)
    code, stdout, stderr = run.finish()
    assert code == 0, stderr[-2000:]
    stopped = re.search(rf"^stopped by SIGTERM at step (\d+) of {total}; its training state is saved in (\S+)\. "
                        "Re-run the same command to continue.$", stdout, re.M)
    assert stopped, stdout[-2000:]
    step = int(stopped.group(1))
    assert 0 < step < total and not (out / "eval_results.json").exists()
    result = run_module("electra_tf.run_finetuning", *flags(out))
    assert f"continuing from step {step} of {total} ({stopped.group(2)})" in result.stdout
    paths = ("predictions", "export")
    assert ({k: v for k, v in json.loads((out / "eval_results.json").read_text()).items() if k not in paths}
            == {k: v for k, v in json.loads((reference / "eval_results.json").read_text()).items() if k not in paths})
    weights = [checkpoint_tensors(glob.glob(f"{d}/checkpoints/best-*.index")[0][:-len(".index")])
               for d in (out, reference)]
    assert sorted(weights[0]) == sorted(weights[1])
    for name, value in weights[1].items():
        assert np.array_equal(weights[0][name], value), name
    return reference, out


def checkpoint_tensors(prefix):
    """{name: value} of every variable in a checkpoint."""
    import tensorflow as tf

    reader = tf.train.load_checkpoint(str(prefix))
    return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()
            if name != "_CHECKPOINTABLE_OBJECT_GRAPH"}


def assert_finetuned_card(output_dir, labels=None):
    """The fine-tuned export's model card states what the run recorded: task, labels, size, time, dev metrics."""
    import json

    from electra_tf.serving import model_card

    card = (output_dir / "export" / "README.md").read_text(encoding="utf-8")
    record = json.loads((output_dir / "export" / "finetuning_config.json").read_text())
    results = json.loads((output_dir / "eval_results.json").read_text())
    exported = results["trials"][results.get("predictions_from_trial", 1) - 1]
    assert f"- Task: `{results['task']}`" in card
    assert f"- Training examples: {record['train_examples']:,}" in card and f"- Updates: {record['updates']:,} " in card
    assert record["wall_seconds"] > 0 and f"- Wall time: {record['wall_seconds']:,.0f} s" in card
    assert record["dev_metrics"] and record["hardware"] in card
    for name, value in record["dev_metrics"].items():
        assert value == exported[name] and f"| {name} | {value:.4g} |" in card
    if labels is not None:
        assert f"({len(labels)}): {', '.join(labels)}" in card
    assert "tf.saved_model.load" in card and "--to_hf=hf_model" in card and "--to_keras_hub" in card
    # Whether the whole model converts to transformers depends on its head; the card says which.
    option = model_card.converts_to_transformers("classifier" if "text classifier" in card else "answerer"
                                                 if "question answerer" in card else "tagger", record)
    assert (f"fine-tune with `{option}`" in card) if option else ("--model_dir=<output_dir> --to_hf" in card)


# The longest files first: `make test` gives each of its two processes a file at a time (pytest-xdist,
# --dist loadfile), and a long file handed out last would run alone at the end.
LONGEST_FIRST = ("test_sample_efficiency.py", "test_resume.py", "test_run_pretraining.py", "test_run_finetuning.py",
                 "test_finetuning_qa.py", "test_finetuning_resume.py", "test_convert_finetuned.py",
                 "test_first_run.py", "test_finetuned_from_transformers.py", "test_objectives.py")


def pytest_collection_modifyitems(items):
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: each file keeps its order
