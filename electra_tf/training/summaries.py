"""What the training loop writes to TensorBoard: grouped scalar tags and a text view of one example."""

import numpy as np

# TensorBoard puts tags with the same prefix in one section. Metrics are named "<group>_<what>"
# (rtd_auc, mlm_accuracy, main_accuracy: the main model of replace_mlm and all_tokens_mlm; mws_accuracy:
# teams' multi-word selection; mc_accuracy: mc_bert's multi-choice cloze) or "<what>_loss"; these few are
# named otherwise.
_GROUPS = ("mlm", "rtd", "main", "mws", "mc")
_OTHER_TAGS = {"loss": "loss/total", "sampled_accuracy": "mlm/sampled_accuracy",
               "masked_fraction": "mlm/masked_fraction", "replaced_fraction": "rtd/replaced_fraction",
               "temperature": "mlm/sampling_temperature"}
SPEED_TAGS = ("examples_per_second", "tokens_per_second", "seconds_per_step")
EXAMPLE_TAG = "examples/replaced_token_detection"


def scalar_tag(name):
    """The TensorBoard tag of a metric or a loop statistic: `loss/`, `mlm/`, `rtd/`, `optimizer/` or `speed/`.

    Example:

    >>> [scalar_tag(n) for n in ("loss", "rtd_loss", "rtd_auc", "sampled_accuracy", "learning_rate")]
    ['loss/total', 'loss/rtd', 'rtd/auc', 'mlm/sampled_accuracy', 'optimizer/learning_rate']
    >>> [scalar_tag(n) for n in ("main_loss", "main_copy_probability", "temperature")]
    ['loss/main', 'main/copy_probability', 'mlm/sampling_temperature']
    """
    if name in _OTHER_TAGS:
        return _OTHER_TAGS[name]
    if name.endswith("_loss"):
        return f"loss/{name[:-len('_loss')]}"
    group, _, rest = name.partition("_")
    if group in _GROUPS and rest:
        return f"{group}/{rest}"
    if name in SPEED_TAGS:
        return f"speed/{name}"
    if name in ("learning_rate", "grad_norm"):
        return f"optimizer/{name}"
    return f"train/{name}"


def example_table(outputs, vocab):
    """Markdown table of one example: original, masked input, generator's fill, verdict.

    `outputs` is what `ElectraPretrainer.__call__` returns for a batch; the
    first example is shown, real tokens only.
    """
    real = int(np.sum(outputs["input_mask"][0]))
    original = np.asarray(outputs["input_ids"][0])[:real]
    masked = np.asarray(outputs["masked_ids"][0])[:real]
    rows = ["| # | original | masked | generator's fill | P(replaced) | replaced? |", "|---|---|---|---|---|---|"]
    if "corrupted_ids" in outputs:
        filled = np.asarray(outputs["corrupted_ids"][0])[:real]
        labels = np.asarray(outputs["rtd_labels"][0])[:real]
        # replace_mlm's main model judges no token: its column stays at 0.
        logits = outputs["rtd_logits"][0] if "rtd_logits" in outputs else np.full(real, -np.inf)
        probability = 1 / (1 + np.exp(-np.asarray(logits, np.float64)[:real]))
    else:
        filled, probability, labels = masked, np.zeros(real), np.zeros(real, int)
    candidates = _candidate_cells(outputs, vocab)
    if candidates:
        rows = [rows[0][:-1] + "| candidates (the model's choice in bold) |", rows[1] + "---|"]
    for i in range(real):
        changed = masked[i] != original[i] or filled[i] != original[i]
        fill = f"**{vocab[filled[i]]}**" if filled[i] != original[i] else vocab[filled[i]]
        verdict = "yes" if labels[i] else ""
        rows.append(f"| {i} | {vocab[original[i]]} | {vocab[masked[i]] if changed else ''} | "
                    f"{fill if changed else ''} | {probability[i]:.2f} | {verdict} |"
                    + (f" {candidates.get(i, '')} |" if candidates else ""))
    return "\n".join(rows)


def _candidate_cells(outputs, vocab):
    """{position: its candidate set, the chosen one in bold} of the first example (teams, mc_bert), else {}."""
    if "candidate_ids" not in outputs:
        return {}
    cells = {}
    ids, logits = np.asarray(outputs["candidate_ids"][0]), np.asarray(outputs["candidate_logits"][0])
    positions, weights = np.asarray(outputs["candidate_positions"][0]), np.asarray(outputs["candidate_weights"][0])
    for slot in np.flatnonzero(weights > 0):
        chosen = int(np.argmax(logits[slot]))
        names = [vocab[t] if t >= 0 else "(reject)" for t in ids[slot]]
        cells[int(positions[slot])] = " / ".join(f"**{n}**" if k == chosen else n for k, n in enumerate(names))
    return cells
