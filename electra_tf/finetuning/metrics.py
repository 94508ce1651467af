"""The GLUE metrics, in NumPy: accuracy, F1, Matthews correlation, Pearson and Spearman correlation.

Values are fractions (0.871), not the original's percentages.
"""

import numpy as np

# Each task's metrics; the first one picks the best epoch (the paper reports MCC for CoLA,
# Spearman for STS-B and accuracy for the others).
_TASK_METRICS = {
    "cola": ("mcc", "accuracy"),
    "mrpc": ("accuracy", "f1"),
    "qqp": ("accuracy", "f1"),
    "stsb": ("spearman", "pearson", "mse"),
}
CLASSIFICATION_METRICS = ("accuracy",)
REGRESSION_METRICS = ("spearman", "pearson", "mse")


def task_metric_names(task, regression):
    """The metrics of a task, the selecting one first.

    Example:

    >>> task_metric_names("cola", False)
    ('mcc', 'accuracy')
    """
    if task in _TASK_METRICS:
        return _TASK_METRICS[task]
    return REGRESSION_METRICS if regression else CLASSIFICATION_METRICS


def accuracy(labels, predictions):
    """Share of predictions equal to the labels.

    Example:

    >>> accuracy([0, 1, 1, 0], [0, 1, 0, 0])
    0.75
    """
    labels, predictions = np.asarray(labels), np.asarray(predictions)
    return float(np.mean(labels == predictions)) if labels.size else 0.0


def f1(labels, predictions, positive=1):
    """F1 of the positive class (GLUE's MRPC and QQP F1); 0 when there is no true positive.

    Example:

    >>> f1([1, 1, 0, 0], [1, 0, 1, 0])
    0.5
    """
    labels, predictions = np.asarray(labels) == positive, np.asarray(predictions) == positive
    true_positives = float(np.sum(labels & predictions))
    if not true_positives:
        return 0.0
    precision = true_positives / np.sum(predictions)
    recall = true_positives / np.sum(labels)
    return float(2 * precision * recall / (precision + recall))


def matthews_correlation(labels, predictions):
    """Matthews correlation coefficient (CoLA's metric), for any number of classes; 0 when undefined.

    Example:

    >>> round(matthews_correlation([1, 1, 0, 0], [1, 0, 0, 0]), 4)
    0.5774
    """
    labels, predictions = np.asarray(labels), np.asarray(predictions)
    classes = np.union1d(labels, predictions)
    confusion = np.zeros((len(classes), len(classes)), np.float64)
    np.add.at(confusion, (np.searchsorted(classes, labels), np.searchsorted(classes, predictions)), 1)
    true_counts, predicted_counts = confusion.sum(axis=1), confusion.sum(axis=0)
    correct, total = np.trace(confusion), confusion.sum()
    numerator = correct * total - np.dot(predicted_counts, true_counts)
    denominator = np.sqrt((total ** 2 - np.dot(predicted_counts, predicted_counts))
                          * (total ** 2 - np.dot(true_counts, true_counts)))
    return float(numerator / denominator) if denominator else 0.0


def pearson(x, y):
    """Pearson correlation; 0 when either side is constant.

    Example:

    >>> pearson([1, 2, 3], [2, 4, 7])
    0.9933992677987828
    """
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    x, y = x - x.mean(), y - y.mean()
    denominator = np.sqrt(np.dot(x, x) * np.dot(y, y))
    return float(np.dot(x, y) / denominator) if denominator else 0.0


def _average_ranks(values):
    """Ranks 1..n, tied values sharing the mean of their ranks."""
    values = np.asarray(values, np.float64)
    order = np.argsort(values, kind="mergesort")
    ranks = np.empty(len(values), np.float64)
    sorted_values = values[order]
    start = 0
    for end in range(1, len(values) + 1):
        if end == len(values) or sorted_values[end] != sorted_values[start]:
            ranks[order[start:end]] = (start + end + 1) / 2.0
            start = end
    return ranks


def spearman(x, y):
    """Spearman rank correlation (Pearson of the tie-averaged ranks).

    Example:

    >>> spearman([1, 2, 3, 4], [10, 20, 40, 30])
    0.8
    """
    return pearson(_average_ranks(x), _average_ranks(y))


def mean_squared_error(x, y):
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    return float(np.mean((x - y) ** 2)) if x.size else 0.0


_FUNCTIONS = {"accuracy": accuracy, "f1": f1, "mcc": matthews_correlation, "pearson": pearson,
              "spearman": spearman, "mse": mean_squared_error}


def compute(names, labels, predictions):
    """{name: value} for the metric `names` (label ids or scores, predicted ids or scores).

    Example:

    >>> compute(("accuracy", "f1"), [1, 0, 1], [1, 1, 1])
    {'accuracy': 0.6666666666666666, 'f1': 0.8}
    """
    return {name: _FUNCTIONS[name](labels, predictions) for name in names}
