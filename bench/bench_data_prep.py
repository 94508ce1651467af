r"""Data preparation benchmark: our builder beside the original, and the reader.

    .venv/bin/python bench/bench_data_prep.py \
        --original_dir /path/to/google-research/electra --workdir /tmp/bench_data

Measures, on the demo corpus and this machine, in one run:
  * build throughput of google-research/electra's build_pretraining_dataset.py
    and of ours with 1 and 2 processes (the default --sentence_splitting=auto),
    and with 1 process and --sentence_splitting=never (the original's rule).
    --layout paragraphs times them all on the corpus with each document on
    one line instead of one sentence a line. Throughput is marginal: input MB /
    (wall time on the input - wall time on a one-document input), so the
    fixed start-up (importing TF) counts for neither tool. Ours runs on the
    corpus repeated --corpus_copies times (default 16, 78 MB: several seconds
    past start-up, so a scheduling hiccup is a small part of it); the
    original, linear in its input, on --original_copies (default 2). Each
    round runs every configuration once, in rotated order; the summary uses
    each one's fastest runs (a busy machine only adds time) and also gives the
    ratios round by round. CPU seconds (the process and its workers), the
    1-minute load average before each run and the share of the machine's
    CPU other processes took during it are recorded too;
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


def _load_average():
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


def _machine_busy_seconds():
    """CPU seconds all processes of the machine have used since boot."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    idle = fields[3] + fields[4]  # idle, iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def _run(cmd, cwd=REPO):
    """Runs a command; returns (wall seconds, CPU seconds of it and its
    children, CPU seconds the rest of the machine used meanwhile)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    busy_before = _machine_busy_seconds()
    start = time.monotonic()
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    result = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True,
                            text=True)
    wall = time.monotonic() - start
    busy = _machine_busy_seconds() - busy_before
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{result.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, max(0.0, busy - cpu)


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


def _one_line_a_document(path):
    with open(path, encoding="utf-8") as f:
        documents = f.read().strip().split("\n\n")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n\n".join(doc.replace("\n", " ") for doc in documents) + "\n")


def _prepare(workdir, vocab_file, layout="sentences"):
    from data_prep import export_corpus  # pylint: disable=import-outside-toplevel
    corpus_dir = os.path.join(workdir, "corpus")
    tiny_dir = os.path.join(workdir, "tiny")
    os.makedirs(corpus_dir, exist_ok=True)
    os.makedirs(tiny_dir, exist_ok=True)
    corpus = os.path.join(corpus_dir, "corpus.txt")
    export_corpus.export_demo_corpus(corpus)
    export_corpus.export_demo_corpus(os.path.join(tiny_dir, "tiny.txt"), 1)
    if layout == "paragraphs":
        _one_line_a_document(corpus)
        _one_line_a_document(os.path.join(tiny_dir, "tiny.txt"))
    vocab_seconds = None
    if not vocab_file:
        vocab_file = os.path.join(workdir, "vocab.txt")
        if not os.path.exists(vocab_file):
            vocab_seconds = _run([
                sys.executable, "-m", "data_prep.build_vocab", "--input",
                corpus, "--vocab_size", "8000", "--output", vocab_file])[0]
    return corpus_dir, tiny_dir, vocab_file, vocab_seconds


def _ours(input_dir, vocab, out, processes, extra=()):
    return [sys.executable, "-m", "data_prep.build_pretraining_dataset",
            "--input", input_dir, "--vocab_file", vocab, "--output_dir", out,
            "--num_processes", str(processes), "--overwrite", *extra]


def _original(original_dir, input_dir, vocab, out, python=None):
    return [python or sys.executable,
            os.path.join(original_dir, "build_pretraining_dataset.py"),
            "--corpus-dir", input_dir, "--vocab-file", vocab,
            "--output-dir", out, "--max-seq-length", "128"]


def _mb(directory):
    return sum(os.path.getsize(os.path.join(directory, name))
               for name in os.listdir(directory)) / 1e6


def _build_configs(args, corpus_dir, vocab):
    """name -> (command for an input dir, cwd, timing input dir)."""
    out = os.path.join(args.workdir, "timing_out")
    ours_input = _repeated_corpus(os.path.join(corpus_dir, "corpus.txt"),
                                  args.workdir, args.corpus_copies)
    configs = {
        f"ours_{n}_process{'es' if n > 1 else ''}": (
            lambda d, n=n: _ours(d, vocab, out, n), REPO, ours_input)
        for n in (1, 2)}
    configs["ours_1_process_never"] = (
        lambda d: _ours(d, vocab, out, 1, ("--sentence_splitting=never",)), REPO, ours_input)
    if args.original_dir:
        original_input = _repeated_corpus(
            os.path.join(corpus_dir, "corpus.txt"), args.workdir,
            args.original_copies)
        configs["original"] = (
            lambda d: _original(args.original_dir, d, vocab, out,
                                args.original_python),
            args.original_dir, original_input)
    return configs


def _time_rounds(configs, tiny_dir, repeats):
    """Each round runs every configuration on its input and on a one-document
    input, in an order rotated from round to round, so a busy spell of the
    machine hits all of them alike."""
    names = list(configs)
    rounds = []
    for r in range(repeats):
        samples = {}
        for name in names[r % len(names):] + names[:r % len(names)]:
            make, cwd, full_dir = configs[name]
            load = _load_average()
            full_wall, full_cpu, others = _run(make(full_dir), cwd=cwd)
            tiny_wall, tiny_cpu, _ = _run(make(tiny_dir), cwd=cwd)
            samples[name] = {"wall": full_wall, "cpu": full_cpu,
                             "startup_wall": tiny_wall, "startup_cpu": tiny_cpu,
                             "load_before": load,
                             "others_cpu_share": others / (
                                 full_wall * os.cpu_count())}
        rounds.append(samples)
    return rounds


def _summarize(name, rounds, megabytes):
    """Marginal throughput from the least disturbed runs (noise only adds time)."""
    runs = [r[name] for r in rounds]
    best = {k: min(run[k] for run in runs)
            for k in ("wall", "cpu", "startup_wall", "startup_cpu")}
    marginal = best["wall"] - best["startup_wall"]
    marginal_cpu = best["cpu"] - best["startup_cpu"]
    return {
        "input_mb": round(megabytes, 2),
        "wall_s": round(best["wall"], 2),
        "startup_wall_s": round(best["startup_wall"], 2),
        "marginal_s": round(marginal, 2),
        "mb_per_s": round(megabytes / max(marginal, 1e-6), 2),
        "cpu_s": round(best["cpu"], 2),
        "startup_cpu_s": round(best["startup_cpu"], 2),
        "mb_per_cpu_s": round(megabytes / max(marginal_cpu, 1e-6), 2),
        "per_round_mb_per_s": [
            round(megabytes / max(run["wall"] - run["startup_wall"], 1e-6), 2)
            for run in runs],
        "samples_wall_s": [round(run["wall"], 2) for run in runs],
        "samples_startup_s": [round(run["startup_wall"], 2) for run in runs],
        "samples_cpu_s": [round(run["cpu"], 2) for run in runs],
        # Share of the machine's CPU time other processes took during each
        # run on the full input: 0 is a quiet machine, 0.5 one core busy.
        "samples_others_cpu_share": [round(run["others_cpu_share"], 2)
                                     for run in runs],
    }


def _time_builds(args, corpus_dir, tiny_dir, vocab):
    configs = _build_configs(args, corpus_dir, vocab)
    rounds = _time_rounds(configs, tiny_dir, args.repeats)
    results = {name: _summarize(name, rounds, _mb(full_dir))
               for name, (_, _, full_dir) in configs.items()}
    loads = [run["load_before"] for r in rounds for run in r.values()]
    results["load_average_1min"] = {"min": min(loads), "max": max(loads)}
    shares = [run["others_cpu_share"] for r in rounds for run in r.values()]
    results["others_cpu_share"] = {"min": round(min(shares), 2),
                                   "max": round(max(shares), 2)}
    if "original" in results:
        _add_ratios(results, rounds)
    return results


def _add_ratios(results, rounds):
    """x original from the best runs, and the same ratio round by round."""
    original = results["original"]
    for name in ("ours_1_process", "ours_2_processes", "ours_1_process_never"):
        ours = results[name]
        ours["x_original"] = round(ours["mb_per_s"] / original["mb_per_s"], 1)
        ours["x_original_by_round"] = [
            round(a / b, 1) for a, b in zip(ours["per_round_mb_per_s"],
                                            original["per_round_mb_per_s"])]
    one, two = results["ours_1_process"], results["ours_2_processes"]
    results["two_over_one_processes"] = {
        "best": round(two["mb_per_s"] / one["mb_per_s"], 2),
        "by_round": [round(b / a, 2) for a, b in zip(
            one["per_round_mb_per_s"], two["per_round_mb_per_s"])]}


def _padding(args, corpus_dir, vocab):
    fractions = {}
    for mode, extra in (("default", ()), ("never", ("--sentence_splitting=never",)),
                        ("pack_across_documents", ("--pack_across_documents",))):
        out = os.path.join(args.workdir, f"out_{mode}")
        _run(_ours(corpus_dir, vocab, out, 1, extra))
        with open(os.path.join(out, "dataset_info.json")) as f:
            info = json.load(f)
        fractions[mode] = {k: info[k] for k in (
            "padding_fraction", "num_examples", "tokens_read", "tokens_written", "written_fraction",
            "tokens_dropped", "unk_rate")}
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
    from data_prep import (
        block_processing,  # pylint: disable=import-outside-toplevel
        input_files,  # pylint: disable=import-outside-toplevel
    )
    from data_prep import build_pretraining_dataset as builder  # pylint: disable=import-outside-toplevel
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
    subprocess.run([args.original_python or sys.executable, wrapper, "0/0",
                    *_original(args.original_dir, corpus_dir, vocab,
                               orig_out)[1:]],
                   cwd=args.original_dir, check=True, capture_output=True)
    block_processing.BLOCK_CHARS = 1 << 40  # one block: one random stream
    ours_out = os.path.join(args.workdir, "fidelity_ours")
    config = block_processing.PackingConfig(vocab, True, 128, False, 0, sentence_splitting="never")
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
    sys.path.insert(0, os.path.join(REPO, "tests"))  # the test-only reference tokenizer
    from bert_reference import reference_ids  # pylint: disable=import-outside-toplevel

    from electra_tf.text.tokenization import WordpieceTokenizer  # pylint: disable=import-outside-toplevel
    from electra_tf.text.vocab import Vocab  # pylint: disable=import-outside-toplevel
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

    from electra_tf.data import input_pipeline  # pylint: disable=import-outside-toplevel
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
            model = next(line.split(":", 1)[1].strip() for line in f
                         if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{os.cpu_count()} cores, {model}, Python {platform.python_version()}"


def _arguments():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--original_dir", help="google-research/electra "
                        "checkout (omit to skip the peer)")
    parser.add_argument("--original_python", help="Python to run the "
                        "original with (default: this one)")
    parser.add_argument("--workdir", default="/tmp/bench_data_prep")
    parser.add_argument("--vocab_file", help="reuse a vocab (default: learn "
                        "an 8000-token one from the corpus)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--corpus_copies", type=int, default=16,
                        help="time our builds on the corpus repeated this "
                        "often (16: ~5 s of processing past start-up)")
    parser.add_argument("--original_copies", type=int, default=2,
                        help="the same for the original, whose time is "
                        "linear in its input")
    parser.add_argument("--layout", choices=("sentences", "paragraphs"), default="sentences",
                        help="the demo corpus as exported (one sentence a line) or one document a line")
    parser.add_argument("--builds_only", action="store_true",
                        help="time the builds; skip padding, fidelity, "
                        "parity and the reader")
    parser.add_argument("--reader_batches", type=int, default=200)
    parser.add_argument("--training_sequences_per_s", type=float, default=10.0,
                        help="ELECTRA-Small training consumption assumed")
    return parser.parse_args()


def main():
    args = _arguments()
    os.makedirs(args.workdir, exist_ok=True)
    corpus_dir, tiny_dir, vocab, vocab_seconds = _prepare(args.workdir,
                                                          args.vocab_file, args.layout)
    report = {"machine": _machine(), "layout": args.layout,
              "corpus_mb": round(_mb(corpus_dir), 3),
              "vocab_file": vocab, "vocab_learning_s": vocab_seconds}
    report["builds"] = _time_builds(args, corpus_dir, tiny_dir, vocab)
    if not args.builds_only:
        report["padding"] = _padding(args, corpus_dir, vocab)
        if args.original_dir:
            report["fidelity"] = _fidelity(args, corpus_dir, vocab)
        report["tokenizer_parity"] = _parity(corpus_dir, vocab)
        report["reader"] = _reader(args,
                                   os.path.join(args.workdir, "out_default"))
    print(json.dumps(report, indent=2))
    with open(os.path.join(args.workdir, "results.json"), "w") as f:
        json.dump(report, f, indent=2)


if __name__ == "__main__":
    main()
