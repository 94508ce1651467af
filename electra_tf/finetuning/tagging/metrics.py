"""Tagging metrics: entity-level precision, recall and F1 over spans, and token accuracy.

The entity scores are the original's `EntityLevelF1Scorer`
(google-research/electra `finetune/tagging/tagging_metrics.py`): spans of
each sentence (electra_tf.text.spans.span_labels), counted
over the corpus. Values are fractions (0.871), not the original's percentages.
"""

from electra_tf.text.spans import span_labels


def entity_scores(gold, predicted):
    """{"f1", "precision", "recall"} of the predicted spans against the gold ones, over all sentences.

    All three are 0 when no span is correct.

    Args:
        gold: a list of sentences, each a list of chunk-style tags.
        predicted: the predicted tags, sentence for sentence.

    Example:

    >>> gold = [["B-NP", "I-NP", "O", "B-VP"]]
    >>> predicted = [["B-NP", "I-NP", "O", "B-NP"]]
    >>> {k: round(v, 4) for k, v in entity_scores(gold, predicted).items()}
    {'f1': 0.5, 'precision': 0.5, 'recall': 0.5}
    """
    correct = n_gold = n_predicted = 0
    for gold_tags, predicted_tags in zip(gold, predicted, strict=True):
        gold_spans, predicted_spans = set(span_labels(gold_tags)), set(span_labels(predicted_tags))
        correct += len(gold_spans & predicted_spans)
        n_gold += len(gold_spans)
        n_predicted += len(predicted_spans)
    if not correct:
        return {"f1": 0.0, "precision": 0.0, "recall": 0.0}
    precision, recall = correct / n_predicted, correct / n_gold
    return {"f1": 2 * precision * recall / (precision + recall), "precision": precision, "recall": recall}


def token_accuracy(gold, predicted):
    """{"accuracy"}: the share of words whose predicted tag is the gold one.

    Args:
        gold: a list of sentences, each a list of tags.
        predicted: the predicted tags, sentence for sentence.

    Example:

    >>> token_accuracy([["DT", "NN"], ["VB"]], [["DT", "VB"], ["VB"]])
    {'accuracy': 0.6666666666666666}
    """
    pairs = [(g, p) for gold_tags, predicted_tags in zip(gold, predicted, strict=True)
             for g, p in zip(gold_tags, predicted_tags, strict=True)]
    return {"accuracy": sum(g == p for g, p in pairs) / len(pairs) if pairs else 0.0}


def score(gold, predicted, chunk):
    """entity_scores when `chunk` (chunk-style tags), else token_accuracy."""
    return entity_scores(gold, predicted) if chunk else token_accuracy(gold, predicted)


def metric_names(chunk):
    """The metrics reported, the one that selects the best epoch first."""
    return ("f1", "precision", "recall") if chunk else ("accuracy",)
