"""A text summary that shows the method at work on one example."""

import numpy as np


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
        probability = 1 / (1 + np.exp(-np.asarray(outputs["rtd_logits"][0], np.float64)[:real]))
        labels = np.asarray(outputs["rtd_labels"][0])[:real]
    else:
        filled, probability, labels = masked, np.zeros(real), np.zeros(real, int)
    for i in range(real):
        changed = masked[i] != original[i] or filled[i] != original[i]
        fill = f"**{vocab[filled[i]]}**" if filled[i] != original[i] else vocab[filled[i]]
        verdict = "yes" if labels[i] else ""
        rows.append(f"| {i} | {vocab[original[i]]} | {vocab[masked[i]] if changed else ''} | "
                    f"{fill if changed else ''} | {probability[i]:.2f} | {verdict} |")
    return "\n".join(rows)
