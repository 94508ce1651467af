"""Per-op profile of the ELECTRA pre-training step: top ops by self time.

Builds the same step as `bench/bench_train_step.py` (same batch, same model,
the same --size/--seq/--batch/--model_flags/--vocab_size arguments),
runs `--warmup` untimed steps, then traces `--steps` steps with
`tf.profiler.experimental` and reads the host plane of the trace (xplane.pb):
every TF op event ("name:Type") on the executor threads is charged its self
time (its duration minus that of events nested inside it on the same thread),
summed over threads and divided by the number of traced steps. Ops run by
both executor threads at once are both counted, so the column can exceed the
wall time. Under XLA the executor runs one `_XlaRun` op; the per-thunk events
of XLA:CPU (if any) are listed by name instead.

Usage (from the repository root):

    .venv/bin/python bench/profile_step.py                              # ELECTRA-Small, 32 x 128, fp32
    .venv/bin/python bench/profile_step.py --precision mixed_bfloat16
    .venv/bin/python bench/profile_step.py --jit_compile --by name      # XLA
    .venv/bin/python bench/profile_step.py --by name --top 40           # per op instance
    .venv/bin/python bench/profile_step.py --model_flags electra_tf/configs/demo.flags --vocab_size 7702 --batch 64

For XLA's own view, add `XLA_FLAGS="--xla_dump_to=DIR --xla_dump_hlo_as_text"`
and count the HLO of `DIR/*train_step*before_optimizations.txt`.

`--by type` (default) groups by op type (MatMul, Cast, ...), `--by name` by
the op's name with its numeric suffixes and layer indices folded
(`layer_3/.../MatMul_2` -> `layer_N/.../MatMul`), `--by scope` by the first
two name scopes.
"""

import argparse
import collections
import glob
import os
import re
import shutil
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import tensorflow as tf  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_train_step as bench  # noqa: E402  (a sibling script, not a package)

_SKIP = ("ThreadpoolListener", "ExecutorState::Process", "EagerExecute", "EagerLocalExecute",
         "TFE_Py_Execute", "train_step", "EagerCopyToDevice", "KernelAndDeviceFunc", "FunctionRun",
         "InstantiatedCapturedFunction")


# Events nested inside an op that do its work (Eigen's ParallelFor in the stateless RNG ops):
# charged to the enclosing op.
_TRANSPARENT = ("ParallelFor",)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    bench.add_model_args(parser)
    parser.add_argument("--precision", default="float32", choices=bench.PRECISIONS)
    parser.add_argument("--jit_compile", action="store_true")
    parser.add_argument("--steps", type=int, default=3, help="traced steps")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--by", default="type", choices=("type", "name", "scope"))
    parser.add_argument("--logdir", help="keep the trace here (default: a temporary folder, removed)")
    return parser.parse_args(argv)


def _fold(name):
    name = re.sub(r"layer_\d+", "layer_N", name)
    return re.sub(r"_\d+(?=/|$)", "", name)


def op_self_times(xplane_path, by="type"):
    """{group: total self time in seconds} over the host plane's threads, and the wall of train_step."""
    from tensorflow.tsl.profiler.protobuf import xplane_pb2  # pylint: disable=g-import-not-at-top
    space = xplane_pb2.XSpace()
    with open(xplane_path, "rb") as f:
        space.ParseFromString(f.read())
    totals = collections.Counter()
    counts = collections.Counter()
    wall_ps = 0
    for plane in space.planes:
        if plane.name != "/host:CPU":
            continue
        for line in plane.lines:
            if line.name == "python":  # the caller's thread: train_step and the eager call around it
                continue
            events = sorted(line.events, key=lambda e: (e.offset_ps, -e.duration_ps))
            stack = []
            for ev in events:
                name = plane.event_metadata[ev.metadata_id].name
                start, end = ev.offset_ps, ev.offset_ps + ev.duration_ps
                while stack and stack[-1]["end"] <= start:
                    done = stack.pop()
                    if done["key"] is not None:
                        totals[done["key"]] += done["dur"] - done["child"]
                if name.startswith(_TRANSPARENT):
                    continue
                if stack:
                    stack[-1]["child"] += ev.duration_ps
                if name == "train_step" or name.startswith("__inference_train_step"):
                    wall_ps = max(wall_ps, ev.duration_ps)
                key = None
                if not name.startswith(_SKIP) and ev.duration_ps > 0:
                    if ":" in name:
                        op_name, op_type = name.rsplit(":", 1)
                        op_type = op_type.split("#")[0]
                    else:
                        op_name, op_type = name, name
                    if by == "type":
                        # XLA:CPU thunks are named after their fusion: fold `.N` (fusion kinds).
                        key = re.sub(r"\.\d+$", "", op_type)
                    elif by == "name":
                        key = f"{_fold(op_name)}:{op_type}"
                    else:
                        key = "/".join(_fold(op_name).split("/")[:2])
                    counts[key] += 1
                stack.append({"end": end, "key": key, "dur": ev.duration_ps, "child": 0})
            while stack:
                done = stack.pop()
                if done["key"] is not None:
                    totals[done["key"]] += done["dur"] - done["child"]
    return {k: v * 1e-12 for k, v in totals.items()}, counts, wall_ps * 1e-12


def main(argv=None):
    args = parse_args(argv)
    config = bench.model_config(args)
    pretrainer = bench.build(config, args.precision)
    batch = bench.make_batch(args.batch, config.max_seq_length, vocab_size=config.vocab_size)
    train_step = tf.function(pretrainer.train_step, jit_compile=args.jit_compile)
    for _ in range(args.warmup):
        train_step(batch)["loss"].numpy()
    logdir = args.logdir or tempfile.mkdtemp(prefix="profile_step_")
    start = time.perf_counter()
    tf.profiler.experimental.start(logdir)
    for _ in range(args.steps):
        out = train_step(batch)
    out["loss"].numpy()
    tf.profiler.experimental.stop()
    wall = (time.perf_counter() - start) / args.steps
    path = sorted(glob.glob(os.path.join(logdir, "**", "*.xplane.pb"), recursive=True))[-1]
    totals, counts, _ = op_self_times(path, args.by)
    if not args.logdir:
        shutil.rmtree(logdir, ignore_errors=True)
    total = sum(totals.values())
    print(f"profile model={args.model_flags or args.size} batch={args.batch} seq={config.max_seq_length} "
          f"precision={args.precision} xla={int(args.jit_compile)} steps={args.steps} "
          f"wall_ms_per_step={wall * 1000:.0f} (traced) op_self_ms_per_step={total * 1000 / args.steps:.0f} "
          f"ops_per_step={sum(counts.values()) // args.steps}")
    print(f"{'ms/step':>9} {'%ops':>6} {'n/step':>7}  {args.by}")
    for key, seconds in sorted(totals.items(), key=lambda kv: -kv[1])[:args.top]:
        print(f"{seconds * 1000 / args.steps:9.1f} {100 * seconds / total:6.1f} "
              f"{counts[key] / args.steps:7.0f}  {key}")


if __name__ == "__main__":
    main()
