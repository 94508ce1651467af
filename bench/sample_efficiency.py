r"""Sample efficiency: replaced-token detection against masked-LM pre-training at equal compute, on a small corpus.

    .venv/bin/python bench/sample_efficiency.py                 # the study: about 2.5 hours on 2 cores
    .venv/bin/python bench/sample_efficiency.py --quick         # every stage at toy sizes, in minutes
    .venv/bin/python bench/sample_efficiency.py --results_md=bench/RESULTS.md   # also rewrite its section there
    .venv/bin/python bench/sample_efficiency.py --part=low_resource [--corpus=in_domain]  # many epochs
    .venv/bin/python bench/sample_efficiency.py --part=curves    # the main part's detection and MLM curves

ELECTRA's claim (Clark et al. 2020) is that, at equal pre-training compute,
replaced-token detection gives better downstream models than masked-language
modelling, because it learns from every token. Its Table 5 (GLUE dev, base
size): BERT 82.2, Replace MLM 82.4, ELECTRA 15% 82.4, All-Tokens MLM 84.3,
ELECTRA 85.0. This study asks the same of small models trained for minutes
on the demo corpus (about 1.2M tokens, so longer budgets are many epochs).

Every stage is cached under --output_dir; a second invocation continues
where the first stopped (an interrupted arm starts again). The records are
JSON; an arm whose checkpoint is gone is pre-trained again only if one of
its fine-tunings is unfinished, so a cache copied without its models resumes:

1. Data: the demo corpus (data_prep.export_corpus) with documents held out, a
   vocabulary learnt on the rest, TFRecords; Rotten Tomatoes
   (data_prep.export_rotten_tomatoes).
2. Recipe: the same learning-rate grid for electra and mlm at the smallest
   budget, each objective keeping the rate whose linear probe is best on RT
   dev; the generator-based arms use electra's.
3. Arms, all with equal pre-training FLOPs at a budget (`pretraining_flops`):
   electra and mlm at every budget; electra_15, replace_mlm, all_tokens_mlm
   and generators of 1/8, 1/2 and 1 x the width at the middle one; the
   follow-ups teams and mc_bert there too.
4. Evaluation on Rotten Tomatoes, scored on its test split: a linear probe
   (logistic regression on the mean-pooled last two layers, C chosen on dev),
   fine-tuning on a few labels and on all of them (run_finetuning, N seeds,
   the last epoch's accuracy: no selection on the scored split); a model with
   no pre-training as the floor.
5. Report: results.json, results.md (tables, paired confidence intervals
   against mlm) and accuracy_vs_flops.png in --output_dir.

The low-resource question (does replaced-token detection overtake masked-LM
when a small corpus is read many times?) has two more parts, each cached the
same way and using the main part's grid and floor:

- `--part=low_resource`: electra and mlm at `low_resource_budgets` (about 11
  and 22 epochs), evaluated as above; with `--corpus=in_domain` pre-trained
  on the demo corpus plus the text of RT's training reviews.
- `--part=curves`: the curves of the main part's arms with a replaced-token
  detector (electra at each budget, the generator sizes, electra_15, teams)
  and of its mlm arms, pre-trained again (the same runs: their randomness is
  keyed by step) with checkpoints every `curve_every` steps; their
  fine-tuning records stand. The low-resource arms' curves come with them.

A curve is the pretrainer's test metrics at each checkpoint on the held-out
sequences (rtd_auc, recall, precision, the generator's or mlm's MLM accuracy)
and on as many training sequences. Both parts write low_resource.md,
accuracy_vs_epochs.png and detection_curves.png from whatever the cache holds.
"""

import argparse
import concurrent.futures
import dataclasses
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PAPER_TABLE_5 = {"mlm": 82.2, "replace_mlm": 82.4, "electra_15": 82.4, "all_tokens_mlm": 84.3, "electra": 85.0}
PAPER_NAMES = {"mlm": "BERT (MLM with [MASK])", "replace_mlm": "Replace MLM", "electra_15": "ELECTRA 15%",
               "all_tokens_mlm": "All-Tokens MLM", "electra": "ELECTRA"}
EVALUATIONS = ("probe", "few", "full")
SECTION_BEGIN = "<!-- sample_efficiency: begin (written by bench/sample_efficiency.py) -->"
SECTION_END = "<!-- sample_efficiency: end -->"
FINETUNING_WORKERS = 2
# The pre-training text of each corpus condition: the demo corpus, or it and the unlabeled text of the
# Rotten Tomatoes training reviews (in-domain text; never the dev or test reviews).
CORPORA = ("demo", "in_domain")
# The objectives whose kept model has a replaced-token detector (their curves show detection) and mlm.
DETECTORS = ("electra", "electra_15", "teams")
CURVE_OBJECTIVES = DETECTORS + ("mlm",)
LOW_RESOURCE_BEGIN = "<!-- sample_efficiency low_resource: begin (written by bench/sample_efficiency.py) -->"
LOW_RESOURCE_END = "<!-- sample_efficiency low_resource: end -->"


# ---------------------------------------------------------------- FLOPs


def encoder_flops(seq, embedding, hidden, intermediate, layers):
    """Forward matmul FLOPs (2 per multiply-add) of one tower on one example of `seq` tokens.

    The projection of the embeddings (when their width is not the hidden
    size), then per layer: Q, K, V and the output projection (4 x seq x h x h),
    the attention scores and their weighted sum (2 x seq x seq x h), and the
    feed-forward layer (2 x seq x h x intermediate).
    """
    projection = 2 * seq * embedding * hidden if embedding != hidden else 0
    layer = 2 * (4 * seq * hidden * hidden + 2 * seq * seq * hidden + 2 * seq * hidden * intermediate)
    return projection + layers * layer


def vocabulary_head_flops(positions, hidden, embedding, vocab):
    """A masked-LM head at `positions` positions: dense(hidden -> embedding), then the tied output layer."""
    return 2 * positions * (hidden * embedding + embedding * vocab)


def detection_head_flops(seq, hidden):
    """The discriminator's head: dense(hidden -> hidden), then dense(hidden -> 1), at every position."""
    return 2 * seq * (hidden * hidden + hidden)


def selection_head_flops(positions, hidden, embedding, candidates):
    """A selection head (TEAMS, MC-BERT): dense(hidden -> embedding), then a dot product with each candidate."""
    return 2 * positions * (hidden * embedding + candidates * embedding)


def pretraining_flops(config):
    """Pre-training FLOPs per example: 3 x the forward matmuls of the objective's towers and heads.

    Backpropagation costs about twice the forward pass (a gradient for the
    inputs and one for the weights), hence 3 x; each tower is backpropagated
    once, the generator by its MLM loss only. The vocabulary heads run at the
    `max_predictions_per_seq` slots, except All-Tokens MLM's and MC-BERT's
    meta controller's, at every position; TEAMS adds its detection task's own
    layers and its selection head, MC-BERT its choice among candidates at
    every position. Embedding lookups, softmaxes and layer norms are left out: at
    these sizes the matmuls are most of the work.

    Args:
        config: an `ElectraConfig`.
    """
    from electra_tf.pretraining.objectives import OBJECTIVES

    seq, slots, vocab = config.max_seq_length, config.max_predictions_per_seq, config.vocab_size

    def tower(name):
        hidden, _, intermediate = config.tower_dims(name)
        return encoder_flops(seq, config.tower_embedding_size(name), hidden, intermediate, config.tower_layers(name))

    def head(name, positions):
        return vocabulary_head_flops(positions, config.tower_dims(name)[0], config.tower_embedding_size(name), vocab)

    main = tower("discriminator")
    hidden, _, intermediate = config.tower_dims("discriminator")
    task_layers = encoder_flops(seq, hidden, hidden, intermediate, config.num_layers - config.task_agnostic_layers)
    candidates = config.candidate_size or getattr(OBJECTIVES[config.objective], "default_candidate_size", 0)
    generator = tower("generator") + head("generator", slots)
    forward = {
        "mlm": main + head("discriminator", slots),
        "electra": generator + main + detection_head_flops(seq, config.hidden_size),
        "electra_15": generator + main + detection_head_flops(seq, config.hidden_size),
        "replace_mlm": generator + main + head("discriminator", slots),
        "all_tokens_mlm": generator + main + detection_head_flops(seq, config.hidden_size)
        + head("discriminator", seq),
        "teams": generator + main + task_layers + detection_head_flops(seq, config.hidden_size)
        + selection_head_flops(slots, config.hidden_size, config.embedding_size, candidates),
        # The meta controller's softmax at every position proposes the candidates.
        "mc_bert": tower("generator") + head("generator", seq) + main
        + selection_head_flops(seq, config.hidden_size, config.embedding_size, candidates),
    }[config.objective]
    return 3 * forward


# ---------------------------------------------------------------- the recipe and the arms


@dataclasses.dataclass(frozen=True)
class Recipe:
    """Everything the study holds fixed. `budgets` are in ELECTRA steps: budget b = the FLOPs of b steps of
    `electra` with this model and batch; every arm at that budget gets the steps its own FLOPs allow."""

    model: dict
    batch_size: int
    budgets: tuple
    middle: int  # index of the budget the ablations and the generator sweep use
    learning_rates: tuple  # the grid tried at the smallest budget, for electra and mlm alike
    warmup_fraction: float
    generator_sizes: tuple
    seeds: int
    few_labels: int
    finetune_flags: tuple
    few_label_epochs: int
    full_epochs: int
    corpus_documents: int  # 0: all
    heldout_documents: int
    vocab_size: int
    rt_limits: tuple = ()  # (train, dev, test) reviews kept, for --quick
    low_resource_budgets: tuple = ()  # --part=low_resource: electra and mlm at these budgets, many epochs
    curve_every: int = 0  # the detection and MLM curves: a checkpoint every this many steps


STUDY = Recipe(
    # The demo's model (electra_tf/configs/demo.flags) at 128 tokens: no dropout (nothing to regularise in so few
    # steps), a 1/4 generator sampled at a temperature falling from 2 to 1 (a young generator at 1 gives
    # the discriminator a task it cannot learn; Fast-ELECTRA lowers it over training).
    model=dict(embedding_size=128, hidden_size=128, num_layers=2, num_heads=2, intermediate_size=512,
               generator_hidden_size=0.25, max_seq_length=128, max_position_embeddings=128,
               hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, temperature=2.0, final_temperature=1.0),
    # Fine-tuning as electra_tf/configs/demo_finetune.flags: 3 epochs of all labels, 10 of 500 (160 updates; with
    # fewer, most seeds stay at the majority class: bench/RESULTS.md, "Fine-tuning").
    batch_size=32, budgets=(250, 1000, 2000), middle=1, learning_rates=(5e-4, 1e-3, 2e-3), warmup_fraction=0.06,
    generator_sizes=(0.125, 0.25, 0.5, 1.0), seeds=5, few_labels=500,
    finetune_flags=("--learning_rate=3e-4", "--max_seq_length=64"), few_label_epochs=10, full_epochs=3,
    corpus_documents=0, heldout_documents=500, vocab_size=8000,
    # About 11 and 22 epochs of the demo corpus (budget 2000 is 5.6).
    low_resource_budgets=(4000, 8000), curve_every=250)

# Every stage and table at toy sizes, for the tests: one budget, one learning rate, no extra generator size
# and one fine-tuning seed (each arm costs two run_finetuning processes).
QUICK = Recipe(
    model=dict(embedding_size=32, hidden_size=64, num_layers=2, num_heads=2, intermediate_size=128,
               generator_hidden_size=0.25, max_seq_length=64, max_position_embeddings=128,
               hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, temperature=2.0, final_temperature=1.0),
    batch_size=8, budgets=(6,), middle=0, learning_rates=(2e-3,), warmup_fraction=0.2,
    generator_sizes=(0.25,), seeds=1, few_labels=40,
    finetune_flags=("--learning_rate=3e-4", "--max_seq_length=32", "--train_batch_size=16"), few_label_epochs=2,
    full_epochs=1, corpus_documents=300, heldout_documents=30, vocab_size=1500, rt_limits=(120, 60, 60),
    low_resource_budgets=(12,), curve_every=3)


@dataclasses.dataclass(frozen=True)
class Arm:
    """One pre-training run: an objective at a budget and learning rate, with config changes, on a corpus."""

    objective: str
    budget: int
    learning_rate: float
    changes: tuple = ()  # ((ElectraConfig field, value), ...)
    corpus: str = "demo"  # a key of CORPORA

    @property
    def name(self):
        extra = "".join(f"_{field}{value:g}" for field, value in self.changes)
        corpus = "" if self.corpus == "demo" else f"_{self.corpus}"
        return f"{self.objective}_b{self.budget}_lr{self.learning_rate:g}{extra}{corpus}"


def electra_config(recipe, vocab_file, arm=None):
    from electra_tf import ElectraConfig
    from electra_tf.text.vocab import special_token_ids

    changes = dict(arm.changes) if arm else {}
    objective = arm.objective if arm else "electra"
    return ElectraConfig.for_size("tiny", **{**recipe.model, **changes}, objective=objective,
                                  **special_token_ids(vocab_file))


def steps_for(recipe, vocab_file, arm):
    """The steps of `arm` whose FLOPs equal `arm.budget` steps of electra with the recipe's generator."""
    unit = pretraining_flops(electra_config(recipe, vocab_file))
    return max(1, round(arm.budget * unit / pretraining_flops(electra_config(recipe, vocab_file, arm))))


def study_arms(recipe, rates):
    """The arms after the grid, by budget: electra and mlm at every budget, the rest at the middle budget."""
    middle = recipe.budgets[recipe.middle]
    arms = [Arm(objective, budget, rates[objective]) for budget in recipe.budgets for objective in ("electra", "mlm")]
    arms += [Arm(objective, middle, rates["electra"]) for objective in ("electra_15", "replace_mlm", "all_tokens_mlm")]
    base = recipe.model["generator_hidden_size"]
    arms += [Arm("electra", middle, rates["electra"], (("generator_hidden_size", size),))
             for size in recipe.generator_sizes if size != base]
    return sorted(arms + followup_arms(middle, rates["electra"]), key=lambda arm: arm.budget)


def low_resource_arms(recipe, rates, corpus):
    """electra and mlm at the low-resource budgets on `corpus`, with the learning rates the grid kept."""
    return [Arm(objective, budget, rates[objective], corpus=corpus)
            for budget in recipe.low_resource_budgets for objective in ("electra", "mlm")]


def curve_arms(recipe, rates):
    """The arms of the main part whose curves are measured: those with a replaced-token detector, and mlm."""
    return [arm for arm in study_arms(recipe, rates) if arm.objective in CURVE_OBJECTIVES]


def followup_arms(budget, learning_rate):
    """TEAMS and MC-BERT at `budget`, with electra's learning rate.

    TEAMS as Model Garden shapes it (a generator of the discriminator's width
    and half its depth, sharing its bottom layers): at two layers that is one
    generator layer, and it is the discriminator's bottom one. MC-BERT's meta
    controller is electra's generator.
    """
    teams = (("generator_hidden_size", 1.0), ("generator_layers", 0.5), ("shared_generator_layers", 1.0))
    return [Arm("teams", budget, learning_rate, teams), Arm("mc_bert", budget, learning_rate)]


# ---------------------------------------------------------------- helpers


def run_command(command, log_path):
    """Runs a command from the repository root with its output appended to `log_path`; raises if it fails."""
    print("$ " + " ".join(command), flush=True)
    with open(log_path, "a", encoding="utf-8") as log:
        result = subprocess.run(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    if result.returncode:
        raise SystemExit(f"failed ({result.returncode}): {' '.join(command)}; see {log_path}")


def read_json(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def write_json(path, value):
    from electra_tf.utils.atomic import write_text_atomically

    write_text_atomically(path, json.dumps(value, indent=2, sort_keys=True))


def cached(path, compute):
    """`compute()`'s JSON result, computed once and kept at `path`."""
    if os.path.exists(path):
        return read_json(path)
    value = compute()
    write_json(path, value)
    return value


# ---------------------------------------------------------------- data


def prepare_data(recipe, out):
    """Corpus -> held-out split -> vocabulary -> TFRecords; Rotten Tomatoes TSVs. Returns the paths."""
    sys.path.insert(0, os.path.join(ROOT, "bench"))
    from split_corpus import split_documents

    from electra_tf.utils.atomic import write_text_atomically

    data = os.path.join(out, "data")
    os.makedirs(data, exist_ok=True)
    log = os.path.join(out, "data.log")
    python = sys.executable
    paths = {name: os.path.join(data, name) for name in ("corpus.txt", "train.txt", "heldout.txt", "vocab.txt")}
    if not os.path.exists(paths["corpus.txt"]):
        limit = [f"--max_documents={recipe.corpus_documents}"] if recipe.corpus_documents else []
        run_command([python, "-m", "data_prep.export_corpus", f"--output={paths['corpus.txt']}", *limit], log)
    if not os.path.exists(paths["train.txt"]):
        with open(paths["corpus.txt"], encoding="utf-8") as f:
            heldout, train = split_documents(f.read(), recipe.heldout_documents)
        write_text_atomically(paths["heldout.txt"], heldout)
        write_text_atomically(paths["train.txt"], train)
    if not os.path.exists(paths["vocab.txt"]):
        run_command([python, "-m", "data_prep.build_vocab", f"--input={paths['train.txt']}",
                     f"--vocab_size={recipe.vocab_size}", f"--output={paths['vocab.txt']}"], log)
    seq = recipe.model["max_seq_length"]
    for split in ("train", "heldout"):
        records = os.path.join(data, f"{split}_records")
        if not os.path.exists(os.path.join(records, "dataset_info.json")):
            run_command([python, "-m", "data_prep.build_pretraining_dataset", f"--input={paths[f'{split}.txt']}",
                         f"--vocab_file={paths['vocab.txt']}", f"--output_dir={records}", f"--max_seq_length={seq}",
                         "--num_out_files=4" if split == "train" else "--num_out_files=1", "--overwrite"], log)
        paths[f"{split}_records"] = records
    paths.update(prepare_rotten_tomatoes(recipe, data, log))
    paths["train_patterns"] = {"demo": [os.path.join(paths["train_records"], "pretrain_data.tfrecord*")]}
    paths["train_examples"] = {"demo": read_json(os.path.join(paths["train_records"], "dataset_info.json"))[
        "num_examples"]}
    return paths


def prepare_in_domain(recipe, paths, out):
    """Adds the in_domain corpus to `paths`: the demo corpus's records and those of RT's training reviews.

    Only the training split's text (the labels dropped), tokenized with the demo corpus's vocabulary; each
    review is a document, packed across documents (a review is about 25 tokens) into their own records, so
    the demo corpus's sequences are the same as in the other condition.
    """
    from electra_tf.utils.atomic import write_text_atomically

    data = os.path.join(out, "data")
    text_path = os.path.join(data, "rt_train_reviews.txt")
    records = os.path.join(data, "rt_train_reviews_records")
    if not os.path.exists(os.path.join(records, "dataset_info.json")):
        write_text_atomically(text_path, "".join(f"{text}\n\n" for text, _ in paths["probe"]["train"]))
        run_command([sys.executable, "-m", "data_prep.build_pretraining_dataset", f"--input={text_path}",
                     f"--vocab_file={paths['vocab.txt']}", f"--output_dir={records}",
                     f"--max_seq_length={recipe.model['max_seq_length']}", "--num_out_files=1",
                     "--pack_across_documents", "--overwrite"], os.path.join(out, "data.log"))
    paths["train_patterns"]["in_domain"] = [*paths["train_patterns"]["demo"],
                                            os.path.join(records, "pretrain_data.tfrecord*")]
    paths["train_examples"]["in_domain"] = (paths["train_examples"]["demo"]
                                            + read_json(os.path.join(records, "dataset_info.json"))["num_examples"])


def prepare_rotten_tomatoes(recipe, data, log):
    """RT's train/dev/test, and the fine-tuning directories: dev.tsv there is RT's test split (scored, never
    selected on); `train.tsv` all labels, or for `few` the first `few_labels` (the file is shuffled)."""
    from electra_tf.utils.atomic import write_text_atomically

    rt = os.path.join(data, "rotten_tomatoes")
    if not os.path.exists(os.path.join(rt, "test.tsv")):
        run_command([sys.executable, "-m", "data_prep.export_rotten_tomatoes", f"--output_dir={rt}", "--overwrite"],
                    log)
    rows = {}
    for split in ("train", "dev", "test"):
        with open(os.path.join(rt, f"{split}.tsv"), encoding="utf-8") as f:
            lines = f.read().splitlines()
        rows[split] = lines[1:]
    if recipe.rt_limits:
        rows = {split: rows[split][:limit] for split, limit in zip(("train", "dev", "test"), recipe.rt_limits)}
    header = "text\tlabel"
    paths = {}
    for name, train in (("full", rows["train"]), ("few", rows["train"][:recipe.few_labels])):
        directory = os.path.join(data, f"finetune_{name}")
        os.makedirs(directory, exist_ok=True)
        for split, split_rows in (("train", train), ("dev", rows["test"])):
            write_text_atomically(os.path.join(directory, f"{split}.tsv"), "\n".join([header, *split_rows]) + "\n")
        paths[f"finetune_{name}"] = directory
    paths["probe"] = {split: [line.rsplit("\t", 1) for line in split_rows] for split, split_rows in rows.items()}
    return paths


# ---------------------------------------------------------------- pre-training


def pretrain(recipe, paths, arm, arm_dir, checkpoints=None, finish=True):
    """Trains `arm` in this process; returns its record.

    Args:
        checkpoints: None, or a directory for a checkpoint at step 0, every
            `recipe.curve_every` steps and at the end (the curves are measured
            on them, `measure_curve`). An interrupted run resumes from the
            newest one at or before the last tenth of training (whose training
            metrics the record reports): the data is read from that step on and
            the randomness is keyed by step, so the run is the same.
        finish: also write the model_dir run_finetuning reads and probe it.
    """
    import keras
    import numpy as np
    import tensorflow as tf

    from electra_tf import ElectraPretrainer, OptimizerConfig, create_optimizer
    from electra_tf.data.input_pipeline import make_pretraining_dataset
    from electra_tf.training import run_state

    config = electra_config(recipe, paths["vocab.txt"], arm)
    steps = steps_for(recipe, paths["vocab.txt"], arm)
    keras.backend.clear_session()
    keras.utils.set_random_seed(config.seed)
    pretrainer = ElectraPretrainer(config, steps)
    pretrainer.compile(optimizer=create_optimizer(OptimizerConfig(
        learning_rate=arm.learning_rate, num_train_steps=steps,
        num_warmup_steps=max(1, round(recipe.warmup_fraction * steps)), lr_decay_power=1.0, bias_correction=True)))
    window = max(1, steps // 10)
    start, manager = 0, None
    if checkpoints:
        manager = tf.train.CheckpointManager(
            tf.train.Checkpoint(model=pretrainer, optimizer=pretrainer.optimizer), checkpoints, max_to_keep=None)
        start = resume(manager, curve_steps(recipe, steps), steps - window)
    seq = config.max_seq_length
    # The same reader and seed for every arm: each sees the same batches in the same order.
    batches = iter(make_pretraining_dataset(paths["train_patterns"][arm.corpus], recipe.batch_size, seq, seed=0,
                                            deterministic=True, skip_batches=start))
    step_fn = tf.function(pretrainer.train_step)
    saved = set(curve_steps(recipe, steps)) if manager else set()
    started, cpu = time.time(), time.process_time()
    for step in range(start, steps):
        if step in saved and (step == 0 or step > start):
            manager.save(checkpoint_number=step)
        if step == steps - window:
            pretrainer.reset_metrics()  # report the last tenth of training
        metrics = step_fn(next(batches))
    if manager:
        manager.save(checkpoint_number=steps)
    final = {name: float(value) for name, value in metrics.items()}
    seconds, cpu_seconds = time.time() - started, time.process_time() - cpu
    heldout = make_pretraining_dataset(os.path.join(paths["heldout_records"], "pretrain_data.tfrecord*"),
                                       recipe.batch_size, seq, shuffle=False, repeat=False)
    record = {"arm": dataclasses.asdict(arm), "name": arm.name, "steps": steps,
              "flops": pretraining_flops(config) * recipe.batch_size * steps,
              "epochs": steps * recipe.batch_size / paths["train_examples"][arm.corpus],
              "seconds": seconds, "cpu_seconds": cpu_seconds, "train_metrics": final,
              "heldout_metrics": evaluate_batches(pretrainer, tf.function(pretrainer.test_step), heldout)[0],
              "finite": bool(np.isfinite(final["loss"]))}
    if start:
        record["resumed_from"] = start  # seconds and cpu_seconds count the steps after it
    if finish:
        model_dir = os.path.join(arm_dir, "model")
        state = run_state.start_or_check(model_dir, config, paths["vocab.txt"], True)
        tf.train.CheckpointManager(tf.train.Checkpoint(model=pretrainer), state.checkpoint_dir, 1).save(steps)
        record.update(model_dir=model_dir, probe=probe_accuracy(pretrainer.kept_model().encoder, paths, seq))
    return record


def curve_steps(recipe, steps):
    """The steps of an arm's curve: 0, every `recipe.curve_every`, and its last."""
    return sorted(set(range(0, steps, recipe.curve_every)) | {steps})


def saved_steps(directory):
    """The steps of the checkpoints in `directory` (`ckpt-<step>`)."""
    import tensorflow as tf

    state = tf.train.get_checkpoint_state(directory) if os.path.isdir(directory) else None
    paths = state.all_model_checkpoint_paths if state else []
    return sorted(int(path.rsplit("-", 1)[1]) for path in paths if os.path.exists(path + ".index"))


def resume(manager, steps, latest):
    """Restores the newest checkpoint at one of `steps` up to `latest`; returns its step (0: none)."""
    usable = [step for step in saved_steps(manager.directory) if step in steps and step <= latest]
    if not usable:
        return 0
    step = usable[-1]
    manager.checkpoint.restore(os.path.join(manager.directory, f"ckpt-{step}")).assert_existing_objects_matched()
    print(f"{os.path.basename(os.path.dirname(manager.directory))}: resuming from step {step}", flush=True)
    return step


def evaluate_batches(pretrainer, test_fn, batches):
    """The pretrainer's metrics over `batches` by `test_fn` (its `test_step`: the masks and samples of step
    0), and the replaced-token counts behind its detection metrics (empty without a detector)."""
    pretrainer.reset_metrics()
    for batch in batches:
        metrics = test_fn(batch)
    by_name = {metric.name: metric for metric in pretrainer.metrics}
    counts = {}
    if "rtd_auc" in by_name:
        auc, recall, precision = by_name["rtd_auc"], by_name["rtd_recall"], by_name["rtd_precision"]
        # At the lowest threshold every position is predicted replaced: its counts are the totals.
        counts = {"positives": float(auc.true_positives[0] + auc.false_negatives[0]),
                  "negatives": float(auc.false_positives[0] + auc.true_negatives[0]),
                  "true_positives": float(recall.true_positives[0]),
                  "false_negatives": float(recall.false_negatives[0]),
                  "false_positives": float(precision.false_positives[0])}
    return {name: float(value) for name, value in metrics.items()}, counts


# ---------------------------------------------------------------- the curves


def measure_curve(recipe, paths, arm, checkpoints):
    """The pretrainer's test metrics at every step of the curve, from `pretrain`'s checkpoints.

    On the held-out sequences, and on as many training sequences (the demo
    corpus's first ones, the same for every arm), so that memorising the
    corpus shows as training accuracy rising above held-out accuracy.
    """
    import keras
    import tensorflow as tf

    from electra_tf import ElectraPretrainer
    from electra_tf.data.input_pipeline import make_pretraining_dataset

    config = electra_config(recipe, paths["vocab.txt"], arm)
    steps = steps_for(recipe, paths["vocab.txt"], arm)
    keras.backend.clear_session()
    pretrainer = ElectraPretrainer(config, steps)
    seq = config.max_seq_length
    heldout = list(make_pretraining_dataset(os.path.join(paths["heldout_records"], "pretrain_data.tfrecord*"),
                                            recipe.batch_size, seq, shuffle=False, repeat=False))
    train = list(make_pretraining_dataset(paths["train_patterns"]["demo"], recipe.batch_size, seq, shuffle=False,
                                          repeat=False).take(len(heldout)))
    test_fn = tf.function(pretrainer.test_step)
    checkpoint = tf.train.Checkpoint(model=pretrainer)
    points = []
    for step in curve_steps(recipe, steps):
        checkpoint.restore(os.path.join(checkpoints, f"ckpt-{step}")).expect_partial().assert_existing_objects_matched()
        point = {"step": step, "epochs": step * recipe.batch_size / paths["train_examples"][arm.corpus]}
        for name, batches in (("heldout", heldout), ("train", train)):
            point[name], counts = evaluate_batches(pretrainer, test_fn, batches)
            if counts:
                point[f"{name}_counts"] = counts
        points.append(point)
    return {"points": points, "heldout_sequences": sum(int(b["input_ids"].shape[0]) for b in heldout),
            "train_sequences": sum(int(b["input_ids"].shape[0]) for b in train)}


def arm_curve(recipe, paths, arm, arm_dir, record):
    """The arm's curve (cached in curve.json), from the checkpoints its pre-training left, or, when they are
    gone, from pre-training it again (the same run: its randomness is keyed by step), beside the record."""
    checkpoints = os.path.join(arm_dir, "curve_checkpoints")

    def compute():
        rerun = None
        if not set(curve_steps(recipe, record["steps"])) <= set(saved_steps(checkpoints)):
            rerun = pretrain(recipe, paths, arm, arm_dir, checkpoints, finish=False)
        curve = {"arm": dataclasses.asdict(arm), "name": arm.name, "steps": record["steps"],
                 "every": recipe.curve_every, **measure_curve(recipe, paths, arm, checkpoints)}
        if rerun:
            curve["rerun"] = {key: rerun[key] for key in ("train_metrics", "heldout_metrics", "seconds", "cpu_seconds")}
        return curve

    curve = cached(os.path.join(arm_dir, "curve.json"), compute)
    shutil.rmtree(checkpoints, ignore_errors=True)  # about 20 MB each; the curve is what they were for
    return curve


# ---------------------------------------------------------------- evaluation


def layer_features(encoder, ids, segments, mask, layers=2):
    """The mean over real tokens of each of the last `layers` blocks' outputs, concatenated."""
    import tensorflow as tf

    x = encoder.embeddings(ids, segments, training=False)
    if encoder.projection is not None:
        x = encoder.projection(x)
    outputs = []
    padding = tf.cast(mask, "bool")
    for block in encoder.blocks:
        x = block(x, padding_mask=padding, training=False)
        outputs.append(x)
    weights = tf.cast(mask, tf.float32)[:, :, None]
    pooled = [tf.reduce_sum(tf.cast(h, tf.float32) * weights, 1) / tf.reduce_sum(weights, 1) for h in outputs]
    return tf.concat(pooled[-layers:], axis=-1).numpy()


def encode_reviews(encoder, vocab_file, texts, seq):
    import numpy as np

    from electra_tf.text.tokenization import WordpieceTokenizer
    from electra_tf.text.vocab import load_vocab, special_token_ids

    special = special_token_ids(vocab_file)
    tokenized = WordpieceTokenizer(load_vocab(vocab_file), lowercase=True).tokenize_to_lists(texts)
    ids = np.full((len(texts), seq), special["pad_id"], np.int32)
    for row, pieces in enumerate(tokenized):
        tokens = [special["cls_id"], *pieces[: seq - 2], special["sep_id"]]
        ids[row, : len(tokens)] = tokens
    mask = (np.arange(seq)[None, :] < (ids != special["pad_id"]).sum(1)[:, None]).astype(np.int32)
    features = [layer_features(encoder, ids[i:i + 256], 0 * ids[i:i + 256], mask[i:i + 256])
                for i in range(0, len(ids), 256)]
    return np.concatenate(features)


def probe_accuracy(encoder, paths, seq):
    """Logistic regression on frozen features: C chosen on RT dev; accuracy and per-review correctness on test."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    seq = min(seq, 64)
    data = {split: (encode_reviews(encoder, paths["vocab.txt"], [t for t, _ in rows], seq),
                    np.array([label == "fresh" for _, label in rows], np.int32))
            for split, rows in paths["probe"].items()}
    scaler = StandardScaler().fit(data["train"][0])
    scaled = {split: (scaler.transform(x), y) for split, (x, y) in data.items()}
    best = None
    for c in (0.001, 0.01, 0.1, 1.0):
        model = LogisticRegression(C=c, max_iter=2000).fit(*scaled["train"])
        dev = model.score(*scaled["dev"])
        if best is None or dev > best[0]:
            best = (dev, c, model)
    dev, c, model = best
    correct = model.predict(scaled["test"][0]) == scaled["test"][1]
    return {"dev": dev, "C": c, "test": float(correct.mean()), "test_correct": correct.astype(int).tolist()}


def finetune(recipe, paths, init, output_dir, kind, random_init=False):
    """run_finetuning over `recipe.seeds` seeds; returns each seed's last-epoch accuracy on RT test."""
    results_path = os.path.join(output_dir, "eval_results.json")
    if not os.path.exists(results_path):
        epochs = recipe.few_label_epochs if kind == "few" else recipe.full_epochs
        run_command([sys.executable, "-m", "electra_tf.run_finetuning", "--task=custom",
                     f"--data_dir={paths[f'finetune_{kind}']}", "--text_a_column=text", "--label_column=label",
                     f"--init_checkpoint={init}", *(["--random_init"] if random_init else []),
                     f"--output_dir={output_dir}", f"--num_trials={recipe.seeds}", "--seed=0",
                     f"--num_train_epochs={epochs}", "--noexport", "--overwrite", *recipe.finetune_flags],
                    os.path.join(os.path.dirname(output_dir), f"finetune_{kind}.log"))
    results = read_json(results_path)
    return {str(trial["seed"]): trial["history"][-1]["accuracy"] for trial in results["trials"]}


# ---------------------------------------------------------------- statistics and the report


def paired_interval(a, b):
    """Mean of a - b over pairs and its 95% Student's t interval."""
    import scipy.stats

    differences = [x - y for x, y in zip(a, b)]
    mean = statistics.mean(differences)
    if len(differences) < 2:
        return mean, float("nan"), float("nan")
    half = scipy.stats.t.ppf(0.975, len(differences) - 1) * statistics.stdev(differences) / math.sqrt(len(differences))
    return mean, mean - half, mean + half


def bootstrap_interval(a, b, resamples=2000, seed=0):
    """Accuracy difference of two classifiers on the same test reviews, 95% paired bootstrap interval."""
    import numpy as np

    a, b = np.asarray(a, float), np.asarray(b, float)
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(a), (resamples, len(a)))
    differences = (a[draws] - b[draws]).mean(1)
    return float((a - b).mean()), float(np.percentile(differences, 2.5)), float(np.percentile(differences, 97.5))


def scores(record, kind):
    """(mean, sd, values) of an evaluation; the probe has one value."""
    if kind == "probe":
        return record["probe"]["test"], 0.0, [record["probe"]["test"]]
    values = [record[kind][seed] for seed in sorted(record[kind], key=int)]
    return statistics.mean(values), statistics.stdev(values) if len(values) > 1 else 0.0, values


def versus(record, reference, kind):
    if kind == "probe":
        return bootstrap_interval(record["probe"]["test_correct"], reference["probe"]["test_correct"])
    seeds = sorted(set(record[kind]) & set(reference[kind]), key=int)
    return paired_interval([record[kind][s] for s in seeds], [reference[kind][s] for s in seeds])


def cell(record, kind, reference=None):
    mean, sd, values = scores(record, kind)
    text = f"{100 * mean:.1f}" + (f" ± {100 * sd:.1f}" if len(values) > 1 else "")
    if reference is not None and reference is not record:
        text += f" ({difference(*versus(record, reference, kind))})"
    return text


def difference(diff, low, high):
    """`+1.2 [-0.3, +2.7]`: a difference in points and its interval (none for one seed: nan)."""
    return f"{100 * diff:+.1f}" + ("" if math.isnan(low) else f" [{100 * low:+.1f}, {100 * high:+.1f}]")


def plot_accuracy(path, series, floor, few_labels, x_label):
    """Rotten Tomatoes test accuracy in three panels (probe, few labels, all labels) against a log x.

    Args:
        series: [(label, colour, line style, marker, [(x, evaluated record), ...])]; error bars: the sd
            over seeds.
        floor: the no-pre-training record (a dashed line), or None.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 3, figsize=(13, 4), sharex=True)
    titles = {"probe": "linear probe", "few": f"fine-tuned, {few_labels} labels", "full": "fine-tuned, all labels"}
    for axis, kind in zip(axes, EVALUATIONS):
        for label, colour, style, marker, points in series:
            if points:
                x, records = zip(*sorted(points, key=lambda point: point[0]))
                axis.errorbar(x, [100 * scores(r, kind)[0] for r in records],
                              yerr=[100 * scores(r, kind)[1] for r in records], marker=marker, capsize=3, color=colour,
                              linestyle=style, label=label)
        if floor:
            axis.axhline(100 * scores(floor, kind)[0], color="grey", linestyle="--", label="no pre-training")
        axis.set_xscale("log")
        axis.set_title(titles[kind])
        axis.set_xlabel(x_label)
        axis.grid(alpha=0.3)
    axes[0].set_ylabel("Rotten Tomatoes test accuracy (%)")
    axes[0].legend()
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def write_plot(results, path):
    series = [(objective, colour, "-", "o",
               [(r["flops"], r) for r in results["curve"] if r["arm"]["objective"] == objective])
              for objective, colour in (("electra", "tab:blue"), ("mlm", "tab:orange"))]
    plot_accuracy(path, series, results["baseline"], results["recipe"]["few_labels"], "pre-training FLOPs")


def report(results, command):
    """The markdown of the study's results."""
    recipe = results["recipe"]
    middle = recipe["budgets"][recipe["middle"]]
    mlm_at = {r["arm"]["budget"]: r for r in results["curve"] if r["arm"]["objective"] == "mlm"}
    seeds = recipe["seeds"]
    lines = [
        f"Command: `{command}` ({results['wall_hours']:.2f} h of which this invocation "
        f"{results['invocation_hours']:.2f} h; {results['machine']}).",
        "",
        f"Model: {recipe['model']}, batch {recipe['batch_size']}; {results['train_examples']:,} training sequences. "
        f"Accuracies are on Rotten Tomatoes' test split ({results['test_reviews']:,} reviews): the probe's once, "
        f"fine-tuning's as mean ± sd over {seeds} seeds (the last epoch; no choice made on that split). In "
        "brackets: the difference from mlm at the same budget with its 95% interval (paired by seed for "
        "fine-tuning, a paired bootstrap over reviews for the probe).",
        "",
        "Learning-rate grid at the smallest budget (probe accuracy on RT dev; the best is kept):",
        "",
        "| objective | " + " | ".join(f"lr {lr:g}" for lr in recipe["learning_rates"]) + " | kept |",
        "|---|" + "---|" * (len(recipe["learning_rates"]) + 1),
    ]
    for objective in ("electra", "mlm"):
        row = [f"{100 * results['grid'][objective][f'{lr:g}']:.1f}" for lr in recipe["learning_rates"]]
        lines.append(f"| {objective} | " + " | ".join(row) + f" | {results['rates'][objective]:g} |")
    lines += ["", f"Ablations at budget {middle} (the paper's Table 5 beside them):", "",
              "| objective | paper, GLUE | steps | probe | few labels | all labels |", "|---|---|---|---|---|---|"]
    for objective in ("mlm", "replace_mlm", "electra_15", "all_tokens_mlm", "electra"):
        record = next(r for r in results["arms"] if r["arm"]["objective"] == objective
                      and r["arm"]["budget"] == middle and not r["arm"]["changes"])
        lines.append(f"| {PAPER_NAMES[objective]} (`{objective}`) | {PAPER_TABLE_5[objective]} | {record['steps']} | "
                     + " | ".join(cell(record, kind, mlm_at[middle]) for kind in EVALUATIONS) + " |")
    lines.append("| no pre-training | | 0 | " + " | ".join(cell(results["baseline"], kind) for kind in EVALUATIONS)
                 + " |")
    lines += ["", f"The follow-ups at budget {middle} (their settings: `followup_arms`):", "",
              "| objective | steps | pre-training accuracy (train, last tenth) | probe | few labels | all labels |",
              "|---|---|---|---|---|---|"]
    for objective, metric in (("teams", "mws_accuracy"), ("mc_bert", "mc_accuracy")):
        record = next(r for r in results["arms"] if r["arm"]["objective"] == objective)
        lines.append(f"| `{objective}` | {record['steps']} | {metric} {record['train_metrics'][metric]:.3f} | "
                     + " | ".join(cell(record, kind, mlm_at[middle]) for kind in EVALUATIONS) + " |")
    lines += ["", "Accuracy against pre-training FLOPs (accuracy_vs_flops.png):", "",
              "| objective | budget | FLOPs | steps | epochs | held-out MLM acc | probe | few labels | all labels |",
              "|---|---|---|---|---|---|---|---|---|"]
    for record in sorted(results["curve"], key=lambda r: (r["arm"]["budget"], r["arm"]["objective"])):
        held = record["heldout_metrics"].get("mlm_accuracy", float("nan"))
        lines.append(f"| {record['arm']['objective']} | {record['arm']['budget']} | {record['flops']:.2e} | "
                     f"{record['steps']} | {record['epochs']:.1f} | {held:.3f} | "
                     + " | ".join(cell(record, kind, mlm_at[record["arm"]["budget"]]) for kind in EVALUATIONS) + " |")
    lines += ["", f"Generator size at budget {middle} (electra; width as a fraction of the discriminator's):", "",
              "| generator | steps | generator MLM acc (train) | replaced | rtd AUC (held out) | probe | few labels | "
              "all labels |", "|---|---|---|---|---|---|---|---|"]
    def size(record):
        return dict(record["arm"]["changes"]).get("generator_hidden_size", recipe["model"]["generator_hidden_size"])

    for record in sorted(results["generator"], key=size):
        train = record["train_metrics"]
        lines.append(f"| {size(record):g} | {record['steps']} | {train['mlm_accuracy']:.3f} | "
                     f"{train['replaced_fraction']:.3f} | {record['heldout_metrics']['rtd_auc']:.3f} | "
                     + " | ".join(cell(record, kind, mlm_at[middle]) for kind in EVALUATIONS) + " |")
    return "\n".join(lines) + "\n"


def wilson_interval(successes, trials):
    """The 95% Wilson score interval of the proportion successes / trials."""
    if not trials:
        return float("nan"), float("nan")
    z, p = 1.959964, successes / trials
    centre = (p + z * z / (2 * trials)) / (1 + z * z / trials)
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / (1 + z * z / trials)
    return max(0.0, centre - half), min(1.0, centre + half)  # rounding would show 0 as -0.0


def auc_interval(auc, positives, negatives):
    """95% interval of an AUC from its standard error (Hanley and McNeil 1982: the positives and negatives
    taken as independent, which tokens of one sequence are not, so it is too narrow rather than too wide).
    nan when one class is absent."""
    if not positives or not negatives:
        return float("nan"), float("nan")
    q1, q2 = auc / (2 - auc), 2 * auc * auc / (1 + auc)
    variance = (auc * (1 - auc) + (positives - 1) * (q1 - auc * auc)
                + (negatives - 1) * (q2 - auc * auc)) / (positives * negatives)
    half = 1.959964 * math.sqrt(max(variance, 0.0))
    return auc - half, auc + half


def with_interval(value, interval, scale, spec):
    """`0.712 [0.700, 0.724]`, `5.1 [4.6, 5.7]` (scale 100); the value alone when the interval is
    undefined (nan), `–` when the value is (None: an AUC with one class absent, a precision with nothing
    called replaced)."""
    if value is None:
        return "–"
    low, high = interval
    text = format(scale * value, spec)
    return text if math.isnan(low) else f"{text} [{format(scale * low, spec)}, {format(scale * high, spec)}]"


def arm_label(arm):
    """`electra b1000 gen 0.5 in_domain`: the objective, budget, changed generator width and corpus."""
    changes = dict(arm["changes"])
    extra = f" gen {changes['generator_hidden_size']:g}" if "generator_hidden_size" in changes \
        and arm["objective"] != "teams" else ""
    corpus = arm.get("corpus", "demo")
    return f"{arm['objective']} b{arm['budget']}{extra}" + ("" if corpus == "demo" else f" {corpus}")


def table_steps(every, steps):
    """The curve steps a table shows: `every` x 1, 2, 4, ... and the last."""
    shown, step = {steps}, every
    while step < steps:
        shown.add(step)
        step *= 2
    return shown


def low_resource_report(results, command, figures=None):
    """The markdown of the low-resource block: accuracy against epochs, the floor, the curves.

    Args:
        results: `low_resource_results`'s dict.
        command: the command line shown.
        figures: {plot name: its path relative to the markdown}, to show them; None: name the files.
    """
    recipe = results["recipe"]
    floor = results["baseline"]
    hours = ", ".join(f"`--part={part}` {value:.2f} h" for part, value in results["hours"].items())
    lines = [f"Commands: `{command}` (time so far: {hours or 'none'}; {results['machine']}).", ""]
    if results["missing"]:
        lines += ["Not measured yet: " + ", ".join(results["missing"]) + ".", ""]
    records = sorted(results["accuracy"], key=lambda r: (r["arm"].get("corpus", "demo"), r["arm"]["budget"],
                                                         r["arm"]["objective"]))
    mlm_at = {(r["arm"].get("corpus", "demo"), r["arm"]["budget"]): r for r in records
              if r["arm"]["objective"] == "mlm"}
    lines += [
        f"Accuracy against epochs of pre-training: electra and mlm at equal FLOPs, budgets in electra steps, "
        f"the study's recipe (lr {results['rates']['electra']:g} for electra, {results['rates']['mlm']:g} for "
        f"mlm, warmup {recipe['warmup_fraction']:g}, batch {recipe['batch_size']}); Rotten Tomatoes test accuracy, "
        "fine-tuning's as mean ± sd over the seeds (5 unless the run lowered it), in brackets the "
        "difference from mlm at the same budget and corpus with its 95% interval (paired by seed; the "
        "probe: a paired bootstrap over reviews). `in_domain`: pre-trained on the demo corpus and the "
        "text of RT's training reviews.",
        "", ("![accuracy against epochs]({})".format(figures["accuracy_vs_epochs"]) if figures
             else "Plot: accuracy_vs_epochs.png."), "",
        "| corpus | objective | budget | steps | epochs | seeds | held-out MLM acc | probe | few labels | all labels |",
        "|---|---|---|---|---|---|---|---|---|---|"]
    for record in records:
        arm = record["arm"]
        reference = mlm_at.get((arm.get("corpus", "demo"), arm["budget"]))
        lines.append(f"| {arm.get('corpus', 'demo')} | {arm['objective']} | {arm['budget']} | {record['steps']} | "
                     f"{record['epochs']:.1f} | {len(record['full'])} | "
                     f"{record['heldout_metrics']['mlm_accuracy']:.3f} | "
                     + " | ".join(cell(record, kind, reference) for kind in EVALUATIONS) + " |")
    if floor:
        lines.append("| | no pre-training | | 0 | 0 | " f"{len(floor['full'])} | | "
                     + " | ".join(cell(floor, kind) for kind in EVALUATIONS) + " |")
        lines += ["", "Against no pre-training (the difference in points, its 95% interval; paired by seed, the "
                  "probe by a paired bootstrap over reviews):", "",
                  "| corpus | objective | budget | probe | few labels | all labels |", "|---|---|---|---|---|---|"]
        for record in records:
            arm = record["arm"]
            lines.append(f"| {arm.get('corpus', 'demo')} | {arm['objective']} | {arm['budget']} | "
                         + " | ".join(difference(*versus(record, floor, kind)) for kind in EVALUATIONS) + " |")
    curves = sorted(results["curves"], key=lambda c: (c["arm"].get("corpus", "demo"), c["arm"]["objective"],
                                                      c["arm"]["budget"], arm_label(c["arm"])))
    detectors = [c for c in curves if c["arm"]["objective"] in DETECTORS]
    mlms = [c for c in curves if c["arm"]["objective"] == "mlm"]
    sizes = sorted({(c["heldout_sequences"], c["train_sequences"]) for c in curves})
    lines += ["", "Detection curves: the discriminator on the held-out sequences "
              f"({', '.join(str(h) for h, _ in sizes) or 'none'} sequences of {recipe['model']['max_seq_length']} "
              "tokens, the same for every arm and step), with the masks and generator samples of step 0 (temperature "
              f"{recipe['model']['temperature']:g}) as the study's held-out column; a checkpoint every "
              f"{recipe['curve_every']} steps, the table shows some. 95% intervals: AUC by Hanley-McNeil, recall "
              "and precision by Wilson, over tokens taken as independent (too narrow). Beside it the "
              "generator's held-out MLM accuracy.",
              "", ("![detection AUC and MLM accuracy against steps]({})".format(figures["detection_curves"])
                   if figures else "Plot: detection_curves.png."), "",
              "| arm | step | epochs | rtd AUC | recall | precision | generator MLM acc |",
              "|---|---|---|---|---|---|---|"]
    for curve in detectors:
        for point in curve["points"]:
            if point["step"] not in table_steps(curve["every"], curve["steps"]):
                continue
            held, counts = point["heldout"], point["heldout_counts"]
            found = counts["true_positives"]
            auc = auc_interval(held["rtd_auc"], counts["positives"], counts["negatives"])
            recall = wilson_interval(found, found + counts["false_negatives"])
            called = found + counts["false_positives"]  # tokens called replaced; none: no precision
            precision = wilson_interval(found, called)
            lines.append(f"| {arm_label(curve['arm'])} | {point['step']} | {point['epochs']:.1f} | "
                         f"{with_interval(held['rtd_auc'] if not math.isnan(auc[0]) else None, auc, 1, '.3f')} | "
                         f"{with_interval(held['rtd_recall'], recall, 100, '.1f')} | "
                         f"{with_interval(held['rtd_precision'] if called else None, precision, 100, '.1f')} | "
                         f"{held['mlm_accuracy']:.3f} |")
    lines += ["", "mlm: MLM accuracy on the held-out sequences and on as many training sequences (the demo "
              "corpus's first ones), masked alike; training above held-out is memorised text:", "",
              "| arm | step | epochs | held out | training sequences | training - held out |",
              "|---|---|---|---|---|---|"]
    for curve in mlms:
        for point in curve["points"]:
            if point["step"] in table_steps(curve["every"], curve["steps"]):
                held, train = point["heldout"]["mlm_accuracy"], point["train"]["mlm_accuracy"]
                lines.append(f"| {arm_label(curve['arm'])} | {point['step']} | {point['epochs']:.1f} | {held:.3f} | "
                             f"{train:.3f} | {train - held:+.3f} |")
    reruns = [c for c in curves if "rerun" in c]
    if reruns:
        lines += ["", "The arms whose checkpoints were not kept were pre-trained again for their curves (their "
                  "fine-tuning records stand). The re-run against the committed record, at the last step:", "",
                  "| arm | held-out MLM acc, committed / re-run | held-out rtd AUC, committed / re-run | "
                  "largest difference, any final metric |", "|---|---|---|---|"]
        for curve in reruns:
            committed, rerun = curve["record"], curve["rerun"]
            differences = [abs(committed[group][name] - rerun[group][name])
                           for group in ("train_metrics", "heldout_metrics") for name in committed[group]
                           if name in rerun[group]]
            auc = (f"{committed['heldout_metrics']['rtd_auc']:.4f} / {rerun['heldout_metrics']['rtd_auc']:.4f}"
                   if "rtd_auc" in rerun["heldout_metrics"] else "")
            lines.append(f"| {arm_label(curve['arm'])} | {committed['heldout_metrics']['mlm_accuracy']:.4f} / "
                         f"{rerun['heldout_metrics']['mlm_accuracy']:.4f} | {auc} | {max(differences):.2g} |")
    return "\n".join(lines) + "\n"


def write_epochs_plot(results, path):
    """Accuracy against epochs of pre-training: electra and mlm per corpus (in_domain dotted, squares), the
    floor."""
    series = [(objective + ("" if corpus == "demo" else f", {corpus}"), colour, style, marker,
               [(r["epochs"], r) for r in results["accuracy"]
                if r["arm"]["objective"] == objective and r["arm"].get("corpus", "demo") == corpus])
              for corpus, style, marker in (("demo", "-", "o"), ("in_domain", ":", "s"))
              for objective, colour in (("electra", "tab:blue"), ("mlm", "tab:orange"))]
    plot_accuracy(path, series, results["baseline"], results["recipe"]["few_labels"],
                  "epochs of the pre-training corpus")


def write_curves_plot(results, path):
    """Held-out detection AUC against steps for the arms with a detector; MLM accuracy beside it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curves = sorted(results["curves"], key=lambda c: (c["arm"]["objective"], c["arm"].get("corpus", "demo"),
                                                      arm_label(c["arm"])))
    colours = dict(zip([arm_label(c["arm"]) for c in curves], plt.get_cmap("tab20").colors))
    figure, (left, right) = plt.subplots(1, 2, figsize=(13, 4.5), sharex=True)
    for curve in curves:
        label = arm_label(curve["arm"])
        steps = [p["step"] for p in curve["points"]]
        held = [p["heldout"]["mlm_accuracy"] for p in curve["points"]]
        if curve["arm"]["objective"] in DETECTORS:
            # Undefined where one class is absent from the positions scored (electra_15 with every sample wrong).
            auc = [p["heldout"]["rtd_auc"] if min(p["heldout_counts"]["positives"], p["heldout_counts"]["negatives"])
                   else float("nan") for p in curve["points"]]
            left.plot(steps, auc, color=colours[label], label=label)
            right.plot(steps, held, color=colours[label], linestyle="--", label=f"{label} (generator)")
        else:
            right.plot(steps, held, color=colours[label], label=f"{label} (held out)")
            right.plot(steps, [p["train"]["mlm_accuracy"] for p in curve["points"]], color=colours[label],
                       linestyle=":", label=f"{label} (training sequences)")
    left.axhline(0.5, color="grey", linestyle="--", linewidth=0.8)
    left.set_title("replaced-token detection, held out")
    left.set_ylabel("rtd AUC")
    right.set_title("MLM accuracy (mlm; electra's generator dashed)")
    right.set_ylabel("MLM accuracy at the masked positions")
    for axis in (left, right):
        axis.set_xlabel("pre-training step")
        axis.grid(alpha=0.3)
        axis.legend(fontsize=6, ncol=2)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def update_results_md(path, text, begin=SECTION_BEGIN, end=SECTION_END):
    """Replaces the text between the `begin` and `end` markers of `path` (appended when they are absent)."""
    from electra_tf.utils.atomic import write_text_atomically

    with open(path, encoding="utf-8") as f:
        current = f.read()
    section = f"{begin}\n{text}{end}"
    if begin in current:
        before, rest = current.split(begin, 1)
        current = before + section + rest.split(end, 1)[1]
    else:
        current = current.rstrip("\n") + "\n\n" + section + "\n"
    write_text_atomically(path, current)


# ---------------------------------------------------------------- the study


def machine():
    model = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            model = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{model}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the end"


def pretraining_record(recipe, paths, out, arm, curve=False):
    """The arm's pre-training record, cached in its directory; with `curve`, pre-trained with the checkpoints
    its curve is measured on. Returns (its directory, the record)."""
    arm_dir = os.path.join(out, "arms", arm.name)
    os.makedirs(arm_dir, exist_ok=True)
    checkpoints = os.path.join(arm_dir, "curve_checkpoints") if curve else None
    return arm_dir, cached(os.path.join(arm_dir, "pretraining.json"),
                           lambda: pretrain(recipe, paths, arm, arm_dir, checkpoints))


def learning_rate_grid(recipe, paths, out):
    """The probe's RT dev accuracy of electra and mlm at each rate of the grid, and the rate each keeps."""
    grid = {objective: {f"{lr:g}": pretraining_record(recipe, paths, out, Arm(objective, recipe.budgets[0], lr))[1][
        "probe"]["dev"] for lr in recipe.learning_rates} for objective in ("electra", "mlm")}
    return grid, {objective: float(max(values, key=values.get)) for objective, values in grid.items()}


def model_for(recipe, paths, arm, arm_dir, evaluated_dir):
    """The arm's model_dir, pre-trained again if fine-tuning in `evaluated_dir` still needs it and the
    cache kept the arm's record but not its checkpoint (a cache copied without its models)."""
    model_dir = os.path.join(arm_dir, "model")
    finished = all(os.path.exists(os.path.join(evaluated_dir, f"finetune_{kind}", "eval_results.json"))
                   for kind in ("few", "full"))
    if not finished and not os.path.exists(os.path.join(model_dir, "checkpoints", "checkpoint")):
        shutil.rmtree(model_dir, ignore_errors=True)
        pretrain(recipe, paths, arm, arm_dir)  # the cached record (its probe) is kept
    return model_dir


def evaluate_arms(recipe, paths, out, arms, curves=False):
    """Pre-trains each arm (with `curves`, also measuring its curve) and fine-tunes it, and the model with no
    pre-training; returns their evaluated records (cached as evaluated.json)."""
    baseline_dir = os.path.join(out, "no_pretraining")
    os.makedirs(baseline_dir, exist_ok=True)
    # Fine-tuning a model this small keeps about one core busy, so run_finetuning runs in
    # FINETUNING_WORKERS processes beside the pre-training of the next arms, here.
    with concurrent.futures.ThreadPoolExecutor(FINETUNING_WORKERS) as pool:

        def evaluations(init, directory, random_init=False):
            return {kind: pool.submit(finetune, recipe, paths, init, os.path.join(directory, f"finetune_{kind}"),
                                      kind, random_init) for kind in ("few", "full")}

        pending = []
        for arm in arms:
            arm_dir, record = pretraining_record(recipe, paths, out, arm, curves)
            if curves:
                arm_curve(recipe, paths, arm, arm_dir, record)
            pending.append((arm_dir, record, evaluations(model_for(recipe, paths, arm, arm_dir, arm_dir), arm_dir)))
        # The no-pre-training floor: the first arm's architecture and vocabulary, random weights.
        floor = evaluations(model_for(recipe, paths, arms[0], pending[0][0], baseline_dir), baseline_dir,
                            random_init=True)
        records = [cached(os.path.join(arm_dir, "evaluated.json"),
                          lambda record=record, jobs=jobs: {**record, **{k: job.result() for k, job in jobs.items()}})
                   for arm_dir, record, jobs in pending]

        def baseline():
            import keras

            from electra_tf.modeling.models import ElectraDiscriminator, build_tower

            config = electra_config(recipe, paths["vocab.txt"])
            keras.utils.set_random_seed(config.seed)
            model = ElectraDiscriminator(config)
            build_tower(model, config.max_seq_length)
            return {"probe": probe_accuracy(model.encoder, paths, config.max_seq_length),
                    **{kind: job.result() for kind, job in floor.items()}}

        return records, cached(os.path.join(baseline_dir, "evaluated.json"), baseline)


def add_elapsed(out, part, started):
    """Adds this invocation's time to the part's total in `out`; returns (total, this invocation) in hours."""
    path = os.path.join(out, "elapsed.json" if part == "main" else f"elapsed_{part}.json")
    elapsed = cached(path, lambda: {"seconds": 0.0})
    invocation = time.time() - started
    write_json(path, {"seconds": elapsed["seconds"] + invocation})
    return (elapsed["seconds"] + invocation) / 3600, invocation / 3600


def run_study(recipe, out, command):
    started = time.time()
    os.makedirs(out, exist_ok=True)
    paths = prepare_data(recipe, out)
    grid, rates = learning_rate_grid(recipe, paths, out)
    records, floor_record = evaluate_arms(recipe, paths, out, study_arms(recipe, rates))
    results = {
        "recipe": dataclasses.asdict(recipe), "grid": grid, "rates": rates, "arms": records,
        "curve": [r for r in records if not r["arm"]["changes"] and r["arm"]["objective"] in ("electra", "mlm")],
        "generator": [r for r in records if r["arm"]["objective"] == "electra"
                      and r["arm"]["budget"] == recipe.budgets[recipe.middle]],
        "baseline": floor_record, "train_examples": paths["train_examples"]["demo"],
        "test_reviews": len(paths["probe"]["test"]), "machine": machine(),
    }
    results["wall_hours"], results["invocation_hours"] = add_elapsed(out, "main", started)
    write_json(os.path.join(out, "results.json"), results)
    write_plot(results, os.path.join(out, "accuracy_vs_flops.png"))
    text = report(results, command)
    with open(os.path.join(out, "results.md"), "w", encoding="utf-8") as f:
        f.write(text)
    return results, text


def run_low_resource(recipe, out, corpus):
    """electra and mlm at the low-resource budgets on `corpus`, each with its curve; the grid's rates."""
    os.makedirs(out, exist_ok=True)
    paths = prepare_data(recipe, out)
    if corpus == "in_domain":
        prepare_in_domain(recipe, paths, out)
    _, rates = learning_rate_grid(recipe, paths, out)
    evaluate_arms(recipe, paths, out, low_resource_arms(recipe, rates, corpus), curves=True)
    return rates


def run_curves(recipe, out):
    """The curves of the main part's arms with a detector, and of its mlm arms (their fine-tuning is kept)."""
    os.makedirs(out, exist_ok=True)
    paths = prepare_data(recipe, out)
    _, rates = learning_rate_grid(recipe, paths, out)
    for arm in curve_arms(recipe, rates):
        arm_dir, record = pretraining_record(recipe, paths, out, arm, curve=True)
        arm_curve(recipe, paths, arm, arm_dir, record)
    return rates


def low_resource_results(recipe, out, rates):
    """What the cache in `out` holds for the low-resource block: the electra and mlm arms at every budget
    and corpus, the floor, and every curve; with what the parts have not measured yet."""
    arms_dir = os.path.join(out, "arms")
    results = {"recipe": dataclasses.asdict(recipe), "rates": rates, "accuracy": [], "curves": [], "missing": [],
               "machine": machine(), "hours": {}}
    for part in ("low_resource", "curves"):
        path = os.path.join(out, f"elapsed_{part}.json")
        if os.path.exists(path):
            results["hours"][part] = read_json(path)["seconds"] / 3600
    baseline = os.path.join(out, "no_pretraining", "evaluated.json")
    results["baseline"] = read_json(baseline) if os.path.exists(baseline) else None
    expected = [(arm, "accuracy") for arm in
                [Arm(o, b, rates[o]) for b in recipe.budgets for o in ("electra", "mlm")]
                + low_resource_arms(recipe, rates, "demo")]
    expected += [(arm, "curve") for arm in curve_arms(recipe, rates) + low_resource_arms(recipe, rates, "demo")]
    in_domain = low_resource_arms(recipe, rates, "in_domain")
    if any(os.path.exists(os.path.join(arms_dir, arm.name, "pretraining.json")) for arm in in_domain):
        expected += [(arm, what) for arm in in_domain for what in ("accuracy", "curve")]
    for arm, what in expected:
        arm_dir = os.path.join(arms_dir, arm.name)
        path = os.path.join(arm_dir, "evaluated.json" if what == "accuracy" else "curve.json")
        if not os.path.exists(path):
            results["missing"].append(f"{arm.name} ({what})")
            continue
        if what == "accuracy":
            results["accuracy"].append(read_json(path))
        else:
            record = read_json(os.path.join(arm_dir, "pretraining.json"))
            results["curves"].append({**read_json(path), "record": {
                key: record[key] for key in ("train_metrics", "heldout_metrics", "steps", "epochs")}})
    return results


def write_low_resource(recipe, out, rates, command, results_md=None):
    """The low-resource block from the cache: results json, markdown and plots in `out`, and with
    `results_md` its block there, the plots beside it in figures/."""
    results = low_resource_results(recipe, out, rates)
    write_json(os.path.join(out, "low_resource_results.json"), results)
    plots = {"accuracy_vs_epochs": write_epochs_plot, "detection_curves": write_curves_plot}
    for name, write in plots.items():
        write(results, os.path.join(out, f"{name}.png"))
    text = low_resource_report(results, command)
    with open(os.path.join(out, "low_resource.md"), "w", encoding="utf-8") as f:
        f.write(text)
    if results_md:
        figures = os.path.join(os.path.dirname(os.path.abspath(results_md)), "figures")
        os.makedirs(figures, exist_ok=True)
        linked = {name: f"figures/sample_efficiency_{name}.png" for name in plots}
        for name, path in linked.items():
            shutil.copyfile(os.path.join(out, f"{name}.png"), os.path.join(os.path.dirname(figures), path))
        update_results_md(results_md, low_resource_report(results, command, linked), LOW_RESOURCE_BEGIN,
                          LOW_RESOURCE_END)
    return text


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output_dir", default=None,
                        help="Where everything is cached (default bench_out/sample_efficiency, or "
                             "bench_out/sample_efficiency_quick with --quick).")
    parser.add_argument("--quick", action="store_true", help="Toy sizes: every stage in minutes (for the tests).")
    parser.add_argument("--part", choices=("main", "low_resource", "curves"), default="main",
                        help="main: the study's tables; low_resource: electra and mlm at the low-resource "
                             "budgets, with their curves; curves: the detection and MLM curves of the main "
                             "part's arms (pre-trained again, their fine-tuning kept). The last two write the "
                             "low-resource block.")
    parser.add_argument("--corpus", choices=CORPORA, default="demo",
                        help="With --part=low_resource: demo, or in_domain (the demo corpus and the text of "
                             "Rotten Tomatoes' training reviews).")
    parser.add_argument("--seeds", type=int, default=None,
                        help="With --part=low_resource: fine-tuning seeds per arm (default the recipe's 5; "
                             "never below 3 in the full study).")
    parser.add_argument("--results_md", default=None, help="Also replace the part's section of this file.")
    args = parser.parse_args()
    recipe = QUICK if args.quick else STUDY
    if args.part != "low_resource" and (args.corpus != "demo" or args.seeds is not None):
        parser.error("--corpus and --seeds apply to --part=low_resource only")
    if args.seeds is not None:
        least = 1 if args.quick else 3
        if not least <= args.seeds <= recipe.seeds:
            parser.error(f"--seeds must be between {least} and {recipe.seeds}, got {args.seeds}")
        recipe = dataclasses.replace(recipe, seeds=args.seeds)
    try:
        import matplotlib  # noqa: F401  (checked before hours of training, not after)
    except ImportError:
        sys.exit("sample_efficiency.py: its plot needs matplotlib: pip install -e .[bench]")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    out = args.output_dir or os.path.join(ROOT, "bench_out", "sample_efficiency" + ("_quick" if args.quick else ""))
    quick = " --quick" if args.quick else ""
    if args.part == "main":
        _, text = run_study(recipe, out, "python bench/sample_efficiency.py" + quick)
        print(text)
        if args.results_md:
            update_results_md(args.results_md, text)
        return
    started = time.time()
    rates = run_low_resource(recipe, out, args.corpus) if args.part == "low_resource" else run_curves(recipe, out)
    add_elapsed(out, args.part, started)
    command = (f"python bench/sample_efficiency.py --part=low_resource{quick}` (and `--corpus=in_domain`), "
               f"`python bench/sample_efficiency.py --part=curves{quick}")
    print(write_low_resource(recipe, out, rates, command, args.results_md))


if __name__ == "__main__":
    main()
