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
    .venv/bin/python bench/bench_train_step.py --model_flags electra_tf/configs/demo.flags \
        --vocab_size 7702 --batch 64 --parts                                  # the demo's model
    .venv/bin/python bench/bench_train_step.py --compare --rounds 2  # ours, the peers, MFU

Prints `electra_tf size=... batch=... seq=... precision=... xla=... threads=... step_s=... seq_per_s=...`
(the peers print `seq_per_s=` the same way), then the model's FLOPs per step
(`model_flops`, below) and the rate they were done at.

`--compare` runs, round after round and in a rotated order, each configuration
in its own process: ours in float32, mixed_bfloat16 and with XLA, Model
Garden in float32 and mixed_bfloat16 (`model_garden_mixed_precision.py`) and
Hugging Face, from the peers' directory (`--peers_dir`, their README says how to
make their virtual environments). In every round it also measures this
machine's matmul rate (`matmul_rate`) in both precisions, at 4096^3 and at the
model's own matmul shapes, and prints each figure's MFU against both.
"""

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import electra_tf  # noqa: E402
from electra_tf.pretraining.masking import mask_tokens  # noqa: E402
from electra_tf.pretraining.sampling import gumbel_sample  # noqa: E402
from electra_tf.utils import keyed_random  # noqa: E402

PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")
CLS_ID, SEP_ID = 101, 102
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


COMPARE_CONFIGS = ("ours_fp32", "ours_bf16", "ours_fp32_xla", "ours_bf16_xla", "mg_fp32", "mg_bf16", "hf_fp32")


def add_model_args(parser):
    """The arguments that choose the model and the batch (shared by the other step benchmarks)."""
    parser.add_argument("--size", default="small", help="small | base | large | tiny")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--seq", type=int, default=128)
    parser.add_argument("--model_flags", help="a run_pretraining flagfile (e.g. electra_tf/configs/demo.flags): "
                                              "its model flags replace --size and --seq")
    parser.add_argument("--vocab_size", type=int, default=30522, help="vocabulary size of the model")
    parser.add_argument("--rematerialize", action="store_true", help="recompute the blocks in the backward pass")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_model_args(parser)
    parser.add_argument("--steps", type=int, default=10, help="timed steps")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first (the first one traces)")
    parser.add_argument("--precision", default="float32", choices=PRECISIONS)
    parser.add_argument("--jit_compile", action="store_true", help="compile the step with XLA")
    parser.add_argument("--parts", action="store_true",
                        help="also time sub-parts (masking, Gumbel sampling, forward passes) alone")
    parser.add_argument("--json", action="store_true", help="also print one JSON line for recording")
    parser.add_argument("--seed", type=int, default=0, help="numpy seed of the token ids")
    parser.add_argument("--compare", action="store_true", help="ours, the peers and the matmul rate, alternating")
    parser.add_argument("--configs", default=",".join(COMPARE_CONFIGS),
                        help=f"--compare: which of {', '.join(COMPARE_CONFIGS)}")
    parser.add_argument("--rounds", type=int, default=2, help="--compare: rounds")
    parser.add_argument("--xla_steps", type=int, default=5, help="--compare: timed steps of the XLA runs")
    parser.add_argument("--peers_dir", default=os.path.join(os.path.dirname(ROOT), "shared", "peers"))
    parser.add_argument("--mg_python", default="/tmp/peer-mg/bin/python", help="Model Garden's interpreter")
    parser.add_argument("--hf_python", default="/tmp/peer-hf/bin/python", help="Hugging Face's interpreter")
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


def build(config, precision, rematerialize=False):
    keras.mixed_precision.set_dtype_policy(precision)
    pretrainer = electra_tf.ElectraPretrainer(config, rematerialize=rematerialize)
    pretrainer.compile(optimizer=electra_tf.create_optimizer(electra_tf.OptimizerConfig()))
    return pretrainer


def model_matmuls(config, batch):
    """Every matmul of one forward pass: (name, count, batch, m, k, n), `2 count batch m k n` FLOPs.

    Both towers' blocks (query, key, value and output projections, the two
    feed-forward layers, attention scores and context per head), their
    embedding projections, and both heads: the generator's dense and
    vocabulary projection at the masked positions only (as ours computes
    it), the discriminator's dense and replaced-logit layer at every position.
    Embedding lookups, element-wise ops and the optimizer are not counted.
    """
    tokens, seq, predicted = batch * config.max_seq_length, config.max_seq_length, config.max_predictions_per_seq
    towers = ("generator", "discriminator") if config.objective == "electra" else ("discriminator",)
    matmuls = []
    for tower in towers:
        hidden, heads, intermediate = config.tower_dims(tower)
        layers, head_dim = config.tower_layers(tower), hidden // heads
        width = config.tower_embedding_size(tower)
        if width != hidden:
            matmuls.append((f"{tower} embeddings_project", 1, 1, tokens, width, hidden))
        matmuls += [
            (f"{tower} query/key/value/output", 4 * layers, 1, tokens, hidden, hidden),
            (f"{tower} feed-forward in", layers, 1, tokens, hidden, intermediate),
            (f"{tower} feed-forward out", layers, 1, tokens, intermediate, hidden),
            (f"{tower} attention scores", layers, batch * heads, seq, head_dim, seq),
            (f"{tower} attention context", layers, batch * heads, seq, seq, head_dim),
        ]
    mlm_hidden, mlm_width = config.tower_dims(towers[0])[0], config.tower_embedding_size(towers[0])
    matmuls += [("generator head dense", 1, 1, batch * predicted, mlm_hidden, mlm_width),
                ("generator head vocabulary", 1, 1, batch * predicted, mlm_width, config.vocab_size)]
    if config.objective == "electra":
        matmuls += [("discriminator head dense", 1, 1, tokens, config.hidden_size, config.hidden_size),
                    ("discriminator head logit", 1, 1, tokens, config.hidden_size, 1)]
    return matmuls


def model_flops(config, batch):
    """Model FLOPs of one training step: the forward matmuls x 3 (the backward pass does two per forward one)."""
    return 3 * sum(2 * count * b * m * k * n for _, count, b, m, k, n in model_matmuls(config, batch))


BIG_MATMUL = [("4096^3", 1, 1, 4096, 4096, 4096)]


def matmul_rate(precision, matmuls, seconds=2.0):
    """FLOP/s of `tf.matmul` in `precision`'s compute dtype over `matmuls` (as `model_matmuls` lists them).

    Each distinct shape runs as one (batched) matmul in a tf.function, oneDNN
    as in the step, for its share of `seconds` after a warm-up call; the rate
    is the FLOPs of all the matmuls over their summed times (each shape's time
    counted `count` times), so large shapes weigh as they do in the step.
    """
    dtype = {"mixed_bfloat16": tf.bfloat16, "mixed_float16": tf.float16}.get(precision, tf.float32)
    matmul = tf.function(tf.matmul)
    total_flops = total_seconds = 0.0
    for _, count, batch, m, k, n in matmuls:
        batch_dims = [batch] if batch > 1 else []
        a = tf.cast(tf.random.stateless_normal(batch_dims + [m, k], seed=[1, 2]), dtype)
        b = tf.cast(tf.random.stateless_normal(batch_dims + [k, n], seed=[3, 4]), dtype)
        matmul(a, b).numpy()
        calls, start = 0, time.perf_counter()
        while calls < 2 or time.perf_counter() - start < seconds / len(matmuls):
            out = matmul(a, b)
            calls += 1
        out.numpy()
        total_seconds += count * (time.perf_counter() - start) / calls
        total_flops += 2 * count * batch * m * k * n
    return total_flops / total_seconds


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
    if args.compare:
        return compare(args)
    config = model_config(args)
    if args.model_flags:
        args.size, args.seq = os.path.basename(args.model_flags), config.max_seq_length
    pretrainer = build(config, args.precision, args.rematerialize)
    batch = make_batch(args.batch, args.seq, args.seed, config.vocab_size)
    train_step = tf.function(pretrainer.train_step, jit_compile=args.jit_compile)
    compile_start = time.perf_counter()
    train_step(batch)["loss"].numpy()
    first_s = time.perf_counter() - compile_start
    step_times = []
    step_s, logs = time_fn(train_step, (batch,), args.steps, max(0, args.warmup - 1), step_times)
    threads = tf.config.threading.get_intra_op_parallelism_threads() or os.cpu_count()
    flops = model_flops(config, args.batch)
    print(f"electra_tf size={args.size} batch={args.batch} seq={args.seq} precision={args.precision} "
          f"xla={int(args.jit_compile)} threads={threads} step_s={step_s:.3f} "
          f"seq_per_s={args.batch / step_s:.1f} loss={float(logs['loss']):.3f}")
    print(f"  first step (trace{' + XLA compile' if args.jit_compile else ''}) {first_s:.1f}s; "
          f"timed steps min {min(step_times):.3f}s median {float(np.median(step_times)):.3f}s "
          f"max {max(step_times):.3f}s; model {flops / 1e9:.1f} GFLOP/step = {flops / step_s / 1e9:.1f} GFLOP/s")
    record = {
        "bench": "train_step", "impl": "electra_tf", "size": args.size, "batch": args.batch, "seq": args.seq,
        "precision": args.precision, "xla": bool(args.jit_compile), "rematerialize": args.rematerialize,
        "steps": args.steps, "warmup": args.warmup,
        "step_s": round(step_s, 4), "seq_per_s": round(args.batch / step_s, 2), "first_step_s": round(first_s, 2),
        "step_s_min": round(min(step_times), 4), "step_s_median": round(float(np.median(step_times)), 4),
        "model_flops": flops,
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


def _compare_commands(args):
    """{config: (precision, command)} for --compare; every command prints `seq_per_s=`."""
    here = os.path.abspath(__file__)
    shape = ["--size", args.size, "--batch", str(args.batch), "--seq", str(args.seq)]
    if args.model_flags:
        shape += ["--model_flags", args.model_flags, "--vocab_size", str(args.vocab_size)]
    ours = [sys.executable, here, *shape, "--steps", str(args.steps), "--warmup", str(args.warmup), "--json"]
    xla = [sys.executable, here, *shape, "--steps", str(args.xla_steps), "--warmup", "1", "--json", "--jit_compile"]
    peer = [str(args.batch), str(args.seq), str(args.steps)]
    model_garden = os.path.join(args.peers_dir, "model_garden_electra_step.py")
    commands = {
        "ours_fp32": ("float32", ours + ["--precision", "float32"]),
        "ours_bf16": ("mixed_bfloat16", ours + ["--precision", "mixed_bfloat16"]),
        "ours_fp32_xla": ("float32", xla + ["--precision", "float32"]),
        "ours_bf16_xla": ("mixed_bfloat16", xla + ["--precision", "mixed_bfloat16"]),
        "mg_fp32": ("float32", [args.mg_python, model_garden, *peer, "0"]),
        "mg_bf16": ("mixed_bfloat16", [args.mg_python, os.path.join(os.path.dirname(here),
                                                                    "model_garden_mixed_precision.py"),
                                       model_garden, *peer, "0"]),
        "hf_fp32": ("float32", [args.hf_python, os.path.join(args.peers_dir, "hf_torch_electra_step.py"),
                                args.size, *peer]),
    }
    chosen = [name.strip() for name in args.configs.split(",") if name.strip()]
    unknown = sorted(set(chosen) - set(commands))
    if unknown:
        raise SystemExit(f"unknown --configs {unknown}; choose from {', '.join(commands)}")
    return {name: commands[name] for name in chosen}


def _load():
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


def compare(args):
    """Alternating rounds of every configuration, each in its own process, and the matmul rates; one table."""
    config = model_config(args)
    commands = _compare_commands(args)
    flops = model_flops(config, args.batch)
    shapes = model_matmuls(config, args.batch)
    precisions = sorted({precision for precision, _ in commands.values()})
    names = list(commands)
    seq_per_s = {name: {} for name in names}  # round -> seq/s
    first_step = {name: [] for name in names}
    rates = {(p, kind): [] for p in precisions for kind in ("4096", "model")}
    for r in range(args.rounds):
        for precision in precisions:
            rates[(precision, "4096")].append(matmul_rate(precision, BIG_MATMUL))
            rates[(precision, "model")].append(matmul_rate(precision, shapes))
        for name in names[r % len(names):] + names[:r % len(names)]:
            precision, command = commands[name]
            load = _load()
            start = time.perf_counter()
            result = subprocess.run(command, cwd=args.peers_dir, capture_output=True, text=True)
            wall = time.perf_counter() - start
            found = re.findall(r"seq_per_s=([0-9.]+)", result.stdout)
            if result.returncode or not found:
                print(f"round {r + 1} {name}: failed ({result.returncode}): {result.stderr.strip()[-500:]}",
                      flush=True)
                continue
            seq_per_s[name][r] = float(found[-1])
            records = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
            if records:
                first_step[name].append(records[-1]["first_step_s"])
            print(f"round {r + 1} {time.strftime('%H:%M:%S')} load {load:.2f} {name}: {found[-1]} seq/s "
                  f"({wall:.0f} s in all)", flush=True)
    _report(args, config, flops, names, seq_per_s, first_step, rates, commands)


def _report(args, config, flops, names, seq_per_s, first_step, rates, commands):
    print(f"\nmodel={args.model_flags or args.size} batch={args.batch} seq={config.max_seq_length} "
          f"rounds={args.rounds} model FLOPs/step={flops / 1e9:.1f} G (bench_train_step.model_flops); "
          f"load now {_load():.2f}")
    for (precision, kind), values in sorted(rates.items()):
        print(f"matmul rate {precision:15s} {'4096^3' if kind == '4096' else 'model shapes':12s} "
              f"median {statistics.median(values) / 1e9:7.1f} GFLOP/s (rounds: "
              f"{', '.join(f'{v / 1e9:.1f}' for v in values)})")
    reference = "mg_fp32" if seq_per_s.get("mg_fp32") else None
    print(f"{'config':14s} {'seq/s':>7s} {'s/step':>7s} {'GFLOP/s':>8s} {'MFU 4096':>8s} {'MFU shapes':>10s} "
          f"{'x mg_fp32':>9s} {'x ours_fp32':>11s}  rounds")
    for name in names:
        values = list(seq_per_s[name].values())
        if not values:
            print(f"{name:14s} no result")
            continue
        precision = commands[name][0]
        speed = statistics.median(values)
        achieved = flops * speed / args.batch
        ratios = []
        for other in (reference, "ours_fp32"):
            # The ratio within each round (same load), then the median over rounds.
            pairs = [(v, seq_per_s[other][r]) for r, v in seq_per_s[name].items() if other and r in seq_per_s[other]]
            ratios.append(f"{statistics.median(a / b for a, b in pairs):.2f}x" if pairs else "-")
        compile_note = f" first step {statistics.median(first_step[name]):.0f} s" if first_step[name] else ""
        print(f"{name:14s} {speed:7.2f} {args.batch / speed:7.3f} {achieved / 1e9:8.1f} "
              f"{achieved / statistics.median(rates[(precision, '4096')]):8.0%} "
              f"{achieved / statistics.median(rates[(precision, 'model')]):10.0%} "
              f"{ratios[0]:>9s} {ratios[1]:>11s}  {', '.join(f'{v:.2f}' for v in values)}{compile_note}")


if __name__ == "__main__":
    main()
