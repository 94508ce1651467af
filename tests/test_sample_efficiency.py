"""bench/sample_efficiency.py --quick end to end: every stage and part at toy sizes, its tables, plots and cache."""

import json
import os
import shutil
import subprocess
import sys

import pytest
from conftest import CLI_ENV, ROOT, SUBPROCESS_TIMEOUT

SCRIPT = os.path.join(ROOT, "bench", "sample_efficiency.py")
OBJECTIVES = ("electra", "mlm", "electra_15", "replace_mlm", "all_tokens_mlm", "teams", "mc_bert")
sys.path.insert(0, os.path.join(ROOT, "bench"))
import sample_efficiency  # noqa: E402


def run_quick(out, results_md=None, *flags):
    command = [sys.executable, SCRIPT, "--quick", f"--output_dir={out}", *flags]
    if results_md:
        command.append(f"--results_md={results_md}")
    # Every arm pre-trained, probed and fine-tuned: 153 s on a quiet 2-core machine, about 8 minutes at load 8.
    result = subprocess.run(command, env=CLI_ENV, cwd=ROOT, capture_output=True, text=True,
                            timeout=3 * SUBPROCESS_TIMEOUT)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


@pytest.fixture(scope="module")
def quick_study(tmp_path_factory):
    """The main part at toy sizes, run once: (its output directory, its stdout). Tests work on copies."""
    out = tmp_path_factory.mktemp("quick") / "study"
    return out, run_quick(out).stdout


def test_quick_study_runs_end_to_end_and_continues_from_its_cache(quick_study, tmp_path):
    out = tmp_path / "study"
    shutil.copytree(quick_study[0], out)
    assert "$ " in quick_study[1]  # it ran the data preparation and run_finetuning commands
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
    # Differences 0.02, 0.04, 0.00: mean 0.02, sd 0.02, t(0.975, 2) = 4.3027 -> half-width 0.0497.
    mean, low, high = sample_efficiency.paired_interval([0.72, 0.74, 0.70], [0.70, 0.70, 0.70])
    assert mean == pytest.approx(0.02) and high - mean == pytest.approx(4.302653 * 0.02 / 3 ** 0.5, rel=1e-5)
    assert low == pytest.approx(2 * mean - high)
    # Reviews both classifiers get right or wrong alike do not move the bootstrap; one extra right in ten does.
    ours, theirs = [1, 1, 0, 0, 1, 1, 1, 0, 1, 1], [1, 1, 0, 0, 1, 0, 1, 0, 1, 1]
    diff, low, high = sample_efficiency.bootstrap_interval(ours, theirs)
    assert diff == pytest.approx(0.1) and low == 0.0 and 0.1 <= high <= 0.3
    assert sample_efficiency.bootstrap_interval([1, 0, 1], [1, 0, 1]) == (0.0, 0.0, 0.0)


def arm_json(out, name, kind):
    return json.loads((out / "arms" / name / f"{kind}.json").read_text())


def test_quick_low_resource_and_curves_parts(quick_study, tmp_path):
    out = tmp_path / "study"
    shutil.copytree(quick_study[0], out)
    md = tmp_path / "RESULTS.md"
    main_block = f"{sample_efficiency.SECTION_BEGIN}\nthe main tables\n{sample_efficiency.SECTION_END}\n"
    md.write_text("# Results\n\n" + main_block, encoding="utf-8")
    recipe = sample_efficiency.QUICK
    (budget,), main_budget = recipe.low_resource_budgets, recipe.budgets[0]

    # The low-resource part: electra and mlm at its budget, fine-tuned, each with its curve from the checkpoints
    # its pre-training saved (then deleted); the grid and the floor come from the main part's cache.
    low = run_quick(out, md, "--part=low_resource")
    assert "no_pretraining" not in low.stdout and "lr0.001" not in low.stdout
    for objective in ("electra", "mlm"):
        name = f"{objective}_b{budget}_lr0.002"
        record, curve = arm_json(out, name, "evaluated"), arm_json(out, name, "curve")
        assert len(record["few"]) == len(record["full"]) == recipe.seeds
        steps = [point["step"] for point in curve["points"]]
        assert steps == sample_efficiency.curve_steps(recipe, record["steps"]) and len(steps) > 3
        # The last checkpoint is the model the record scored: the same held-out metrics.
        assert curve["points"][-1]["heldout"] == pytest.approx(record["heldout_metrics"], rel=1e-6)
        assert "rerun" not in curve and not (out / "arms" / name / "curve_checkpoints").exists()
        main_record = arm_json(out, f"{objective}_b{main_budget}_lr0.002", "evaluated")
        assert record["epochs"] == pytest.approx(main_record["epochs"] * record["steps"] / main_record["steps"])
        assert all(point["train"]["mlm_accuracy"] >= 0 for point in curve["points"])
    last = arm_json(out, f"electra_b{budget}_lr0.002", "curve")["points"][-1]
    counts, held = last["heldout_counts"], last["heldout"]
    assert counts["positives"] > 0 and counts["negatives"] > counts["positives"]
    assert held["rtd_recall"] == pytest.approx(
        counts["true_positives"] / (counts["true_positives"] + counts["false_negatives"]), abs=1e-6)

    # The curves part: the main part's arms with a detector, and mlm, pre-trained again from scratch; the
    # re-run reproduces the cached record's final metrics. The arms without a detector get no curve.
    run_quick(out, md, "--part=curves")
    for objective in ("electra", "electra_15", "teams", "mlm"):
        (name,) = [path.name for path in (out / "arms").iterdir()
                   if path.name.startswith(f"{objective}_b{main_budget}_lr0.002")]
        record, curve = arm_json(out, name, "pretraining"), arm_json(out, name, "curve")
        for group in ("train_metrics", "heldout_metrics"):
            assert curve["rerun"][group] == pytest.approx(record[group], rel=1e-5, abs=1e-6), (name, group)
        assert curve["points"][-1]["heldout"] == pytest.approx(record["heldout_metrics"], rel=1e-5, abs=1e-6)
    for objective in ("replace_mlm", "all_tokens_mlm", "mc_bert"):
        assert not list((out / "arms").glob(f"{objective}_*/curve.json")), objective

    text = md.read_text(encoding="utf-8")
    assert text.startswith("# Results\n\n" + main_block)  # the main part's block is kept
    block = text.split(sample_efficiency.LOW_RESOURCE_BEGIN, 1)[1].split(sample_efficiency.LOW_RESOURCE_END)[0]
    assert "Not measured yet" not in block and "| | no pre-training |" in block
    for row in (f"| demo | electra | {budget} |", f"| demo | mlm | {main_budget} |",
                f"| electra_15 b{main_budget} | {main_budget} |", f"| teams b{main_budget} |",
                f"| mlm b{budget} | {budget} |", f"| electra b{main_budget} | {main_budget} |"):
        assert row in block, row
    for name in ("accuracy_vs_epochs", "detection_curves"):
        assert f"](figures/sample_efficiency_{name}.png)" in block
        assert (tmp_path / "figures" / f"sample_efficiency_{name}.png").read_bytes()[:4] == b"\x89PNG"


def test_in_domain_arm_reads_the_training_reviews_and_resumes_the_same_run(quick_study, tmp_path):
    out = tmp_path / "study"
    shutil.copytree(quick_study[0] / "data", out / "data")
    recipe = sample_efficiency.QUICK
    paths = sample_efficiency.prepare_data(recipe, str(out))
    sample_efficiency.prepare_in_domain(recipe, paths, str(out))
    # The second corpus: the demo corpus plus the text of RT's training reviews, none of dev or test.
    reviews = set((out / "data" / "rt_train_reviews.txt").read_text(encoding="utf-8").split("\n\n"))

    def texts(path):
        return [row.rsplit("\t", 1)[0] for row in path.read_text(encoding="utf-8").splitlines()[1:]]

    assert all(text in reviews for text in texts(out / "data" / "finetune_full" / "train.tsv"))
    for split in ("dev", "test"):
        assert not any(text in reviews for text in texts(out / "data" / "rotten_tomatoes" / f"{split}.tsv")), split
    budget = recipe.low_resource_budgets[0]
    demo = sample_efficiency.pretrain(recipe, paths, sample_efficiency.Arm("electra", budget, 2e-3),
                                      str(tmp_path / "demo"), finish=False)
    arm = sample_efficiency.Arm("electra", budget, 2e-3, corpus="in_domain")
    checkpoints = str(tmp_path / "checkpoints")
    whole = sample_efficiency.pretrain(recipe, paths, arm, str(tmp_path / "arm"), checkpoints, finish=False)
    assert arm.name.endswith("_in_domain") and whole["train_metrics"] != demo["train_metrics"]
    assert whole["epochs"] < demo["epochs"]  # the same steps over more sequences
    steps = sample_efficiency.curve_steps(recipe, whole["steps"])
    assert sample_efficiency.saved_steps(checkpoints) == steps
    # Killed before the end: it resumes from the newest checkpoint before the last tenth (whose training
    # metrics the record keeps), reading the data from there; what it trains after is the same run.
    for path in (tmp_path / "checkpoints").glob(f"ckpt-{steps[-1]}.*"):
        path.unlink()
    resumed = sample_efficiency.pretrain(recipe, paths, arm, str(tmp_path / "arm"), checkpoints, finish=False)
    assert resumed["resumed_from"] == steps[-2] and "resumed_from" not in whole
    for group in ("train_metrics", "heldout_metrics"):
        assert resumed[group] == whole[group], group


def test_part_flags_are_checked_in_one_line():
    for flags, message in ((["--part=curves", "--corpus=in_domain"], "--part=low_resource only"),
                           (["--part=low_resource", "--seeds=2"], "--seeds must be between 3 and 5")):
        result = subprocess.run([sys.executable, SCRIPT, *flags], env=CLI_ENV, cwd=ROOT, capture_output=True,
                                text=True, timeout=120)
        assert result.returncode == 2 and message in result.stderr.strip().splitlines()[-1], result.stderr
