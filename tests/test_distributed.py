"""Topology independence: one device, two replicas, two workers and gradient accumulation agree (through the CLI)."""

import glob
import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest
from conftest import CLI_ENV, ROOT, SUBPROCESS_TIMEOUT


def _free_ports(n):
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def _worker_envs(ports):
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    return [{**CLI_ENV, "TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}})}
            for i in range(len(ports))]


def _run_workers(commands, envs, timeout=SUBPROCESS_TIMEOUT):
    """Starts one process per worker, waits for all, and always reaps them."""
    processes = [subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for cmd, env in zip(commands, envs)]
    try:
        outputs = [p.communicate(timeout=timeout) for p in processes]
    finally:
        for p in processes:
            p.kill()
            p.wait()
    return [(p.returncode, out, err) for p, (out, err) in zip(processes, outputs)]


def _checkpoint_values(model_dir):
    import tensorflow as tf

    reader = tf.train.load_checkpoint(os.path.join(model_dir, "checkpoints"))
    # Model variables are stored once, under the optimizer that tracks them, beside its slots.
    return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()
            if name.startswith("optimizer/")}


def test_run_pretraining_on_real_data_matches_across_topologies(pretraining_data, tmp_path):
    """Two workers, two replicas, one device and accumulation train on the same TFRecord batches to the same weights.

    With dropout: its masks, like masking and sampling, are keyed by the example's place in the global batch.
    """
    flags = [f"--data_dir={pretraining_data}", "--model_size=tiny", "--max_seq_length=64", "--train_batch_size=8",
             "--num_train_steps=10", "--num_warmup_steps=2", "--steps_per_loop=5", "--save_checkpoints_steps=5",
             "--log_every_steps=5", "--hidden_dropout_prob=0.1", "--attention_probs_dropout_prob=0.1"]
    command = [sys.executable, "-m", "electra_tf.run_pretraining", *flags]
    model_dir = tmp_path / "two_workers"
    worker = command + [f"--model_dir={model_dir}", "--distribution_strategy=multi_worker_mirrored"]
    results = _run_workers([worker] * 2, _worker_envs(_free_ports(2)))
    for code, out, err in results:
        assert code == 0, err[-3000:]
        assert "trained to step 10" in out
    assert "exported the discriminator" in results[0][1] and "exported" not in results[1][1]
    assert sorted(os.listdir(model_dir)) == ["checkpoints", "export", "run_config.json", "train",
                                             "training_record.json", "vocab.txt"]
    assert len(glob.glob(f"{model_dir}/train/events.out.tfevents.*")) == 1
    assert len(glob.glob(f"{model_dir}/checkpoints/ckpt-*.index")) == 2

    # One device, two replicas, and one device accumulating two micro-batches per update, side by side (each
    # spends most of its time starting).
    setups = {"one_device": [], "mirrored": [], "accumulated": ["--gradient_accumulation_steps=2"]}
    runs = [subprocess.Popen(command + [f"--model_dir={tmp_path / name}", "--num_cpu_devices=2", "--noexport_at_end",
                                        f"--distribution_strategy={'mirrored' if name == 'mirrored' else 'one_device'}",
                                        *extra],
                             env=CLI_ENV, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for name, extra in setups.items()]
    try:
        for run in runs:
            _, err = run.communicate(timeout=SUBPROCESS_TIMEOUT)
            assert run.returncode == 0, err[-3000:]
    finally:
        for run in runs:
            run.kill()
            run.wait()
    alone = _checkpoint_values(tmp_path / "one_device")
    assert len(alone) > 100
    for other in [model_dir, tmp_path / "mirrored", tmp_path / "accumulated"]:
        values = _checkpoint_values(other)
        assert sorted(values) == sorted(alone)
        for name, value in alone.items():
            np.testing.assert_allclose(values[name], value, atol=1e-5, rtol=0, err_msg=f"{other}: {name}")


def test_input_is_split_between_workers_without_overlap(pretraining_data):
    import tensorflow as tf

    from electra_tf.data.input_pipeline import make_pretraining_dataset

    pattern = os.path.join(pretraining_data, "pretrain_data.tfrecord*")
    seen = []
    for worker in range(2):
        context = tf.distribute.InputContext(num_input_pipelines=2, input_pipeline_id=worker, num_replicas_in_sync=2)
        data = make_pretraining_dataset(pattern, 1, 64, input_context=context, shuffle=False, repeat=False)
        seen.append([tuple(b["input_ids"].numpy()[0]) for b in data])
    everything = [tuple(b["input_ids"].numpy()[0])
                  for b in make_pretraining_dataset(pattern, 1, 64, shuffle=False, repeat=False)]
    assert not set(seen[0]) & set(seen[1])
    assert sorted(seen[0] + seen[1]) == sorted(everything)


def test_tpu_strategy_is_built_from_the_flags(monkeypatch):
    import tensorflow as tf

    from electra_tf.training import strategies

    calls = []

    class FakeResolver:
        def __init__(self, tpu):
            calls.append(("resolver", tpu))

    monkeypatch.setattr(tf.distribute.cluster_resolver, "TPUClusterResolver", FakeResolver)
    monkeypatch.setattr(tf.config, "experimental_connect_to_cluster", lambda r: calls.append(("connect", r)))
    monkeypatch.setattr(tf.tpu.experimental, "initialize_tpu_system", lambda r: calls.append(("initialize", r)))
    monkeypatch.setattr(tf.distribute, "TPUStrategy", lambda r: ("strategy", r))
    strategy = strategies.make_strategy("tpu", tpu="my-tpu")
    assert calls[0] == ("resolver", "my-tpu")
    resolver = strategy[1]
    assert calls[1:] == [("connect", resolver), ("initialize", resolver)]
    with pytest.raises(ValueError, match="needs --tpu"):
        strategies.make_strategy("tpu")


def test_multi_worker_cluster_comes_from_tf_config_or_slurm(monkeypatch):
    import tensorflow as tf

    from electra_tf.training import strategies

    monkeypatch.delenv("TF_CONFIG", raising=False)
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    with pytest.raises(ValueError, match="set TF_CONFIG"):
        strategies.cluster_resolver()
    monkeypatch.setenv("TF_CONFIG", "{not json")
    with pytest.raises(ValueError, match="TF_CONFIG is not valid JSON"):
        strategies.cluster_resolver()
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": {"worker": ["127.0.0.1:1"]},
                                                "task": {"type": "worker", "index": 0}}))
    assert isinstance(strategies.cluster_resolver(), tf.distribute.cluster_resolver.TFConfigClusterResolver)
    monkeypatch.delenv("TF_CONFIG")
    monkeypatch.setenv("SLURM_JOB_ID", "42")
    monkeypatch.setattr(tf.distribute.cluster_resolver, "SlurmClusterResolver", lambda: "slurm")
    assert strategies.cluster_resolver() == "slurm"
