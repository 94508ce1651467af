"""bench/sample_efficiency.py --quick end to end: every stage at toy sizes, its tables and plot, and the cache."""

import json
import os
import shutil
import subprocess
import sys

import pytest
from conftest import CLI_ENV, ROOT, SUBPROCESS_TIMEOUT

SCRIPT = os.path.join(ROOT, "bench", "sample_efficiency.py")
OBJECTIVES = ("electra", "mlm", "electra_15", "replace_mlm", "all_tokens_mlm", "teams", "mc_bert")


def run_quick(out, results_md=None):
    command = [sys.executable, SCRIPT, "--quick", f"--output_dir={out}"]
    if results_md:
        command.append(f"--results_md={results_md}")
    # Every arm pre-trained, probed and fine-tuned: 153 s on a quiet 2-core machine, about 8 minutes at load 8.
    result = subprocess.run(command, env=CLI_ENV, cwd=ROOT, capture_output=True, text=True,
                            timeout=3 * SUBPROCESS_TIMEOUT)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def test_quick_study_runs_end_to_end_and_continues_from_its_cache(tmp_path):
    out = tmp_path / "study"
    first = run_quick(out)
    assert "$ " in first.stdout  # it ran the data preparation and run_finetuning commands
    results = json.loads((out / "results.json").read_text())
    arms = {record["arm"]["objective"] for record in results["arms"]}
    assert arms == set(OBJECTIVES)
    budgets = results["recipe"]["budgets"]
    assert sorted({r["arm"]["budget"] for r in results["curve"]}) == sorted(budgets)
    unit = None
    for record in results["arms"]:
        # Equal compute at a budget: FLOPs within one step's worth of the electra arm's.
        electra = next(r for r in results["arms"] if r["arm"]["objective"] == "electra"
                       and r["arm"]["budget"] == record["arm"]["budget"] and not r["arm"]["changes"])
        unit = electra["flops"] / electra["steps"]
        assert abs(record["flops"] - electra["flops"]) <= record["flops"] / record["steps"] / 2 + 1e-6 * unit
        for kind in ("few", "full"):
            assert len(record[kind]) == results["recipe"]["seeds"]
            assert all(0.0 <= accuracy <= 1.0 for accuracy in record[kind].values())
        assert 0.0 <= record["probe"]["test"] <= 1.0 and record["finite"]
    mlm = next(r for r in results["curve"] if r["arm"]["objective"] == "mlm")
    electra = next(r for r in results["curve"] if r["arm"]["objective"] == "electra"
                   and r["arm"]["budget"] == mlm["arm"]["budget"])
    assert mlm["steps"] > electra["steps"]  # no generator to pay for
    text = (out / "results.md").read_text()
    for objective in OBJECTIVES:
        assert f"`{objective}`" in text or f"| {objective} |" in text, objective
    assert "no pre-training" in text and (out / "accuracy_vs_flops.png").read_bytes()[:4] == b"\x89PNG"

    # A second invocation finds every stage cached, and the tables come out the same (apart from the timing
    # line), here also written into a RESULTS.md section. Checkpoints are not part of the cache: without them,
    # only the model an unfinished fine-tuning needs is trained again (here the floor's, for its architecture).
    first, other = (out / "arms" / record["name"] / "model" for record in results["arms"][:2])
    shutil.rmtree(first)
    shutil.rmtree(other)
    for name in ("no_pretraining/evaluated.json", "no_pretraining/finetune_few/eval_results.json"):
        (out / name).unlink()
    md = tmp_path / "RESULTS.md"
    md.write_text("# Results\n\nkept\n", encoding="utf-8")
    second = run_quick(out, md)
    (command,) = [line for line in second.stdout.splitlines() if line.startswith("$ ")]
    assert "run_finetuning" in command and "no_pretraining/finetune_few" in command
    assert (first / "checkpoints" / "checkpoint").exists() and not other.exists()
    assert (out / "results.md").read_text().split("\n", 1)[1] == text.split("\n", 1)[1]
    written = md.read_text()
    assert written.startswith("# Results\n\nkept\n") and text.split("\n", 1)[1] in written


def test_paired_intervals_against_hand_computed_values():
    sys.path.insert(0, os.path.join(ROOT, "bench"))
    import sample_efficiency

    # Differences 0.02, 0.04, 0.00: mean 0.02, sd 0.02, t(0.975, 2) = 4.3027 -> half-width 0.0497.
    mean, low, high = sample_efficiency.paired_interval([0.72, 0.74, 0.70], [0.70, 0.70, 0.70])
    assert mean == pytest.approx(0.02) and high - mean == pytest.approx(4.302653 * 0.02 / 3 ** 0.5, rel=1e-5)
    assert low == pytest.approx(2 * mean - high)
    # Reviews both classifiers get right or wrong alike do not move the bootstrap; one extra right in ten does.
    ours, theirs = [1, 1, 0, 0, 1, 1, 1, 0, 1, 1], [1, 1, 0, 0, 1, 0, 1, 0, 1, 1]
    diff, low, high = sample_efficiency.bootstrap_interval(ours, theirs)
    assert diff == pytest.approx(0.1) and low == 0.0 and 0.1 <= high <= 0.3
    assert sample_efficiency.bootstrap_interval([1, 0, 1], [1, 0, 1]) == (0.0, 0.0, 0.0)
