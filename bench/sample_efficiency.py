r"""Sample efficiency: replaced-token detection against masked-LM pre-training at equal compute, on a small corpus.

    .venv/bin/python bench/sample_efficiency.py                 # the study: about 2.5 hours on 2 cores
    .venv/bin/python bench/sample_efficiency.py --quick         # every stage at toy sizes, in minutes
    .venv/bin/python bench/sample_efficiency.py --results_md=bench/RESULTS.md   # also rewrite its section there

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
    corpus_documents=0, heldout_documents=500, vocab_size=8000)

# Every stage and table at toy sizes, for the tests: one budget, one learning rate, no extra generator size
# and one fine-tuning seed (each arm costs two run_finetuning processes).
QUICK = Recipe(
    model=dict(embedding_size=32, hidden_size=64, num_layers=2, num_heads=2, intermediate_size=128,
               generator_hidden_size=0.25, max_seq_length=64, max_position_embeddings=128,
               hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, temperature=2.0, final_temperature=1.0),
    batch_size=8, budgets=(6,), middle=0, learning_rates=(2e-3,), warmup_fraction=0.2,
    generator_sizes=(0.25,), seeds=1, few_labels=40,
    finetune_flags=("--learning_rate=3e-4", "--max_seq_length=32", "--train_batch_size=16"), few_label_epochs=2,
    full_epochs=1, corpus_documents=300, heldout_documents=30, vocab_size=1500, rt_limits=(120, 60, 60))


@dataclasses.dataclass(frozen=True)
class Arm:
    """One pre-training run: an objective at a budget and learning rate, with config changes."""

    objective: str
    budget: int
    learning_rate: float
    changes: tuple = ()  # ((ElectraConfig field, value), ...)

    @property
    def name(self):
        extra = "".join(f"_{field}{value:g}" for field, value in self.changes)
        return f"{self.objective}_b{self.budget}_lr{self.learning_rate:g}{extra}"


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
    return paths


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


def pretrain(recipe, paths, arm, arm_dir):
    """Trains `arm` in this process and writes a model_dir run_finetuning reads; returns its record."""
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
    seq = config.max_seq_length
    # The same reader and seed for every arm: each sees the same batches in the same order.
    batches = iter(make_pretraining_dataset(os.path.join(paths["train_records"], "pretrain_data.tfrecord*"),
                                            recipe.batch_size, seq, seed=0, deterministic=True))
    step_fn = tf.function(pretrainer.train_step)
    started, cpu = time.time(), time.process_time()
    window = max(1, steps // 10)
    for step in range(steps):
        if step == steps - window:
            pretrainer.reset_metrics()  # report the last tenth of training
        metrics = step_fn(next(batches))
    final = {name: float(value) for name, value in metrics.items()}
    seconds, cpu_seconds = time.time() - started, time.process_time() - cpu

    pretrainer.reset_metrics()
    heldout = make_pretraining_dataset(os.path.join(paths["heldout_records"], "pretrain_data.tfrecord*"),
                                       recipe.batch_size, seq, shuffle=False, repeat=False)
    test_fn = tf.function(pretrainer.test_step)
    for batch in heldout:
        held = test_fn(batch)
    heldout_metrics = {name: float(value) for name, value in held.items()}

    model_dir = os.path.join(arm_dir, "model")
    state = run_state.start_or_check(model_dir, config, paths["vocab.txt"], True)
    tf.train.CheckpointManager(tf.train.Checkpoint(model=pretrainer), state.checkpoint_dir, 1).save(steps)
    examples = read_json(os.path.join(paths["train_records"], "dataset_info.json"))["num_examples"]
    flops = pretraining_flops(config) * recipe.batch_size * steps
    probe = probe_accuracy(pretrainer.kept_model().encoder, paths, seq)
    return {"arm": dataclasses.asdict(arm), "name": arm.name, "steps": steps, "flops": flops,
            "epochs": steps * recipe.batch_size / examples,
            "seconds": seconds, "cpu_seconds": cpu_seconds, "train_metrics": final, "heldout_metrics": heldout_metrics,
            "model_dir": model_dir, "probe": probe, "finite": bool(np.isfinite(final["loss"]))}


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
        diff, low, high = versus(record, reference, kind)
        interval = "" if math.isnan(low) else f" [{100 * low:+.1f}, {100 * high:+.1f}]"  # nan: one seed
        text += f" ({100 * diff:+.1f}{interval})"
    return text


def write_plot(results, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 3, figsize=(13, 4), sharex=True)
    titles = {"probe": "linear probe", "few": f"fine-tuned, {results['recipe']['few_labels']} labels",
              "full": "fine-tuned, all labels"}
    for axis, kind in zip(axes, EVALUATIONS):
        for objective, colour in (("electra", "tab:blue"), ("mlm", "tab:orange")):
            curve = [r for r in results["curve"] if r["arm"]["objective"] == objective]
            x = [r["flops"] for r in curve]
            y = [100 * scores(r, kind)[0] for r in curve]
            error = [100 * scores(r, kind)[1] for r in curve]
            axis.errorbar(x, y, yerr=error, marker="o", capsize=3, color=colour, label=objective)
        baseline = 100 * scores(results["baseline"], kind)[0]
        axis.axhline(baseline, color="grey", linestyle="--", label="no pre-training")
        axis.set_xscale("log")
        axis.set_title(titles[kind])
        axis.set_xlabel("pre-training FLOPs")
        axis.grid(alpha=0.3)
    axes[0].set_ylabel("Rotten Tomatoes test accuracy (%)")
    axes[0].legend()
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


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


def update_results_md(path, text):
    from electra_tf.utils.atomic import write_text_atomically

    with open(path, encoding="utf-8") as f:
        current = f.read()
    section = f"{SECTION_BEGIN}\n{text}{SECTION_END}"
    if SECTION_BEGIN in current:
        before, rest = current.split(SECTION_BEGIN, 1)
        current = before + section + rest.split(SECTION_END, 1)[1]
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


def run_study(recipe, out, command):
    started = time.time()
    os.makedirs(out, exist_ok=True)
    paths = prepare_data(recipe, out)
    arms_dir = os.path.join(out, "arms")

    def arm_record(arm):
        arm_dir = os.path.join(arms_dir, arm.name)
        os.makedirs(arm_dir, exist_ok=True)
        return cached(os.path.join(arm_dir, "pretraining.json"), lambda: pretrain(recipe, paths, arm, arm_dir))

    grid = {objective: {f"{lr:g}": arm_record(Arm(objective, recipe.budgets[0], lr))["probe"]["dev"]
                        for lr in recipe.learning_rates} for objective in ("electra", "mlm")}
    rates = {objective: float(max(values, key=values.get)) for objective, values in grid.items()}
    baseline_dir = os.path.join(out, "no_pretraining")
    os.makedirs(baseline_dir, exist_ok=True)
    # Fine-tuning a model this small keeps about one core busy, so run_finetuning runs in
    # FINETUNING_WORKERS processes beside the pre-training of the next arms, here.
    with concurrent.futures.ThreadPoolExecutor(FINETUNING_WORKERS) as pool:

        def evaluations(init, directory, random_init=False):
            return {kind: pool.submit(finetune, recipe, paths, init, os.path.join(directory, f"finetune_{kind}"),
                                      kind, random_init) for kind in ("few", "full")}

        def model_for(arm, arm_dir, evaluated_dir):
            """The arm's model_dir, pre-trained again if fine-tuning in `evaluated_dir` still needs it and the
            cache kept the arm's record but not its checkpoint (a cache copied without its models)."""
            model_dir = os.path.join(arm_dir, "model")
            finished = all(os.path.exists(os.path.join(evaluated_dir, f"finetune_{kind}", "eval_results.json"))
                           for kind in ("few", "full"))
            if not finished and not os.path.exists(os.path.join(model_dir, "checkpoints", "checkpoint")):
                shutil.rmtree(model_dir, ignore_errors=True)
                pretrain(recipe, paths, arm, arm_dir)  # the cached record (its probe) is kept
            return model_dir

        pending = []
        arms = study_arms(recipe, rates)
        for arm in arms:
            arm_dir = os.path.join(arms_dir, arm.name)
            record = arm_record(arm)
            pending.append((arm_dir, record, evaluations(model_for(arm, arm_dir, arm_dir), arm_dir)))
        # The no-pre-training floor: the first arm's architecture and vocabulary, random weights.
        floor = evaluations(model_for(arms[0], pending[0][0], baseline_dir), baseline_dir, random_init=True)
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

        floor_record = cached(os.path.join(baseline_dir, "evaluated.json"), baseline)

    results = {
        "recipe": dataclasses.asdict(recipe), "grid": grid, "rates": rates, "arms": records,
        "curve": [r for r in records if not r["arm"]["changes"] and r["arm"]["objective"] in ("electra", "mlm")],
        "generator": [r for r in records if r["arm"]["objective"] == "electra"
                      and r["arm"]["budget"] == recipe.budgets[recipe.middle]],
        "baseline": floor_record,
        "train_examples": read_json(os.path.join(paths["train_records"], "dataset_info.json"))["num_examples"],
        "test_reviews": len(paths["probe"]["test"]), "machine": machine(),
    }
    elapsed = cached(os.path.join(out, "elapsed.json"), lambda: {"seconds": 0.0})
    invocation = time.time() - started
    results["invocation_hours"] = invocation / 3600
    results["wall_hours"] = (elapsed["seconds"] + invocation) / 3600
    write_json(os.path.join(out, "elapsed.json"), {"seconds": elapsed["seconds"] + invocation})
    write_json(os.path.join(out, "results.json"), results)
    write_plot(results, os.path.join(out, "accuracy_vs_flops.png"))
    text = report(results, command)
    with open(os.path.join(out, "results.md"), "w", encoding="utf-8") as f:
        f.write(text)
    return results, text


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output_dir", default=None,
                        help="Where everything is cached (default bench_out/sample_efficiency, or "
                             "bench_out/sample_efficiency_quick with --quick).")
    parser.add_argument("--quick", action="store_true", help="Toy sizes: every stage in minutes (for the tests).")
    parser.add_argument("--results_md", default=None, help="Also replace the study's section of this file.")
    args = parser.parse_args()
    try:
        import matplotlib  # noqa: F401  (checked before hours of training, not after)
    except ImportError:
        sys.exit("sample_efficiency.py: its plot needs matplotlib: pip install -e .[bench]")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    recipe = QUICK if args.quick else STUDY
    out = args.output_dir or os.path.join(ROOT, "bench_out", "sample_efficiency" + ("_quick" if args.quick else ""))
    command = "python bench/sample_efficiency.py" + (" --quick" if args.quick else "")
    _, text = run_study(recipe, out, command)
    print(text)
    if args.results_md:
        update_results_md(args.results_md, text)


if __name__ == "__main__":
    main()
