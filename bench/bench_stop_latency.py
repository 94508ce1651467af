"""How long run_pretraining takes to stop on SIGTERM during training: the preemption budget.

Starts `python -m electra_tf.run_pretraining` (resuming the model_dir, or
starting it), waits until it prints "built the training loop", lets it train
a random time, sends SIGTERM, and times (a) the signal to the "stopped by"
line, which comes after the current step ends and the checkpoint is written,
and (b) the signal to the process's exit. Repeats for `--trials`, each a new
process resuming where the last stopped. Run-pretraining flags come after `--`.

Usage (from the repository root):

    .venv/bin/python bench/bench_stop_latency.py --trials 5 -- --flagfile=electra_tf/configs/electra_small.flags \
        --train_batch_size=32 --data_dir=DATA --model_dir=/tmp/stop_latency

Prints one line per trial and the worst case; `--json` adds one JSON line.
"""

import argparse
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _trial(flags, delay):
    with tempfile.TemporaryFile("w+") as out:
        process = subprocess.Popen([sys.executable, "-m", "electra_tf.run_pretraining", *flags], cwd=ROOT,
                                   stdout=out, stderr=subprocess.DEVNULL)

        def text():
            out.seek(0)
            return out.read()

        while "built the training loop" not in text():
            if process.poll() is not None:
                raise SystemExit(f"run_pretraining ended before training:\n{text()}")
            time.sleep(0.05)
        built = re.search(r"training from step (\d+)", text())
        time.sleep(delay)
        sent = time.monotonic()
        process.send_signal(signal.SIGTERM)
        stopped_line = None
        while process.poll() is None:
            if stopped_line is None and "stopped by SIGTERM" in text():
                stopped_line = time.monotonic() - sent
            time.sleep(0.01)
        exited = time.monotonic() - sent
        stopped = re.search(r"stopped by SIGTERM at step (\d+)", text())
        if stopped is None:
            raise SystemExit(f"no 'stopped by SIGTERM' line:\n{text()}")
        start, end = int(built.group(1)), int(stopped.group(1))
        return {"delay_s": round(delay, 2), "start_step": start, "stop_step": end,
                "s_per_step": round((delay + (stopped_line or exited)) / max(end - start, 1), 2),
                "to_stopped_line_s": round(stopped_line or exited, 2), "to_exit_s": round(exited, 2),
                "returncode": process.returncode}


def main():
    argv = sys.argv[1:]
    ours, flags = (argv[: argv.index("--")], argv[argv.index("--") + 1:]) if "--" in argv else (argv, [])
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument("--min_delay", type=float, default=2.0, help="least seconds of training before SIGTERM")
    parser.add_argument("--max_delay", type=float, default=20.0, help="most seconds of training before SIGTERM")
    parser.add_argument("--seed", type=int, default=0, help="seed of the delays")
    parser.add_argument("--json", action="store_true", help="also print one JSON line for recording")
    args = parser.parse_args(ours)
    rng = random.Random(args.seed)
    results = []
    for trial in range(args.trials):
        result = _trial(flags, rng.uniform(args.min_delay, args.max_delay))
        results.append(result)
        print(f"trial {trial}: " + " ".join(f"{k}={v}" for k, v in result.items()), flush=True)
    worst = max(r["to_exit_s"] for r in results)
    print(f"worst signal-to-exit {worst:.2f} s, worst signal-to-'stopped' "
          f"{max(r['to_stopped_line_s'] for r in results):.2f} s over {len(results)} trials; "
          f"load average {os.getloadavg()[0]:.2f}")
    if args.json:
        print(json.dumps({"trials": results, "worst_to_exit_s": worst, "loadavg": os.getloadavg()}))


if __name__ == "__main__":
    main()
