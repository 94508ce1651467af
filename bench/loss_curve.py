"""Pre-training loss curves of float32 and mixed_bfloat16 on the demo corpus, side by side, as one PNG.

Runs `electra_tf.run_pretraining` with the demo's flags (`electra_tf/configs/demo.flags`)
for `--steps` steps, once per (precision, seed), one run after the other,
each in its own model_dir under `--out_dir`, logging every `--log_every`
steps; then reads the total loss from each run's TensorBoard events and
plots them. Two float32 seeds give the run-to-run noise that bfloat16 has
to stay within. It also prints, per logged step, the spread of the float32
seeds and bfloat16's distance from their mean.

Usage (from the repository root, after `make demo_out/data/dataset_info.json`;
needs matplotlib: `pip install -e .[bench]`):

    .venv/bin/python bench/loss_curve.py --data_dir demo_out/data --out_dir /tmp/curve --steps 300
"""

import argparse
import glob
import os
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

PRECISIONS = {"float32": "none", "mixed_bfloat16": "bfloat16"}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data_dir", default="demo_out/data")
    parser.add_argument("--out_dir", required=True)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--log_every", type=int, default=10)
    parser.add_argument("--runs", default="float32:1,float32:2,mixed_bfloat16:1,mixed_bfloat16:2",
                        help="precision:seed, comma-separated")
    parser.add_argument("--flagfile", default="electra_tf/configs/demo.flags")
    parser.add_argument("--png", help="default: <out_dir>/loss_curve.png")
    parser.add_argument("--plot_only", action="store_true", help="plot the runs already in --out_dir")
    return parser.parse_args(argv)


def run(args, precision, seed):
    model_dir = os.path.join(args.out_dir, f"{precision}_seed{seed}")
    if args.plot_only:
        return model_dir
    command = [sys.executable, "-m", "electra_tf.run_pretraining", f"--flagfile={args.flagfile}",
               f"--data_dir={args.data_dir}", f"--model_dir={model_dir}", f"--num_train_steps={args.steps}",
               f"--mixed_precision={PRECISIONS[precision]}", f"--seed={seed}", f"--log_every_steps={args.log_every}",
               f"--steps_per_loop={args.log_every}", f"--save_checkpoints_steps={args.steps}",
               f"--example_every_steps={args.steps}", "--noexport_at_end"]
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    print(f"{precision} seed {seed}: {args.steps} steps in {time.perf_counter() - start:.0f} s", flush=True)
    return model_dir


def read_losses(model_dir, tag="loss/total"):
    import tensorflow as tf

    losses = {}
    for path in sorted(glob.glob(os.path.join(model_dir, "train", "events.out.tfevents.*"))):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                if value.tag == tag:
                    losses[event.step] = float(tf.make_ndarray(value.tensor)) if value.HasField("tensor") \
                        else value.simple_value
    return losses


def main(argv=None):
    args = parse_args(argv)
    runs = [(spec.split(":")[0], int(spec.split(":")[1])) for spec in args.runs.split(",")]
    curves = {}
    for precision, seed in runs:
        curves[(precision, seed)] = read_losses(run(args, precision, seed))
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (axis, gaps) = plt.subplots(2, 1, figsize=(8, 9))
    for (precision, seed), losses in curves.items():
        steps = sorted(losses)
        axis.plot(steps, [losses[s] for s in steps], label=f"{precision} seed {seed}",
                  linestyle="-" if precision == "float32" else "--")
    axis.set_xlabel("step")
    axis.set_ylabel("total loss (MLM + 50 x RTD)")
    axis.set_title(f"demo corpus, {os.path.basename(args.flagfile)}, {args.steps} steps "
                   "(mean over each logging interval)")
    axis.legend()
    # The differences: bfloat16 against float32 at the same seed, beside float32 against another seed.
    seeds = sorted({seed for _, seed in curves})
    for seed in seeds:
        if ("float32", seed) in curves and ("mixed_bfloat16", seed) in curves:
            a, b = curves[("mixed_bfloat16", seed)], curves[("float32", seed)]
            steps = sorted(set(a) & set(b))
            gaps.plot(steps, [a[s] - b[s] for s in steps], label=f"bf16 - fp32, seed {seed}")
    if len(seeds) > 1 and all(("float32", s) in curves for s in seeds[:2]):
        a, b = curves[("float32", seeds[1])], curves[("float32", seeds[0])]
        steps = sorted(set(a) & set(b))
        gaps.plot(steps, [a[s] - b[s] for s in steps], color="grey", label=f"fp32 seed {seeds[1]} - seed {seeds[0]}")
    gaps.axhline(0, color="black", linewidth=0.5)
    gaps.set_ylim(-0.5, 0.5)
    gaps.set_xlabel("step")
    gaps.set_ylabel("loss difference (clipped to +-0.5)")
    gaps.legend()
    figure.tight_layout()
    png = args.png or os.path.join(args.out_dir, "loss_curve.png")
    figure.savefig(png, dpi=100)
    print(f"wrote {png}")
    by_precision = {}
    for (precision, _), losses in curves.items():
        by_precision.setdefault(precision, []).append(losses)
    common = sorted(set.intersection(*(set(c) for c in curves.values())))
    print("step " + " ".join(f"{p}:{s}" for p, s in curves) + "  fp32 spread  bf16 mean - fp32 mean")
    for step in common:
        values = [curves[key][step] for key in curves]
        fp32 = [c[step] for c in by_precision.get("float32", [])]
        bf16 = [c[step] for c in by_precision.get("mixed_bfloat16", [])]
        spread = max(fp32) - min(fp32) if len(fp32) > 1 else float("nan")
        gap = (sum(bf16) / len(bf16) - sum(fp32) / len(fp32)) if fp32 and bf16 else float("nan")
        print(f"{step:4d} " + " ".join(f"{v:9.4f}" for v in values) + f"  {spread:9.4f}  {gap:+9.4f}")


if __name__ == "__main__":
    main()
