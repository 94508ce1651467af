r"""Data preparation benchmark: our builder beside the original, and the reader.

    .venv/bin/python bench/bench_data_prep.py \
        --original_dir /path/to/google-research/electra --workdir /tmp/bench_data

Measures, on the demo corpus and this machine, in one run:
  * build throughput of google-research/electra's build_pretraining_dataset.py
    and of ours with 1 and 2 processes. Throughput is marginal: corpus MB /
    (wall time on the corpus - wall time on a one-document input), each the
    fastest of --repeats interleaved runs, so the fixed start-up (importing
    TF) counts for neither tool; raw wall and CPU times are printed too;
  * padding fraction of both packing modes;
  * that our default mode reproduces the original's examples when both draw
    from the same random stream (same seed, one work block);
  * tokenizer parity with the `tokenizers` package on every corpus line;
  * reader batches/s (batch 128, seq 128).
"""

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
CORPUS_MB = None


def _run(cmd, cwd=REPO):
    """Runs a command; returns (wall seconds, CPU seconds of the child)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.monotonic()
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    result = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True,
                            text=True)
    wall = time.monotonic() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{result.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def _repeated_corpus(corpus, workdir, copies):
    """The corpus `copies` times over, so timings rise well above start-up."""
    directory = os.path.join(workdir, f"corpus_x{copies}")
    os.makedirs(directory, exist_ok=True)
    with open(corpus, "rb") as f:
        text = f.read()
    with open(os.path.join(directory, "corpus.txt"), "wb") as f:
        for _ in range(copies):
            f.write(text)
    return directory


def _prepare(workdir, vocab_file):
    from data_prep import export_corpus  # pylint: disable=import-outside-toplevel
    corpus_dir = os.path.join(workdir, "corpus")
    tiny_dir = os.path.join(workdir, "tiny")
    os.makedirs(corpus_dir, exist_ok=True)
    os.makedirs(tiny_dir, exist_ok=True)
    corpus = os.path.join(corpus_dir, "corpus.txt")
    export_corpus.export_demo_corpus(corpus)
    export_corpus.export_demo_corpus(os.path.join(tiny_dir, "tiny.txt"), 1)
    vocab_seconds = None
    if not vocab_file:
        vocab_file = os.path.join(workdir, "vocab.txt")
        if not os.path.exists(vocab_file):
            vocab_seconds, _ = _run([
                sys.executable, "-m", "data_prep.build_vocab", "--input",
                corpus, "--vocab_size", "8000", "--output", vocab_file])
    return corpus_dir, tiny_dir, vocab_file, vocab_seconds


def _ours(input_dir, vocab, out, processes, extra=()):
    return [sys.executable, "-m", "data_prep.build_pretraining_dataset",
            "--input", input_dir, "--vocab_file", vocab, "--output_dir", out,
            "--num_processes", str(processes), "--overwrite", *extra]


def _original(original_dir, input_dir, vocab, out):
    return [sys.executable, os.path.join(original_dir,
                                         "build_pretraining_dataset.py"),
            "--corpus-dir", input_dir, "--vocab-file", vocab,
            "--output-dir", out, "--max-seq-length", "128"]


def _time_builds(args, corpus_dir, tiny_dir, vocab):
    """Interleaved repeats of every configuration.

    Uses the fastest of the repeats: on a shared machine noise only ever adds
    time, so the minimum is the least disturbed measurement.
    """
    out = os.path.join(args.workdir, "timing_out")
    configs = {"ours_1_process": lambda d: _ours(d, vocab, out, 1),
               "ours_2_processes": lambda d: _ours(d, vocab, out, 2)}
    if args.original_dir:
        configs["original"] = lambda d: _original(args.original_dir, d, vocab,
                                                  out)
    samples = {name: {"full": [], "startup": [], "cpu": []} for name in configs}
    for _ in range(args.repeats):
        for name, make in configs.items():
            cwd = args.original_dir if name == "original" else REPO
            wall, cpu = _run(make(corpus_dir), cwd=cwd)
            samples[name]["full"].append(wall)
            samples[name]["cpu"].append(cpu)
            samples[name]["startup"].append(_run(make(tiny_dir), cwd=cwd)[0])
    results = {}
    for name, s in samples.items():
        full, startup = min(s["full"]), min(s["startup"])
        results[name] = {
            "wall_s": round(full, 2), "startup_wall_s": round(startup, 2),
            "cpu_s": round(min(s["cpu"]), 2),
            "marginal_s": round(full - startup, 2),
            "mb_per_s": round(CORPUS_MB / max(full - startup, 1e-6), 2),
            "samples_wall_s": [round(x, 2) for x in s["full"]],
            "samples_startup_s": [round(x, 2) for x in s["startup"]],
        }
    return results


def _padding(args, corpus_dir, vocab):
    fractions = {}
    for mode, extra in (("default", ()),
                        ("pack_across_documents", ("--pack_across_documents",))):
        out = os.path.join(args.workdir, f"out_{mode}")
        _run(_ours(corpus_dir, vocab, out, 1, extra))
        with open(os.path.join(out, "dataset_info.json")) as f:
            info = json.load(f)
        fractions[mode] = {k: info[k] for k in (
            "padding_fraction", "num_examples", "tokens", "unk_rate")}
    return fractions


def _decoded(paths):
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    rows = []
    for path in paths:
        for record in tf.data.TFRecordDataset(path):
            feature = tf.train.Example.FromString(record.numpy()).features.feature
            rows.append(tuple(tuple(feature[k].int64_list.value) for k in (
                "input_ids", "input_mask", "segment_ids")))
    return rows


def _fidelity(args, corpus_dir, vocab):
    """Original (seeded like our block 0) vs ours with one block, same shards."""
    from data_prep import block_processing  # pylint: disable=import-outside-toplevel
    from data_prep import build_pretraining_dataset as builder  # pylint: disable=import-outside-toplevel
    from data_prep import input_files  # pylint: disable=import-outside-toplevel
    orig_out = os.path.join(args.workdir, "fidelity_original")
    wrapper = os.path.join(args.workdir, "seeded_original.py")
    with open(wrapper, "w") as f:
        # TF is imported before seeding: importing it draws from `random`.
        f.write("import random, runpy, sys\n"
                "import tensorflow.compat.v1\n"
                "random.seed(sys.argv[1])\n"
                "sys.argv = sys.argv[2:]\n"
                "sys.path.insert(0, '.')\n"
                "runpy.run_path(sys.argv[0], run_name='__main__')\n")
    subprocess.run([sys.executable, wrapper, "0/0",
                    *_original(args.original_dir, corpus_dir, vocab,
                               orig_out)[1:]],
                   cwd=args.original_dir, check=True, capture_output=True)
    block_processing.BLOCK_CHARS = 1 << 40  # one block: one random stream
    ours_out = os.path.join(args.workdir, "fidelity_ours")
    config = block_processing.PackingConfig(vocab, True, 128, False, 0)
    builder.build(config, input_files.resolve_inputs([corpus_dir]), ours_out,
                  1000, 1, overwrite=True, show_progress=False)

    def ordered(directory):
        return [os.path.join(directory, f"pretrain_data.tfrecord-{i}-of-1000")
                for i in range(1000)]

    original, ours = _decoded(ordered(orig_out)), _decoded(ordered(ours_out))
    same = sum(a == b for a, b in zip(original, ours))
    return {"original_examples": len(original), "our_examples": len(ours),
            "identical_examples": same}


def _parity(corpus_dir, vocab):
    from data_prep.bert_reference import reference_ids  # pylint: disable=import-outside-toplevel
    from data_prep.tokenization import WordpieceTokenizer  # pylint: disable=import-outside-toplevel
    from data_prep.vocab_file import Vocab  # pylint: disable=import-outside-toplevel
    tokens = Vocab(vocab).tokens
    with open(os.path.join(corpus_dir, "corpus.txt"), encoding="utf-8") as f:
        lines = [line.strip() for line in f if line.strip()]
    expected = reference_ids(tokens, lines)
    ours = WordpieceTokenizer(tokens).tokenize_to_lists(lines)
    same = sum(a == b for a, b in zip(ours, expected))
    return {"lines": len(lines), "identical_lines": same,
            "fraction": round(same / len(lines), 6)}


def _reader(args, data_dir):
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    from electra_tf import input_pipeline  # pylint: disable=import-outside-toplevel
    dataset = input_pipeline.make_pretraining_dataset(
        os.path.join(data_dir, "pretrain_data*"), 128, 128)
    iterator = iter(dataset)
    for _ in range(20):
        next(iterator)
    start = time.monotonic()
    for _ in range(args.reader_batches):
        batch = next(iterator)
    tf.debugging.assert_equal(tf.shape(batch["input_ids"]), [128, 128])
    rate = args.reader_batches / (time.monotonic() - start)
    training_batches_per_s = args.training_sequences_per_s / 128
    return {"batches_per_s": round(rate, 1),
            "sequences_per_s": round(rate * 128),
            "training_batches_per_s": round(training_batches_per_s, 4),
            "ratio_to_training": round(rate / training_batches_per_s)}


def _machine():
    model = platform.processor()
    try:
        with open("/proc/cpuinfo") as f:
            model = next(l.split(":", 1)[1].strip() for l in f
                         if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{os.cpu_count()} cores, {model}, Python {platform.python_version()}"


def main():
    global CORPUS_MB
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--original_dir", help="google-research/electra "
                        "checkout (omit to skip the peer)")
    parser.add_argument("--workdir", default="/tmp/bench_data_prep")
    parser.add_argument("--vocab_file", help="reuse a vocab (default: learn "
                        "an 8000-token one from the corpus)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--corpus_copies", type=int, default=4,
                        help="time builds on the corpus repeated this often")
    parser.add_argument("--reader_batches", type=int, default=200)
    parser.add_argument("--training_sequences_per_s", type=float, default=10.0,
                        help="ELECTRA-Small training consumption assumed")
    args = parser.parse_args()
    os.makedirs(args.workdir, exist_ok=True)
    corpus_dir, tiny_dir, vocab, vocab_seconds = _prepare(args.workdir,
                                                          args.vocab_file)
    CORPUS_MB = os.path.getsize(os.path.join(corpus_dir, "corpus.txt")) / 1e6
    report = {"machine": _machine(), "corpus_mb": round(CORPUS_MB, 3),
              "vocab_file": vocab, "vocab_learning_s": vocab_seconds}
    timing_dir = _repeated_corpus(os.path.join(corpus_dir, "corpus.txt"),
                                  args.workdir, args.corpus_copies)
    CORPUS_MB = os.path.getsize(os.path.join(timing_dir, "corpus.txt")) / 1e6
    report["timing_corpus_mb"] = round(CORPUS_MB, 3)
    report["builds"] = _time_builds(args, timing_dir, tiny_dir, vocab)
    report["padding"] = _padding(args, corpus_dir, vocab)
    if args.original_dir:
        original = report["builds"]["original"]["mb_per_s"]
        for name in ("ours_1_process", "ours_2_processes"):
            report["builds"][name]["x_original"] = round(
                report["builds"][name]["mb_per_s"] / original, 1)
        report["fidelity"] = _fidelity(args, corpus_dir, vocab)
    report["tokenizer_parity"] = _parity(corpus_dir, vocab)
    report["reader"] = _reader(args, os.path.join(args.workdir, "out_default"))
    print(json.dumps(report, indent=2))
    with open(os.path.join(args.workdir, "results.json"), "w") as f:
        json.dump(report, f, indent=2)


if __name__ == "__main__":
    main()
