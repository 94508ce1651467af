"""Fine-tuning data: GLUE's TSV layouts, custom files, bad input, metrics, the Rotten Tomatoes export."""

import json
import os

import numpy as np
import pytest
import scipy.stats
import sklearn.metrics

from data_prep import export_rotten_tomatoes
from electra_tf.finetuning import metrics, tasks
from electra_tf.utils.errors import UserError


def _write(path, lines):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="") as f:
        f.write("".join(line + "\n" for line in lines))


def _tsv(*fields):
    return "\t".join(fields)


# One small copy of each GLUE task's files, with the GLUE download's headers and column order.
MNLI_HEADER = _tsv("index", "promptID", "pairID", "genre", "sentence1_binary_parse", "sentence2_binary_parse",
                   "sentence1_parse", "sentence2_parse", "sentence1", "sentence2", "label1", "gold_label")


def _mnli_row(i, a, b, label=None):
    row = [str(i), "p", "q", "fiction", "(", "(", "(", "(", a, b]
    return _tsv(*row, *([label, label] if label else []))


def _sts_row(i, a, b, score=None):
    return _tsv(str(i), "main-news", "f", "2012", "0", "s1", "s2", a, b, *([score] if score else []))


GLUE_FILES = {
    "cola": {"train.tsv": [_tsv("gj04", "1", "", 'He said "hi" to me.'), _tsv("gj04", "0", "*", "Him go.")],
             "dev.tsv": [_tsv("cj99", "1", "", "The cat sat.")],
             "test.tsv": [_tsv("index", "sentence"), _tsv("0", "Dogs bark."), _tsv("1", "Bark dogs the.")]},
    "sst2": {"train.tsv": [_tsv("sentence", "label"), _tsv('a "great" film ', "1"), _tsv("dull", "0")],
             "dev.tsv": [_tsv("sentence", "label"), _tsv("fine", "1")],
             "test.tsv": [_tsv("index", "sentence"), _tsv("0", "lovely"), _tsv("1", "awful")]},
    "mrpc": {"train.tsv": [_tsv("Quality", "#1 ID", "#2 ID", "#1 String", "#2 String"),
                           _tsv("1", "1", "2", "He left.", "He went away."), _tsv("0", "3", "4", "Red.", "Blue.")],
             "dev.tsv": [_tsv("Quality", "#1 ID", "#2 ID", "#1 String", "#2 String"), _tsv("1", "5", "6", "A", "B")],
             "test.tsv": [_tsv("index", "#1 ID", "#2 ID", "#1 String", "#2 String"), _tsv("0", "7", "8", "C", "D")]},
    "stsb": {"train.tsv": [_tsv("index", "genre", "filename", "year", "old_index", "source1", "source2",
                                "sentence1", "sentence2", "score"),
                           _sts_row(0, "A man plays.", "A man is playing.", "4.5"), _sts_row(1, "Cats.", "Cars.", "0")],
             "dev.tsv": [_tsv("index", "g", "f", "y", "o", "s1", "s2", "sentence1", "sentence2", "score"),
                         _sts_row(0, "One.", "Two.", "2.5")],
             "test.tsv": [_tsv("index", "g", "f", "y", "o", "s1", "s2", "sentence1", "sentence2"),
                          _sts_row(0, "Three.", "Four.")]},
    "qqp": {"train.tsv": [_tsv("id", "qid1", "qid2", "question1", "question2", "is_duplicate"),
                          _tsv("0", "1", "2", "How old?", "What age?", "1"),
                          _tsv("1", "3", "4", "broken line with too few fields"),
                          _tsv("2", "5", "6", "Why?", "How?", "0")],
            "dev.tsv": [_tsv("id", "qid1", "qid2", "question1", "question2", "is_duplicate"),
                        _tsv("0", "1", "2", "Q1?", "Q2?", "0")],
            "test.tsv": [_tsv("id", "question1", "question2"), _tsv("0", "T1?", "T2?")]},
    "mnli": {"train.tsv": [MNLI_HEADER, _mnli_row(0, "It rains.", "It is wet.", "entailment"),
                           _mnli_row(1, "It rains.", "It is dry.", "contradiction")],
             "dev_matched.tsv": [MNLI_HEADER, _mnli_row(0, "M1.", "M2.", "neutral")],
             "dev_mismatched.tsv": [MNLI_HEADER, _mnli_row(0, "X1.", "X2.", "entailment"),
                                    _mnli_row(1, "Y1.", "Y2.", "neutral")],
             "test_matched.tsv": [MNLI_HEADER, _mnli_row(0, "T1.", "T2.")],
             "test_mismatched.tsv": [MNLI_HEADER, _mnli_row(0, "U1.", "U2.")],
             "../diagnostic/diagnostic.tsv": [_tsv("index", "sentence1", "sentence2"), _tsv("0", "D1.", "D2.")]},
    "qnli": {"train.tsv": [_tsv("index", "question", "sentence", "label"), _tsv("0", "Who?", "Him.", "entailment")],
             "dev.tsv": [_tsv("index", "question", "sentence", "label"), _tsv("0", "Q?", "S.", "not_entailment")],
             "test.tsv": [_tsv("index", "question", "sentence"), _tsv("0", "Q?", "S.")]},
    "rte": {"train.tsv": [_tsv("index", "sentence1", "sentence2", "label"), _tsv("0", "P.", "H.", "entailment")],
            "dev.tsv": [_tsv("index", "sentence1", "sentence2", "label"), _tsv("0", "P2.", "H2.", "not_entailment")],
            "test.tsv": [_tsv("index", "sentence1", "sentence2"), _tsv("0", "P3.", "H3.")]},
    "wnli": {"train.tsv": [_tsv("index", "sentence1", "sentence2", "label"), _tsv("0", "P.", "H.", "1")],
             "dev.tsv": [_tsv("index", "sentence1", "sentence2", "label"), _tsv("0", "P2.", "H2.", "0")],
             "test.tsv": [_tsv("index", "sentence1", "sentence2"), _tsv("0", "P3.", "H3.")]},
}


def write_glue(root, task):
    directory = os.path.join(root, task.upper())
    for name, lines in GLUE_FILES[task].items():
        _write(os.path.normpath(os.path.join(directory, name)), lines)
    return directory


def _triples(split):
    return [(e.index, e.text_a, e.text_b, e.label) for e in split.examples]


def test_glue_layouts(tmp_path):
    read = {task: tasks.read_glue(task, write_glue(tmp_path, task)) for task in tasks.GLUE_TASKS}
    # CoLA: no header in train and dev, a header in test; '"' is text (no quoting).
    assert _triples(read["cola"].train) == [(0, 'He said "hi" to me.', None, "1"), (1, "Him go.", None, "0")]
    assert [(e.index, e.text_a) for e in read["cola"].test[0].examples] == [(0, "Dogs bark."), (1, "Bark dogs the.")]
    assert read["sst2"].train.examples[0] == tasks.Example(0, 'a "great" film', None, "1")
    assert [s.submission_file for s in read["sst2"].test] == ["SST-2.tsv"]
    # MRPC is trained on both orders; dev is not doubled.
    assert _triples(read["mrpc"].train) == [(0, "He left.", "He went away.", "1"), (1, "Red.", "Blue.", "0"),
                                            (0, "He went away.", "He left.", "1"), (1, "Blue.", "Red.", "0")]
    assert _triples(read["mrpc"].dev[0]) == [(0, "A", "B", "1")]
    assert _triples(read["mrpc"].test[0]) == [(0, "C", "D", None)]
    # STS-B: columns from the end, targets divided by 5 (the original's normalisation), both orders.
    sts = read["stsb"]
    assert sts.regression and sts.label_scale == 5.0 and sts.pair
    assert _triples(sts.train)[:2] == [(0, "A man plays.", "A man is playing.", 0.9), (1, "Cats.", "Cars.", 0.0)]
    assert len(sts.train.examples) == 4
    assert _triples(sts.test[0]) == [(0, "Three.", "Four.", None)]
    # QQP: a line with too few fields is skipped and counted; the row numbering is kept.
    qqp = read["qqp"]
    assert [e.index for e in qqp.train.examples] == [0, 2] and qqp.train.malformed_lines == 1
    assert _triples(qqp.test[0]) == [(0, "T1?", "T2?", None)]
    # MNLI: matched and mismatched dev, three test files, the diagnostic set found beside the task.
    mnli = read["mnli"]
    assert mnli.labels == ["contradiction", "entailment", "neutral"]
    assert [s.name for s in mnli.dev] == ["dev_matched", "dev_mismatched"]
    assert _triples(mnli.dev[1]) == [(0, "X1.", "X2.", "entailment"), (1, "Y1.", "Y2.", "neutral")]
    assert [(s.name, s.submission_file) for s in mnli.test] == [
        ("test_matched", "MNLI-m.tsv"), ("test_mismatched", "MNLI-mm.tsv"), ("diagnostic", "AX.tsv")]
    assert _triples(mnli.test[2]) == [(0, "D1.", "D2.", None)]
    assert mnli.metric_names == ["matched_accuracy", "mismatched_accuracy"]
    assert _triples(read["qnli"].dev[0]) == [(0, "Q?", "S.", "not_entailment")]
    assert _triples(read["rte"].train) == [(0, "P.", "H.", "entailment")]
    assert _triples(read["wnli"].dev[0]) == [(0, "P2.", "H2.", "0")]
    assert read["cola"].metric_names == ["mcc", "accuracy"] and read["mrpc"].metric_names == ["accuracy", "f1"]
    assert read["stsb"].metric_names == ["spearman", "pearson", "mse"]


def test_glue_bad_input(tmp_path):
    directory = write_glue(tmp_path, "rte")
    _write(os.path.join(directory, "dev.tsv"), [_tsv("index", "sentence1", "sentence2", "label"),
                                                _tsv("0", "P.", "H.", "maybe")])
    with pytest.raises(UserError, match=r"dev.tsv line 2: label 'maybe' is not one of the task's labels"):
        tasks.read_glue("rte", directory)
    with pytest.raises(UserError, match="train.tsv not found"):
        tasks.read_glue("sst2", str(tmp_path))
    sst = write_glue(tmp_path, "sst2")
    _write(os.path.join(sst, "train.tsv"), [_tsv("sentence", "label")])
    with pytest.raises(UserError, match="has no data rows"):
        tasks.read_glue("sst2", sst)
    sts = write_glue(tmp_path, "stsb")
    _write(os.path.join(sts, "dev.tsv"), [_tsv("index", "sentence1", "sentence2", "score"), _tsv("0", "A", "B", "x")])
    with pytest.raises(UserError, match="regression target 'x' is not a finite number"):
        tasks.read_glue("stsb", sts)


def test_custom_formats_and_labels(tmp_path):
    _write(tmp_path / "train.tsv", ["text\tlabel", 'a "quoted" one\t10', "b\t2", "  \t2", "c\t2"])
    _write(tmp_path / "dev.csv", ["label,text", '2,"a, b\nover two lines"', "10,d"])
    _write(tmp_path / "test.jsonl", [json.dumps({"text": "e", "id": 3}), "", json.dumps({"text": "", "id": 4})])
    data = tasks.read_custom(tasks.find_split_file(str(tmp_path), "train", True),
                             tasks.find_split_file(str(tmp_path), "dev", True),
                             tasks.find_split_file(str(tmp_path), "test", False))
    assert data.labels == ["2", "10"]  # integers in numeric order
    assert _triples(data.train) == [(0, 'a "quoted" one', None, "10"), (1, "b", None, "2"), (3, "c", None, "2")]
    assert data.train.empty_texts == 1  # skipped and counted
    assert _triples(data.dev[0]) == [(0, "a, b\nover two lines", None, "2"), (1, "d", None, "10")]
    # The test file has no label column; its empty text is kept (a submission needs every row) and counted.
    assert _triples(data.test[0]) == [(0, "e", None, None), (1, "", None, None)] and data.test[0].empty_texts == 1
    assert not data.test[0].labelled and data.metric_names == ["accuracy"]

    _write(tmp_path / "pairs" / "train.jsonl", [json.dumps({"q": "x", "p": "y", "score": 1.5})])
    _write(tmp_path / "pairs" / "dev.jsonl", [json.dumps({"q": "z", "p": "w", "score": "2"})])
    pairs = tasks.read_custom(str(tmp_path / "pairs" / "train.jsonl"), str(tmp_path / "pairs" / "dev.jsonl"),
                              columns=tasks.CustomColumns("q", "p", "score"), regression=True)
    assert pairs.regression and pairs.pair and _triples(pairs.dev[0]) == [(0, "z", "w", 2.0)]
    assert pairs.metric_names == ["spearman", "pearson", "mse"]


@pytest.mark.parametrize("train, dev, columns, regression, message", [
    (["text\tlabel", "a\tpos", "b\tneg"], ["text\tlabel", "c\tmaybe"], ("text", None, "label"), False,
     r"dev.tsv line 2: label 'maybe' is not one of the training file's labels \(neg, pos\)"),
    (["sentence\tlabel", "a\tpos"], ["sentence\tlabel", "c\tpos"], ("text", None, "label"), False,
     r"train.tsv has no column 'text' \(columns: sentence, label\); set --text_a_column"),
    (["text\tlabel", "a\tpos", "b\tneg"], ["text\tlabel", "c\tpos"], ("text", "text2", "label"), False,
     r"train.tsv has no column 'text2' .*--text_b_column"),
    (["text\tscore", "a\t0.5"], ["text\tscore", "c\thigh"], ("text", None, "score"), True,
     r"dev.tsv line 2: regression target 'high' is not a finite number"),
    (["text\tlabel"], ["text\tlabel", "c\tpos"], ("text", None, "label"), False, r"train.tsv is empty"),
    ([], ["text\tlabel", "c\tpos"], ("text", None, "label"), False, r"train.tsv is empty"),
    (["text\tlabel", "a\tpos", "b\tpos"], ["text\tlabel", "c\tpos"], ("text", None, "label"), False,
     r"has a single label"),
    (["text\tlabel", "a\tpos\textra", "b\tneg"], ["text\tlabel", "c\tpos"], ("text", None, "label"), False,
     r"train.tsv line 2 has 3 fields but the header has 2"),
    (["text\tlabel", "\tpos", " \tneg"], ["text\tlabel", "c\tpos"], ("text", None, "label"), False,
     r"train.tsv has no example with a non-empty text \(2 empty\)"),
])
def test_custom_bad_input(tmp_path, train, dev, columns, regression, message):
    _write(tmp_path / "train.tsv", train)
    _write(tmp_path / "dev.tsv", dev)
    with pytest.raises(UserError, match=message):
        tasks.read_custom(str(tmp_path / "train.tsv"), str(tmp_path / "dev.tsv"),
                          columns=tasks.CustomColumns(*columns), regression=regression)


def test_split_files_are_found_once(tmp_path):
    _write(tmp_path / "train.tsv", ["text\tlabel"])
    _write(tmp_path / "train.csv", ["text,label"])
    with pytest.raises(UserError, match="holds train.tsv and train.csv"):
        tasks.find_split_file(str(tmp_path), "train", True)
    with pytest.raises(UserError, match="no dev file"):
        tasks.find_split_file(str(tmp_path), "dev", True)
    assert tasks.find_split_file(str(tmp_path), "test", False) is None


def test_subsample_is_fixed_and_keeps_swapped_pairs(tmp_path):
    data = tasks.read_glue("mrpc", write_glue(tmp_path, "mrpc"))
    small = tasks.subsample(data, 1)
    assert len(small.train.examples) == 2 and {e.index for e in small.train.examples} == {
        small.train.examples[0].index}
    again = tasks.subsample(tasks.read_glue("mrpc", write_glue(tmp_path, "mrpc")), 1)
    assert _triples(again.train) == _triples(small.train)


def _random_labels(seed, n=200, classes=2):
    rng = np.random.RandomState(seed)
    truth = rng.randint(0, classes, n)
    predicted = np.where(rng.rand(n) < 0.7, truth, rng.randint(0, classes, n))
    return truth, predicted


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_metrics_against_scikit_learn_and_scipy(seed):
    truth, predicted = _random_labels(seed)
    assert metrics.accuracy(truth, predicted) == pytest.approx(sklearn.metrics.accuracy_score(truth, predicted))
    assert metrics.f1(truth, predicted) == pytest.approx(sklearn.metrics.f1_score(truth, predicted))
    assert metrics.matthews_correlation(truth, predicted) == pytest.approx(
        sklearn.metrics.matthews_corrcoef(truth, predicted))
    three, predicted3 = _random_labels(seed, classes=3)
    assert metrics.matthews_correlation(three, predicted3) == pytest.approx(
        sklearn.metrics.matthews_corrcoef(three, predicted3))
    rng = np.random.RandomState(seed)
    x = np.round(rng.rand(100) * 5, 1)  # ties, as STS-B's scores have
    y = x + rng.randn(100)
    assert metrics.pearson(x, y) == pytest.approx(scipy.stats.pearsonr(x, y)[0])
    assert metrics.spearman(x, y) == pytest.approx(scipy.stats.spearmanr(x, y)[0])
    assert metrics.mean_squared_error(x, y) == pytest.approx(sklearn.metrics.mean_squared_error(x, y))


def test_metric_edge_cases():
    assert metrics.f1([0, 0, 1], [0, 0, 0]) == 0.0  # no true positive
    assert metrics.matthews_correlation([1, 1, 1], [1, 1, 1]) == 0.0  # undefined: sklearn gives 0 too
    assert metrics.pearson([1, 1, 1], [1, 2, 3]) == 0.0
    assert metrics.compute(("accuracy", "f1"), [1, 0], [1, 0]) == {"accuracy": 1.0, "f1": 1.0}


def test_rotten_tomatoes_export(tmp_path):
    reviews = export_rotten_tomatoes.read_reviews()
    assert len(reviews) > 12_000 and {label for _, _, label in reviews} == {"fresh", "rotten"}
    assert len({text.lower() for _, text, _ in reviews}) == len(reviews)  # deduplicated
    assert all("\t" not in text and "\n" not in text and text == text.strip() for _, text, _ in reviews)
    splits = export_rotten_tomatoes.split_by_movie(reviews, seed=0)
    assert sum(len(rows) for rows in splits.values()) == len(reviews)
    assert 0.09 < len(splits["test"]) / len(reviews) < 0.12 and 0.09 < len(splits["dev"]) / len(reviews) < 0.12
    movie_of = {text: movie for movie, text, _ in reviews}
    movies = {name: {movie_of[text] for text, _ in rows} for name, rows in splits.items()}
    assert not movies["train"] & movies["test"] and not movies["train"] & movies["dev"]
    assert export_rotten_tomatoes.split_by_movie(reviews, seed=0) == splits
    assert export_rotten_tomatoes.split_by_movie(reviews, seed=1)["test"] != splits["test"]
    export_rotten_tomatoes.write_splits(splits, str(tmp_path / "rt"))
    data = tasks.read_custom(str(tmp_path / "rt" / "train.tsv"), str(tmp_path / "rt" / "dev.tsv"),
                             str(tmp_path / "rt" / "test.tsv"))
    assert data.labels == ["fresh", "rotten"]
    assert [len(s.examples) for s in (data.train, data.dev[0], data.test[0])] == [
        len(splits[n]) for n in ("train", "dev", "test")]
