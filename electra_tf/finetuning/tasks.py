"""Reading fine-tuning tasks: the GLUE tasks in their TSV layouts, and your own CSV, TSV or JSONL files.

Everything is checked while reading, before any training: a missing column,
an empty file, a label outside the task's label set or a non-numeric
regression target is a `UserError` naming the file and line. Examples
whose text is empty are skipped (train and dev) and counted; so are the
malformed lines of GLUE files, which the original skips too (QQP has some).
No TensorFlow here.
"""

import collections
import csv
import dataclasses
import json
import math
import os
import random
import sys

from electra_tf.utils.errors import UserError

GLUE_TASKS = ("cola", "sst2", "mrpc", "stsb", "qqp", "mnli", "qnli", "rte", "wnli")
TASKS = GLUE_TASKS + ("custom",)
CUSTOM_FORMATS = (".tsv", ".csv", ".jsonl")
# GLUE's texts hold very long lines (QQP); the csv module's default limit is 128 KiB.
csv.field_size_limit(min(sys.maxsize, 2**31 - 1))


@dataclasses.dataclass(frozen=True)
class Example:
    """One example: `index` is its row among the data rows of its file (GLUE's test index)."""

    index: int
    text_a: str
    text_b: str = None
    label: object = None  # a label string, a float target, or None (unlabelled test rows)


@dataclasses.dataclass
class Split:
    """The examples of one file, and what was skipped while reading it."""

    name: str
    path: str
    examples: list
    labelled: bool = True
    empty_texts: int = 0  # skipped (train, dev) or kept (test) and counted
    malformed_lines: int = 0  # GLUE only: lines with too few fields, skipped as the original does
    submission_file: str = None  # test splits: the file name of the predictions
    subset_of: int = None  # train with --max_train_examples: the examples there were


@dataclasses.dataclass
class TaskData:
    """A task read from disk: its splits, label set and metrics.

    `dev` is a list: MNLI has a matched and a mismatched one, and the metrics
    of each carry its `metric_prefix`.
    """

    name: str
    labels: list  # label strings in id order; None for regression
    train: Split
    dev: list
    test: list
    pair: bool
    label_scale: float = 1.0  # regression targets are divided by it for training (STS-B: 5)
    metric_prefixes: dict = dataclasses.field(default_factory=dict)

    @property
    def regression(self):
        return self.labels is None

    @property
    def metric_names(self):
        """The metrics reported, by name, in the order shown."""
        from electra_tf.finetuning.metrics import task_metric_names

        base = task_metric_names(self.name, self.regression)
        return [self.metric_prefixes.get(split.name, "") + m for split in self.dev for m in base]

    @property
    def headline_metric(self):
        """The metric that picks the best epoch: the first one of the first dev split."""
        return self.metric_names[0]

    def summary(self):
        """One line per split: examples, and what was skipped."""
        lines = []
        for split in [self.train, *self.dev, *self.test]:
            notes = []
            if split.empty_texts:
                verb = "skipped" if split in (self.train, *self.dev) else "kept"
                notes.append(f"{split.empty_texts} with an empty text {verb}")
            if split.malformed_lines:
                notes.append(f"{split.malformed_lines} malformed lines skipped")
            if split.subset_of:
                notes.append(f"a fixed subset of the {split.subset_of:,}")
            lines.append(f"{split.name}: {len(split.examples):,} examples from {split.path}"
                         + (f" ({'; '.join(notes)})" if notes else ""))
        return lines


# ---- GLUE -----------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _Layout:
    """Where one GLUE file keeps its fields (column indices; negative ones count from the end)."""

    file: str
    header: bool
    text_a: int
    text_b: int = None
    label: int = None


@dataclasses.dataclass(frozen=True)
class _GlueTask:
    labels: tuple  # None: regression
    train: _Layout
    dev: tuple  # ((split name, layout, metric prefix), ...)
    test: tuple  # ((split name, layout, submission file), ...)
    label_scale: float = 1.0
    double_unordered: bool = False


# The layouts of the GLUE download (gluebenchmark.com), as the original's classification_tasks.py
# reads them: the file's own index column is never read, an example's index is its data-row number.
_GLUE = {
    "cola": _GlueTask(("0", "1"), _Layout("train.tsv", False, 3, None, 1),
                      (("dev", _Layout("dev.tsv", False, 3, None, 1), ""),),
                      (("test", _Layout("test.tsv", True, 1), "CoLA.tsv"),)),
    "sst2": _GlueTask(("0", "1"), _Layout("train.tsv", True, 0, None, 1),
                      (("dev", _Layout("dev.tsv", True, 0, None, 1), ""),),
                      (("test", _Layout("test.tsv", True, 1), "SST-2.tsv"),)),
    "mrpc": _GlueTask(("0", "1"), _Layout("train.tsv", True, 3, 4, 0),
                      (("dev", _Layout("dev.tsv", True, 3, 4, 0), ""),),
                      (("test", _Layout("test.tsv", True, 3, 4), "MRPC.tsv"),), double_unordered=True),
    "stsb": _GlueTask(None, _Layout("train.tsv", True, -3, -2, -1),
                      (("dev", _Layout("dev.tsv", True, -3, -2, -1), ""),),
                      (("test", _Layout("test.tsv", True, -2, -1), "STS-B.tsv"),), label_scale=5.0,
                      double_unordered=True),
    "qqp": _GlueTask(("0", "1"), _Layout("train.tsv", True, 3, 4, 5),
                     (("dev", _Layout("dev.tsv", True, 3, 4, 5), ""),),
                     (("test", _Layout("test.tsv", True, 1, 2), "QQP.tsv"),)),
    "mnli": _GlueTask(("contradiction", "entailment", "neutral"), _Layout("train.tsv", True, 8, 9, -1),
                      (("dev_matched", _Layout("dev_matched.tsv", True, 8, 9, -1), "matched_"),
                       ("dev_mismatched", _Layout("dev_mismatched.tsv", True, 8, 9, -1), "mismatched_")),
                      (("test_matched", _Layout("test_matched.tsv", True, 8, 9), "MNLI-m.tsv"),
                       ("test_mismatched", _Layout("test_mismatched.tsv", True, 8, 9), "MNLI-mm.tsv"),
                       ("diagnostic", _Layout("diagnostic.tsv", True, 1, 2), "AX.tsv"))),
    "qnli": _GlueTask(("entailment", "not_entailment"), _Layout("train.tsv", True, 1, 2, 3),
                      (("dev", _Layout("dev.tsv", True, 1, 2, 3), ""),),
                      (("test", _Layout("test.tsv", True, 1, 2), "QNLI.tsv"),)),
    "rte": _GlueTask(("entailment", "not_entailment"), _Layout("train.tsv", True, 1, 2, 3),
                     (("dev", _Layout("dev.tsv", True, 1, 2, 3), ""),),
                     (("test", _Layout("test.tsv", True, 1, 2), "RTE.tsv"),)),
    "wnli": _GlueTask(("0", "1"), _Layout("train.tsv", True, 1, 2, 3),
                      (("dev", _Layout("dev.tsv", True, 1, 2, 3), ""),),
                      (("test", _Layout("test.tsv", True, 1, 2), "WNLI.tsv"),)),
}


def glue_labels(task):
    """The label strings of a GLUE task in id order (None for STS-B, a regression).

    Example:

    >>> glue_labels("mnli")
    ('contradiction', 'entailment', 'neutral')
    """
    return _GLUE[task].labels


def _tsv_rows(path):
    """The rows of a GLUE TSV: tab-separated, no quoting (a '"' is text), one row per line."""
    try:
        with open(path, encoding="utf-8-sig", newline="") as f:
            return list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    except UnicodeDecodeError as e:
        raise UserError(f"{path} is not UTF-8 ({e.reason} at byte {e.start}); save it as UTF-8") from None
    except OSError as e:
        raise UserError(f"cannot read {path} ({e.strerror}); check --data_dir") from None


def _add(split, example, pair, skip_empty):
    """Appends `example`; one with an empty text is counted, and left out when `skip_empty`."""
    if not example.text_a or (pair and not example.text_b):
        split.empty_texts += 1
        if skip_empty:
            return
    split.examples.append(example)


def _label_value(raw, labels, path, line, scale):
    if labels is None:
        return _float_target(raw, path, line) / scale
    if raw not in labels:
        raise UserError(f"{path} line {line}: label {raw!r} is not one of the task's labels "
                        f"{', '.join(labels)}; check the file and --task")
    return raw


def _float_target(raw, path, line):
    try:
        value = float(raw)
    except (TypeError, ValueError):
        value = math.nan
    if not math.isfinite(value):
        raise UserError(f"{path} line {line}: regression target {raw!r} is not a finite number; "
                        "fix the file, or drop --regression for class labels")
    return value


def _read_glue_split(task, name, layout, path, labelled, skip_empty):
    rows = _tsv_rows(path)
    body = rows[1:] if layout.header else rows
    first_line = 2 if layout.header else 1
    if not body:
        raise UserError(f"{path} has no data rows; give the task's {layout.file} from the GLUE download")
    wanted = [c for c in (layout.text_a, layout.text_b, layout.label if labelled else None) if c is not None]
    need = max(c + 1 if c >= 0 else -c for c in wanted)
    split = Split(name, path, [], labelled)
    for index, row in enumerate(body):
        line = first_line + index
        if len(row) < need:
            split.malformed_lines += 1  # as the original: skipped, the numbering kept
            continue
        text_a = row[layout.text_a].strip()
        text_b = row[layout.text_b].strip() if layout.text_b is not None else None
        label = (_label_value(row[layout.label].strip(), _GLUE[task].labels, path, line, _GLUE[task].label_scale)
                 if labelled else None)
        _add(split, Example(index, text_a, text_b, label), layout.text_b is not None, skip_empty)
    if not split.examples:
        raise UserError(f"{path} has no usable rows ({split.malformed_lines} have fewer than {need} tab-separated "
                        f"fields); is it the {task} task's {layout.file}?")
    return split


def _diagnostic_path(data_dir):
    """GLUE ships the diagnostic set (AX) in its own directory beside the tasks'; either place works."""
    for path in (os.path.join(data_dir, "diagnostic.tsv"),
                 os.path.join(os.path.dirname(os.path.abspath(data_dir)), "diagnostic", "diagnostic.tsv")):
        if os.path.exists(path):
            return path
    return None


def read_glue(task, data_dir, double_unordered=True):
    """Reads a GLUE task from its directory of the GLUE download (e.g. glue_data/SST-2).

    train and dev are required; test splits are read when present.
    MRPC's and STS-B's training pairs are added a second time with the two
    sentences swapped when `double_unordered` (the original's default).

    Example:

    >>> rte = tempfile.mkdtemp()  # the layout of glue_data/RTE
    >>> rows = ["index\\tsentence1\\tsentence2\\tlabel", "0\\tA cat sat.\\tA cat is sitting.\\tentailment",
    ...         "1\\tIt rained.\\tThe sun shone.\\tnot_entailment"]
    >>> for name in ("train.tsv", "dev.tsv"):
    ...     _ = open(os.path.join(rte, name), "w").write("\\n".join(rows) + "\\n")
    >>> data = read_glue("rte", rte)
    >>> data.labels, len(data.dev[0].examples), data.dev[0].examples[0].text_b
    (['entailment', 'not_entailment'], 2, 'A cat is sitting.')
    """
    if task not in _GLUE:
        raise UserError(f"unknown task {task!r}; choose one of {', '.join(TASKS)}")
    spec = _GLUE[task]
    if not os.path.isdir(data_dir):
        raise UserError(f"--data_dir {data_dir} is not a directory; give the {task} directory of the GLUE download")

    def path_of(layout, required):
        path = os.path.join(data_dir, layout.file)
        if not os.path.exists(path):
            if required:
                raise UserError(f"{path} not found; --data_dir must be the {task} directory of the GLUE download "
                                f"(holding {layout.file})")
            return None
        return path

    train = _read_glue_split(task, "train", spec.train, path_of(spec.train, True), True, True)
    if double_unordered and spec.double_unordered:
        train.examples += [dataclasses.replace(e, text_a=e.text_b, text_b=e.text_a) for e in train.examples]
    dev = [_read_glue_split(task, name, layout, path_of(layout, True), True, True) for name, layout, _ in spec.dev]
    test = []
    for name, layout, submission in spec.test:
        path = _diagnostic_path(data_dir) if name == "diagnostic" else path_of(layout, False)
        if path:
            split = _read_glue_split(task, name, layout, path, False, False)
            split.submission_file = submission
            test.append(split)
    return TaskData(task, list(spec.labels) if spec.labels else None, train, dev, test,
                    pair=spec.train.text_b is not None, label_scale=spec.label_scale,
                    metric_prefixes={name: prefix for name, _, prefix in spec.dev})


# ---- your own files ---------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class CustomColumns:
    """Which fields of a custom file hold what."""

    text_a: str = "text"
    text_b: str = None
    label: str = "label"


def find_split_file(data_dir, split, required):
    """`<data_dir>/<split>.tsv`, `.csv` or `.jsonl`: exactly one of them (or None when not required)."""
    found = [os.path.join(data_dir, split + ext) for ext in CUSTOM_FORMATS
             if os.path.exists(os.path.join(data_dir, split + ext))]
    if len(found) > 1:
        raise UserError(f"{data_dir} holds {' and '.join(os.path.basename(p) for p in found)}; keep one {split} file "
                        f"or name it with --{split}_file")
    if not found and required:
        raise UserError(f"no {split} file in {data_dir} ({split}.tsv, {split}.csv or {split}.jsonl); add one or "
                        f"name it with --{split}_file")
    return found[0] if found else None


def _records(path):
    """(line number, {column: value}) for every record of a CSV, TSV or JSONL file with named columns."""
    ext = os.path.splitext(path)[1].lower()
    if ext not in CUSTOM_FORMATS:
        raise UserError(f"{path}: unknown format {ext or '(no extension)'}; use .tsv, .csv or .jsonl")
    try:
        with open(path, encoding="utf-8-sig", newline="") as f:
            if ext == ".jsonl":
                return list(_jsonl_records(f, path))
            return list(_delimited_records(f, path, ext))
    except UnicodeDecodeError as e:
        raise UserError(f"{path} is not UTF-8 ({e.reason} at byte {e.start}); save it as UTF-8") from None
    except OSError as e:
        raise UserError(f"cannot read {path} ({e.strerror})") from None


def _jsonl_records(f, path):
    for line_number, line in enumerate(f, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError as e:
            raise UserError(f"{path} line {line_number} is not JSON ({e.msg}); one object per line") from None
        if not isinstance(record, dict):
            raise UserError(f"{path} line {line_number} is not a JSON object; one object per line")
        yield line_number, record


def _delimited_records(f, path, ext):
    # TSV as GLUE's: no quoting, so a '"' is text; CSV with the standard quoting (fields may hold newlines).
    reader = (csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE) if ext == ".tsv" else csv.reader(f))
    header = next(reader, None)
    if header is None:
        return
    header = [h.strip() for h in header]
    for row in reader:
        if not row or (len(row) == 1 and not row[0].strip()):
            continue  # blank line
        if len(row) != len(header):
            raise UserError(f"{path} line {reader.line_num} has {len(row)} fields but the header has {len(header)} "
                            f"({', '.join(header)}); fix the line"
                            + (" (a tab inside a text?)" if ext == ".tsv" else ""))
        yield reader.line_num, dict(zip(header, row))


def _text(value):
    return "" if value is None else str(value).strip()


def _read_custom_split(name, path, columns, labels, regression, labelled, skip_empty):
    records = _records(path)
    if not records:
        raise UserError(f"{path} is empty (no data rows); give a header line and at least one example")
    available = list(records[0][1])
    wanted = [("text_a_column", columns.text_a), ("text_b_column", columns.text_b)]
    if labelled is not False:
        wanted.append(("label_column", columns.label))
    for flag, column in wanted:
        if column is None:
            continue
        missing = next((line for line, record in records if column not in record), None)
        if missing is not None:
            if flag == "label_column" and labelled is None:
                labelled = False  # an unlabelled test file
                continue
            raise UserError(f"{path}{'' if missing == records[0][0] else f' line {missing}'} has no column "
                            f"{column!r} (columns: {', '.join(available)}); set --{flag}")
    labelled = labelled is not False
    split = Split(name, path, [], labelled)
    for index, (line, record) in enumerate(records):
        text_a = _text(record[columns.text_a])
        text_b = _text(record[columns.text_b]) if columns.text_b else None
        label = None
        if labelled:
            raw = record[columns.label]
            if regression:
                label = _float_target(raw, path, line)
            else:
                label = _text(raw)
                if not label:
                    raise UserError(f"{path} line {line}: the label is empty; every {name} example needs one")
                if labels is not None and label not in labels:
                    raise UserError(f"{path} line {line}: label {label!r} is not one of the training file's labels "
                                    f"({', '.join(labels)}); fix the label or add examples of it to the training file")
        _add(split, Example(index, text_a, text_b, label), columns.text_b is not None, skip_empty)
    if not split.examples:
        raise UserError(f"{path} has no example with a non-empty text ({split.empty_texts} empty); "
                        f"check --text_a_column")
    return split


def sorted_labels(values):
    """Label strings in a stable order: numerically when they are all integers ("2" before "10")."""
    values = set(values)
    try:
        return sorted(values, key=int)
    except ValueError:
        return sorted(values)


def read_custom(train_file, dev_file, test_file=None, columns=CustomColumns(), regression=False):
    """Reads your own train, dev (and test) files: CSV, TSV (no quoting) or JSONL, columns by name.

    CSV and TSV files need a header line naming the columns. Classification
    labels are the distinct values of the training file's label column
    (integers in numeric order, other strings sorted); with `regression`,
    targets must be finite numbers. Test files may lack the label column.

    Example:

    >>> reviews = tempfile.mkdtemp()
    >>> rows = ["text\\tlabel", "a gem of a film\\tfresh", "a dull mess\\trotten", "a quiet triumph\\tfresh"]
    >>> for name in ("train.tsv", "dev.tsv"):
    ...     _ = open(os.path.join(reviews, name), "w").write("\\n".join(rows) + "\\n")
    >>> data = read_custom(os.path.join(reviews, "train.tsv"), os.path.join(reviews, "dev.tsv"),
    ...                    columns=CustomColumns("text", None, "label"))
    >>> data.labels
    ['fresh', 'rotten']
    """
    train = _read_custom_split("train", train_file, columns, None, regression, True, True)
    labels = None if regression else sorted_labels(e.label for e in train.examples)
    if labels is not None and len(labels) < 2:
        raise UserError(f"{train_file} has a single label ({labels[0]!r}); classification needs two or more "
                        "(or pass --regression for numeric targets)")
    dev = _read_custom_split("dev", dev_file, columns, labels, regression, True, True)
    test = []
    if test_file:
        split = _read_custom_split("test", test_file, columns, labels, regression, None, False)
        split.submission_file = "test.tsv"
        test.append(split)
    return TaskData("custom", labels, train, [dev], test, pair=columns.text_b is not None)


def subsample(data, max_examples):
    """Keeps `max_examples` training examples, the same ones whatever the seed (a fixed shuffle).

    MRPC's and STS-B's swapped copies go with their originals.
    """
    examples = data.train.examples
    by_row = collections.OrderedDict()
    for example in examples:
        by_row.setdefault(example.index, []).append(example)
    if max_examples >= len(by_row):
        return data
    rows = sorted(by_row)
    random.Random(0).shuffle(rows)
    keep = set(rows[:max_examples])
    data.train.subset_of = len(examples)
    data.train.examples = [e for e in examples if e.index in keep]
    return data


def label_counts(split):
    return collections.Counter(e.label for e in split.examples)
