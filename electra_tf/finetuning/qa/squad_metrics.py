"""The official SQuAD evaluation: answer normalisation, exact match and F1, and SQuAD 2.0's no-answer scores.

Re-implemented from the official v1.1 and v2.0 evaluation scripts (as the
original runs them: google-research/electra `finetune/qa/squad_official_eval.py`):
answers are lower-cased, stripped of punctuation and of the articles a, an,
the, and their whitespace collapsed; F1 is token overlap. Scores are
percentages, as the official scripts print them. For 2.0, a question counts
as unanswered when its no-answer score exceeds the threshold; HasAns_* and
NoAns_* score the two kinds of question, and best_* the best threshold.
"""

import collections
import re
import string

_PUNCTUATION = set(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)


def normalize_answer(text):
    """Lower case, no punctuation, no articles, single spaces.

    Example:

    >>> normalize_answer("The  Eiffel-Tower, in Paris!")
    'eiffeltower in paris'
    """
    text = "".join(c for c in text.lower() if c not in _PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def exact_match(prediction, gold):
    """1 when the normalised answers are equal, else 0.

    Example:

    >>> exact_match("the Eiffel Tower", "Eiffel tower."), exact_match("Paris", "in Paris")
    (1, 0)
    """
    return int(normalize_answer(prediction) == normalize_answer(gold))


def f1_score(prediction, gold):
    """Token-overlap F1 of the normalised answers; when either is empty, 1 if both are, else 0.

    Example:

    >>> round(f1_score("in central Paris", "Paris"), 4), f1_score("", ""), f1_score("x", "")
    (0.5, 1, 0)
    """
    predicted, expected = normalize_answer(prediction).split(), normalize_answer(gold).split()
    if not predicted or not expected:
        return int(predicted == expected)
    common = sum((collections.Counter(predicted) & collections.Counter(expected)).values())
    if not common:
        return 0
    precision, recall = common / len(predicted), common / len(expected)
    return 2 * precision * recall / (precision + recall)


def _gold(answers):
    # SQuAD 2.0: answers that normalise to nothing are dropped; none left means "no answer".
    kept = [a for a in answers if normalize_answer(a)]
    return kept or [""]


def evaluate_v1(gold, predictions):
    """{"exact_match", "f1"}: SQuAD 1.1's scores, each the best over a question's gold answers.

    A question without a prediction scores 0.

    Args:
        gold: {question id: [gold answer texts]}.
        predictions: {question id: predicted text}.

    Example:

    >>> evaluate_v1({"q1": ["Paris", "in Paris"], "q2": ["1895"]}, {"q1": "in Paris", "q2": "1895 1943"})
    {'exact_match': 50.0, 'f1': 83.33333333333333}
    """
    exact = f1 = 0.0
    for qid, answers in gold.items():
        if qid not in predictions:
            continue
        exact += max(exact_match(predictions[qid], a) for a in answers)
        f1 += max(f1_score(predictions[qid], a) for a in answers)
    return {"exact_match": 100.0 * exact / len(gold), "f1": 100.0 * f1 / len(gold)}


def _best_threshold(predictions, raw, null_odds, has_answer):
    """The official find_best_thresh: sweep the threshold up the sorted no-answer scores."""
    score = best = sum(not has_answer[q] for q in raw)
    threshold = 0.0
    for qid in sorted(raw, key=lambda q: null_odds[q]):
        if has_answer[qid]:
            score += raw[qid]
        else:
            score += -1 if predictions[qid] else 0
        if score > best:
            best, threshold = score, null_odds[qid]
    return 100.0 * best / len(raw), threshold


def evaluate_v2(gold, predictions, null_odds, threshold):
    """SQuAD 2.0's scores: exact, f1 (and HasAns_*, NoAns_*), with best_* at the best threshold.

    Args:
        gold: {question id: [gold answer texts]} (empty for a question without an answer).
        predictions: {question id: the best non-empty answer}.
        null_odds: {question id: no-answer score} (higher: more likely unanswerable).
        threshold: a question is answered "" when its no-answer score exceeds this.

    Example:

    >>> gold = {"q1": ["Paris"], "q2": []}
    >>> scores = evaluate_v2(gold, {"q1": "Paris", "q2": "Rome"}, {"q1": -5.0, "q2": 1.0}, threshold=0.0)
    >>> scores["exact"], scores["HasAns_exact"], scores["NoAns_exact"], scores["best_exact"]
    (100.0, 100.0, 100.0, 100.0)
    """
    has_answer = {qid: bool(_gold(answers)[0]) for qid, answers in gold.items()}
    exact_raw, f1_raw = {}, {}
    for qid, answers in gold.items():
        if qid not in predictions:
            continue
        kept = _gold(answers)
        exact_raw[qid] = max(exact_match(predictions[qid], a) for a in kept)
        f1_raw[qid] = max(f1_score(predictions[qid], a) for a in kept)

    def thresholded(raw):
        return {qid: float(not has_answer[qid]) if null_odds[qid] > threshold else value
                for qid, value in raw.items()}

    exact, f1 = thresholded(exact_raw), thresholded(f1_raw)
    results = {}
    for prefix, qids in (("", list(gold)), ("HasAns_", [q for q in gold if has_answer[q]]),
                         ("NoAns_", [q for q in gold if not has_answer[q]])):
        if prefix and not qids:
            continue
        results[prefix + "exact"] = 100.0 * sum(exact.get(q, 0.0) for q in qids) / len(qids)
        results[prefix + "f1"] = 100.0 * sum(f1.get(q, 0.0) for q in qids) / len(qids)
        results[prefix + "total"] = len(qids)
    if exact_raw:
        results["best_exact"], results["best_exact_thresh"] = _best_threshold(predictions, exact_raw, null_odds,
                                                                              has_answer)
        results["best_f1"], results["best_f1_thresh"] = _best_threshold(predictions, f1_raw, null_odds, has_answer)
    return results
