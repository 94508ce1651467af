"""A/B of train-step variants in ONE process, alternating, so load swings hit all alike.

Each variant is `precision[+xla][:name=value,...]`, where a name is an
`ElectraConfig` field or `rematerialize`: e.g. `float32`, `mixed_bfloat16+xla`,
`float32:hidden_dropout_prob=0,attention_probs_dropout_prob=0`,
`float32:rematerialize=1`. Every variant gets its own `ElectraPretrainer`,
built after `keras.utils.set_random_seed(--seed)`, so all start from the
same weights.

The timing loop runs `--rounds` rounds; in each, every variant (in a rotated
order) runs one untimed step and then `--steps_per_round` steps timed as one
block. Per round the ratio of each variant to the first is taken; the report
gives the median of those ratios, and the median and best of the per-step
times. It also gives the process CPU time (user + system) per step, which
an oversubscribed machine distorts less than wall time. The first
`--check_steps` losses of each variant are printed before the timing (same
seed, same batch: a numerics-preserving change must reproduce them).

Usage (from the repository root):

    .venv/bin/python bench/ab_step.py float32 mixed_bfloat16
    .venv/bin/python bench/ab_step.py float32 float32+xla --rounds 3
    .venv/bin/python bench/ab_step.py float32 mixed_bfloat16 --model_flags electra_tf/configs/demo.flags \
        --vocab_size 7702 --batch 64
"""

import argparse
import os
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_train_step as bench  # noqa: E402  (a sibling script, not a package)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("variants", nargs="+")
    bench.add_model_args(parser)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps_per_round", type=int, default=3)
    parser.add_argument("--check_steps", type=int, default=3, help="steps whose losses are printed first")
    parser.add_argument("--seed", type=int, default=1)
    return parser.parse_args(argv)


def parse_variant(spec, base):
    """(precision, xla, config overrides, rematerialize) of `precision[+xla][:name=value,...]`."""
    head, _, settings = spec.partition(":")
    precision, _, xla = head.partition("+")
    if precision not in bench.PRECISIONS or xla not in ("", "xla"):
        raise SystemExit(f"bad variant {spec!r}: precision is one of {bench.PRECISIONS}, then optionally +xla")
    overrides, rematerialize = {}, False
    for item in filter(None, settings.split(",")):
        name, _, value = item.partition("=")
        if name == "rematerialize":
            rematerialize = value not in ("0", "false", "False")
        elif hasattr(base, name):
            overrides[name] = type(getattr(base, name))(value)
        else:
            raise SystemExit(f"bad variant {spec!r}: {name!r} is neither an ElectraConfig field nor rematerialize")
    return precision, xla == "xla", overrides, rematerialize


def main(argv=None):
    args = parse_args(argv)
    base = bench.model_config(args)
    batch = bench.make_batch(args.batch, base.max_seq_length, vocab_size=base.vocab_size)
    variants = []
    for spec in args.variants:
        precision, xla, overrides, rematerialize = parse_variant(spec, base)
        keras.utils.set_random_seed(args.seed)
        pretrainer = bench.build(base.replace(**overrides), precision, rematerialize)
        step = tf.function(pretrainer.train_step, jit_compile=xla)
        losses, start, first = [], time.perf_counter(), None
        for _ in range(args.check_steps):
            pretrainer.reset_metrics()
            losses.append(float(step(batch)["loss"]))
            first = time.perf_counter() - start if first is None else first
        print(f"[{spec}] first step {first:.1f}s; step losses " + " ".join(f"{x:.6f}" for x in losses), flush=True)
        variants.append((spec, step))
    keras.mixed_precision.set_dtype_policy("float32")

    times = {spec: [] for spec, _ in variants}
    ratios = {spec: [] for spec, _ in variants}
    cpu = {spec: [] for spec, _ in variants}
    for r in range(args.rounds):
        order = variants[r % len(variants):] + variants[:r % len(variants)]
        this_round = {}
        for spec, step in order:
            step(batch)["loss"].numpy()  # untimed: settles after the other variant ran
            start, start_cpu = time.perf_counter(), time.process_time()
            for _ in range(args.steps_per_round):
                out = step(batch)
            out["loss"].numpy()
            this_round[spec] = (time.perf_counter() - start) / args.steps_per_round
            cpu[spec].append((time.process_time() - start_cpu) / args.steps_per_round)
            times[spec].append(this_round[spec])
        for spec in this_round:
            ratios[spec].append(this_round[variants[0][0]] / this_round[spec])
        with open("/proc/loadavg") as f:
            load = f.read().split()[0]
        print(f"round {r + 1} {time.strftime('%H:%M:%S')} (load {load}): " + "  ".join(
            f"{s}={t:.3f}s (cpu {cpu[s][-1]:.3f}s)" for s, t in this_round.items()), flush=True)
    print(f"model={args.model_flags or args.size} batch={args.batch} seq={base.max_seq_length} rounds={args.rounds} "
          f"steps_per_round={args.steps_per_round}")
    print(f"{'variant':48s} {'median s':>9} {'best s':>8} {'seq/s(med)':>10} {'speed vs first (median of rounds)':>34}")
    for spec, _ in variants:
        med = statistics.median(times[spec])
        rs = sorted(ratios[spec])
        print(f"{spec:48s} {med:9.3f} {min(times[spec]):8.3f} {args.batch / med:10.1f} "
              f"{statistics.median(rs):8.2f}x  (range {rs[0]:.2f}-{rs[-1]:.2f})  "
              f"process CPU s/step median {statistics.median(cpu[spec]):.3f}, "
              f"CPU-time speed vs first {statistics.median(cpu[variants[0][0]]) / statistics.median(cpu[spec]):.2f}x")


if __name__ == "__main__":
    main()
