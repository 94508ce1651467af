"""Times full ELECTRA pre-training steps, in the format of the peer scripts.

One step is `ElectraPretrainer.train_step`: keyed dynamic masking, the
generator forward pass, Gumbel sampling of replacements, the discriminator
forward pass, both losses, the backward pass, global-norm clipping, the
AdamW update and the metric updates, all in one `tf.function`.

The batch is the peers' (`/work/shared/peers`): random token ids in
[1000, 30000), [CLS]=101 at position 0, [SEP]=102 at the last position, a
full input mask and segment 0. The same batch is fed at every step; masking
and sampling still change each step, as they are keyed by the step.

Usage (from the repository root):

    .venv/bin/python bench/bench_train_step.py                      # small, 32 x 128, fp32
    .venv/bin/python bench/bench_train_step.py --precision mixed_bfloat16 --jit_compile
    .venv/bin/python bench/bench_train_step.py --parts             # time the sub-parts too
    .venv/bin/python bench/bench_train_step.py --json              # + one JSON line
    .venv/bin/python bench/bench_train_step.py --model_flags configs/demo.flags \
        --vocab_size 7702 --batch 64 --parts                                  # the demo's model

Prints `electra_tf size=... batch=... seq=... precision=... xla=... threads=... step_s=... seq_per_s=...`
(the peers print `seq_per_s=` the same way).
"""

import argparse
import json
import os
import platform
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import electra_tf  # noqa: E402
from electra_tf.pretraining import keyed_random  # noqa: E402
from electra_tf.pretraining.masking import mask_tokens  # noqa: E402
from electra_tf.pretraining.sampling import gumbel_sample  # noqa: E402

PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")
CLS_ID, SEP_ID = 101, 102


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", default="small", help="small | base | large | tiny")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--seq", type=int, default=128)
    parser.add_argument("--steps", type=int, default=10, help="timed steps")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first (the first one traces)")
    parser.add_argument("--precision", default="float32", choices=PRECISIONS)
    parser.add_argument("--jit_compile", action="store_true", help="compile the step with XLA")
    parser.add_argument("--parts", action="store_true",
                        help="also time sub-parts (masking, Gumbel sampling, forward passes) alone")
    parser.add_argument("--json", action="store_true", help="also print one JSON line for recording")
    parser.add_argument("--seed", type=int, default=0, help="numpy seed of the token ids")
    parser.add_argument("--model_flags", help="a run_pretraining flagfile (e.g. configs/demo.flags): "
                                              "its model flags replace --size and --seq")
    parser.add_argument("--vocab_size", type=int, default=30522, help="vocabulary size of the model")
    return parser.parse_args(argv)


def make_batch(batch, seq, seed=0, vocab_size=30522):
    """The peers' workload: ids in [1000, 30000), [CLS] first, [SEP] last, no padding."""
    ids = np.random.RandomState(seed).randint(1000, min(30000, vocab_size), (batch, seq)).astype("int32")
    ids[:, 0] = CLS_ID
    ids[:, -1] = SEP_ID
    return {"input_ids": tf.constant(ids), "input_mask": tf.ones_like(ids), "segment_ids": tf.zeros_like(ids)}


def model_config(args):
    if not args.model_flags:
        return electra_tf.ElectraConfig.for_size(args.size, max_seq_length=args.seq, vocab_size=args.vocab_size)
    from absl import flags  # pylint: disable=g-import-not-at-top

    from electra_tf.training import run_flags  # pylint: disable=g-import-not-at-top
    run_flags.define_flags()
    flags.FLAGS([sys.argv[0], f"--flagfile={args.model_flags}"])
    overrides = {**run_flags.model_overrides(), "vocab_size": args.vocab_size}
    return electra_tf.ElectraConfig.for_size(flags.FLAGS.model_size, **overrides)


def build(config, precision):
    keras.mixed_precision.set_dtype_policy(precision)
    pretrainer = electra_tf.ElectraPretrainer(config)
    pretrainer.compile(optimizer=electra_tf.create_optimizer(electra_tf.OptimizerConfig()))
    return pretrainer


def time_fn(fn, args, steps, warmup, per_call=None):
    """Mean seconds per call of `fn(*args)`, after `warmup` untimed calls.

    If `per_call` is a list, each call is also timed alone (waiting for its
    result) and appended to it.
    """
    out = None
    for _ in range(warmup):
        out = fn(*args)
    if out is not None:
        tf.nest.map_structure(lambda t: t.numpy(), out)
    start = time.perf_counter()
    for _ in range(steps):
        begin = time.perf_counter()
        out = fn(*args)
        if per_call is not None:
            tf.nest.map_structure(lambda t: t.numpy(), out)
            per_call.append(time.perf_counter() - begin)
    tf.nest.map_structure(lambda t: t.numpy(), out)
    return (time.perf_counter() - start) / steps, out


def time_parts(config, pretrainer, batch, steps, warmup, jit_compile):
    """Seconds per call of pieces of the step, each in its own tf.function.

    Returns a dict; `masking` + `gumbel_sampling` is the work of the keyed
    counter-based RNG (plus the top-k / scatter / argmax around it).
    """
    batch_size = int(batch["input_ids"].shape[0])
    example_index = tf.range(batch_size)
    step = tf.constant(7, tf.int64)
    fn = lambda f: tf.function(f, jit_compile=jit_compile)  # noqa: E731

    masked = mask_tokens(batch["input_ids"], batch["input_mask"], config, config.seed, step, example_index)
    gen_inputs = {"input_ids": masked["masked_ids"], "input_mask": batch["input_mask"],
                  "segment_ids": batch["segment_ids"], "masked_lm_positions": masked["masked_lm_positions"]}
    # In a tf.function: called eagerly under mixed_bfloat16, GeneratorHead
    # fails (float32 logits + the autocast bfloat16 output_bias).
    logits = tf.function(lambda: pretrainer.generator(gen_inputs))()
    keys = keyed_random.example_keys(config.seed, step, example_index, keyed_random.GUMBEL)

    def masking():
        return mask_tokens(batch["input_ids"], batch["input_mask"], config, config.seed, step, example_index)

    def gumbel():
        return gumbel_sample(logits, config.temperature, config.seed, step, example_index)

    def gumbel_noise_only():
        return tf.reduce_sum(keyed_random.uniform(keys, logits.shape[1:]))

    def generator_forward():
        return pretrainer.generator(gen_inputs, training=True)

    def discriminator_forward():
        return pretrainer.discriminator(batch, training=True)["logits"]

    def full_forward():
        return pretrainer(batch, training=True, step=step)["rtd_logits"]

    parts = {}
    for name, f in [("masking", masking), ("gumbel_sampling", gumbel), ("gumbel_noise_only", gumbel_noise_only),
                    ("generator_forward", generator_forward),
                    ("discriminator_forward", discriminator_forward), ("full_forward", full_forward)]:
        parts[name], _ = time_fn(fn(f), (), steps, warmup)
    return parts


def main(argv=None):
    args = parse_args(argv)
    config = model_config(args)
    if args.model_flags:
        args.size, args.seq = os.path.basename(args.model_flags), config.max_seq_length
    pretrainer = build(config, args.precision)
    batch = make_batch(args.batch, args.seq, args.seed, config.vocab_size)
    train_step = tf.function(pretrainer.train_step, jit_compile=args.jit_compile)
    compile_start = time.perf_counter()
    train_step(batch)["loss"].numpy()
    first_s = time.perf_counter() - compile_start
    step_times = []
    step_s, logs = time_fn(train_step, (batch,), args.steps, max(0, args.warmup - 1), step_times)
    threads = tf.config.threading.get_intra_op_parallelism_threads() or os.cpu_count()
    print(f"electra_tf size={args.size} batch={args.batch} seq={args.seq} precision={args.precision} "
          f"xla={int(args.jit_compile)} threads={threads} step_s={step_s:.3f} "
          f"seq_per_s={args.batch / step_s:.1f} loss={float(logs['loss']):.3f}")
    print(f"  first step (trace{' + XLA compile' if args.jit_compile else ''}) {first_s:.1f}s; "
          f"timed steps min {min(step_times):.3f}s median {float(np.median(step_times)):.3f}s "
          f"max {max(step_times):.3f}s")
    record = {
        "bench": "train_step", "impl": "electra_tf", "size": args.size, "batch": args.batch, "seq": args.seq,
        "precision": args.precision, "xla": bool(args.jit_compile), "steps": args.steps, "warmup": args.warmup,
        "step_s": round(step_s, 4), "seq_per_s": round(args.batch / step_s, 2), "first_step_s": round(first_s, 2),
        "step_s_min": round(min(step_times), 4), "step_s_median": round(float(np.median(step_times)), 4),
        "tensorflow": tf.__version__, "keras": keras.__version__, "machine": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(), "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    if args.parts:
        parts = time_parts(config, pretrainer, batch, args.steps, max(1, args.warmup), args.jit_compile)
        for name, seconds in parts.items():
            print(f"  part {name:22s} {seconds * 1000:8.1f} ms  {100 * seconds / step_s:5.1f}% of step")
        rng = parts["masking"] + parts["gumbel_sampling"]
        print(f"  masking+gumbel_sampling {rng * 1000:.1f} ms = {100 * rng / step_s:.1f}% of the step")
        record["parts_s"] = {name: round(seconds, 4) for name, seconds in parts.items()}
        record["rng_share"] = round(rng / step_s, 4)
    if args.json:
        print(json.dumps(record, sort_keys=True))


if __name__ == "__main__":
    main()
