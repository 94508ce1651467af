r"""Does pre-training help? Fine-tunes a pre-trained discriminator and a randomly initialised copy, N seeds each.

    python bench/finetune_study.py --init_checkpoint=demo_out/model --data_dir=demo_out/rotten_tomatoes \
        --output_dir=bench_out/finetune_study --seeds=5 --max_train_examples=all,500

For each training-set size, runs run_finetuning twice with the recipe of
electra_tf/configs/demo_finetune.flags and --num_trials=N (seeds 0..N-1): once from
--init_checkpoint, once with --random_init (the same architecture and
vocabulary, random weights). Prints each arm's dev accuracy (the best
epoch's, as run_finetuning selects it): mean, standard deviation, median,
min-max; and the difference pre-trained minus random, paired by seed (both
arms see the same data order and the same head initialisation), with a 95%
confidence interval from Student's t over the N paired differences.
Re-running skips the arms whose eval_results.json exists.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys

import scipy.stats

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_arm(args, size, arm):
    output_dir = os.path.join(args.output_dir, f"{size}_{arm}")
    results_path = os.path.join(output_dir, "eval_results.json")
    if not os.path.exists(results_path):
        command = [sys.executable, "-m", "electra_tf.run_finetuning", f"--flagfile={args.flagfile}",
                   f"--init_checkpoint={args.init_checkpoint}", f"--data_dir={args.data_dir}",
                   f"--output_dir={output_dir}", f"--num_trials={args.seeds}", "--seed=0", "--overwrite",
                   "--noexport", *([] if size == "all" else [f"--max_train_examples={size}"]),
                   *(["--random_init"] if arm == "random" else []), *args.extra]
        print("$", " ".join(command), flush=True)
        subprocess.run(command, check=True, cwd=ROOT)
    with open(results_path, encoding="utf-8") as f:
        results = json.load(f)
    metric = results["selected_by"]
    return metric, {t["seed"]: t[metric] for t in results["trials"]}


def describe(values):
    return (f"mean {statistics.mean(values):.4f}  sd {statistics.stdev(values):.4f}  "
            f"median {statistics.median(values):.4f}  range {min(values):.4f}-{max(values):.4f}")


def paired_difference(a, b):
    """Mean of a - b over paired values, and its 95% confidence interval (Student's t)."""
    differences = [x - y for x, y in zip(a, b)]
    mean = statistics.mean(differences)
    half = scipy.stats.t.ppf(0.975, len(differences) - 1) * statistics.stdev(differences) / len(differences) ** 0.5
    return mean, mean - half, mean + half, differences


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--init_checkpoint", required=True)
    parser.add_argument("--data_dir", required=True)
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--flagfile", default=os.path.join(ROOT, "electra_tf", "configs", "demo_finetune.flags"))
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--max_train_examples", default="all,500", help="comma-separated sizes; 'all' = everything")
    args, args.extra = parser.parse_known_args()
    summary = []
    for size in args.max_train_examples.split(","):
        metric, pretrained = run_arm(args, size, "pretrained")
        _, random = run_arm(args, size, "random")
        seeds = sorted(pretrained)
        a, b = [pretrained[s] for s in seeds], [random[s] for s in seeds]
        mean, low, high, differences = paired_difference(a, b)
        summary += [f"training examples: {size}; dev {metric} over seeds {seeds}",
                    f"  pre-trained  {describe(a)}   per seed {' '.join(f'{v:.4f}' for v in a)}",
                    f"  random init  {describe(b)}   per seed {' '.join(f'{v:.4f}' for v in b)}",
                    f"  difference   {mean:+.4f}, 95% CI [{low:+.4f}, {high:+.4f}] (paired by seed; "
                    f"per seed {' '.join(f'{d:+.4f}' for d in differences)})"]
    print("\n".join(summary))


if __name__ == "__main__":
    main()
