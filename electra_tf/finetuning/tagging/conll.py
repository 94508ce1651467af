"""Reading CoNLL-style tagging files: one word per line, whitespace-separated columns, blank lines between sentences.

The word is the first column and the tag the last (or `tag_column`);
`-DOCSTART-` lines are skipped, as the original does
(google-research/electra `finetune/tagging/tagging_tasks.py`). Unlike the
original, a last sentence without a blank line after it is kept. Lines
with a different number of columns than the file's first, a tag column the
file does not have and, at evaluation, a tag the training file never uses
are `UserError`s naming the file and line. No TensorFlow here.
"""

import dataclasses
import os

from electra_tf.finetuning.tagging.metrics import metric_names
from electra_tf.finetuning.tasks import Split
from electra_tf.text import spans as spans_lib
from electra_tf.utils.errors import UserError

TAGGING_TASKS = ("tagging", "chunk")
SPLIT_FILES = {"train": "train.txt", "dev": "dev.txt", "test": "test.txt"}


@dataclasses.dataclass(frozen=True)
class Sentence:
    """One sentence: its words, their tags (None for an unlabelled file), and the line it starts on."""

    index: int
    words: tuple
    tags: tuple = None
    line: int = 0


def _lines(path):
    try:
        with open(path, encoding="utf-8-sig") as f:
            return f.read().splitlines()
    except UnicodeDecodeError as e:
        raise UserError(f"{path} is not UTF-8 ({e.reason} at byte {e.start}); save it as UTF-8") from None
    except OSError as e:
        raise UserError(f"cannot read {path} ({e.strerror})") from None


def read_conll(path, name, tag_column=-1, labelled=True):
    """The sentences of one CoNLL-style file as a `Split` (examples are `Sentence`s).

    Args:
        path: the file.
        name: the split's name (train, dev, test).
        tag_column: the column of the tag (0-based; negative counts from the end; default the last).
        labelled: True: every line needs a tag column; None: a file of one column is read as
            unlabelled words (a test file).

    Example:

    >>> path = os.path.join(tempfile.mkdtemp(), "train.txt")
    >>> _ = open(path, "w").write("-DOCSTART- -X- O\\n\\nHe PRP B-NP\\nran VBD B-VP\\n\\nGo VB B-VP\\n")
    >>> split = read_conll(path, "train")
    >>> [s.words for s in split.examples], split.examples[1].tags
    ([('He', 'ran'), ('Go',)], ('B-VP',))
    """
    sentences, words, tags, start = [], [], [], 0
    columns = None

    def close():
        if words:
            sentences.append(Sentence(len(sentences), tuple(words), tuple(tags) if has_tags else None, start))
        words.clear()
        tags.clear()

    has_tags = labelled is not False
    for number, line in enumerate(_lines(path), start=1):
        fields = line.split()
        if not fields:
            close()
            continue
        if fields[0] == "-DOCSTART-":
            close()
            continue
        if columns is None:
            columns = len(fields)
            if columns == 1 and labelled is None:
                has_tags = False
            elif columns == 1 or not -columns <= tag_column < columns or tag_column % columns == 0:
                raise UserError(f"{path} line {number}: {columns} column(s), no tag column {tag_column} after the "
                                "word; give a file of 'word ... tag' lines or set --tag_column")
        elif len(fields) != columns:
            raise UserError(f"{path} line {number}: {len(fields)} columns where the file's first line has {columns}; "
                            "every word line needs the same columns (a space inside a word?)")
        if not words:
            start = number
        words.append(fields[0])
        if has_tags:
            tags.append(fields[tag_column])
    close()
    if not sentences:
        raise UserError(f"{path} holds no sentence; give one word per line and blank lines between sentences")
    return Split(name, path, sentences, has_tags)


@dataclasses.dataclass
class TaggingData:
    """A tagging task read from disk: splits of `Sentence`s, the label set, and how it is scored.

    `labels` are the tags the model predicts, in id order. With `bioes`
    (the chunk preset, as the original) the model is trained on the BIOES
    re-encoding of the files' chunk tags. `chunk` says whether entity-level
    F1 (chunk-style tags) or token accuracy (plain tags) is reported.
    """

    name: str
    labels: list
    train: Split
    dev: list
    test: list
    chunk: bool
    bioes: bool = False
    tag_column: int = -1

    @property
    def metric_names(self):
        return list(metric_names(self.chunk))

    @property
    def headline_metric(self):
        return self.metric_names[0]

    def model_tags(self, tags):
        """A sentence's tags as the model is trained on them."""
        return spans_lib.to_bioes(tags) if self.bioes else list(tags)

    def summary(self):
        lines = []
        for split in [self.train, *self.dev, *self.test]:
            words = sum(len(s.words) for s in split.examples)
            lines.append(f"{split.name}: {len(split.examples):,} sentences, {words:,} words from {split.path}"
                         + ("" if split.labelled else " (no tags)"))
        scored = "entity-level F1" if self.chunk else "token accuracy"
        lines.append(f"{len(self.labels)} tags{' (BIOES)' if self.bioes else ''}, scored by {scored}")
        return lines


def _check_known(split, labels, data):
    known = set(labels)
    for sentence in split.examples:
        for offset, tag in enumerate(data.model_tags(sentence.tags)):
            if tag not in known:
                shown = sentence.tags[offset]
                raise UserError(f"{split.path} line {sentence.line + offset}: tag {shown!r} does not occur in the "
                                f"training file ({len(labels)} tags); fix the tag or add examples of it to the "
                                "training file")


def find_tagging_file(data_dir, split, required):
    """`<data_dir>/<split>.txt` (None when absent and not required)."""
    path = os.path.join(data_dir, SPLIT_FILES[split])
    if os.path.exists(path):
        return path
    if required:
        extra = (" (CoNLL-2000 ships train.txt and test.txt: pass --dev_file=<data_dir>/test.txt)"
                 if split == "dev" else "")
        raise UserError(f"no {SPLIT_FILES[split]} in {data_dir}; add it or name the file with --{split}_file{extra}")
    return None


def read_tagging(task, train_file, dev_file, test_file=None, tag_column=-1):
    """Reads a tagging task's train, dev (and test) files.

    `task` "chunk" is the CoNLL-2000 preset: the tags must be chunk-style
    and the model learns their BIOES re-encoding, over every B/I/E/S prefix
    of the training file's chunk types. "tagging" takes any tag set as it
    is: the training file's tags; chunk-style sets are scored by entity F1,
    others by token accuracy.

    Args:
        task: "tagging" or "chunk".
        train_file: the training file.
        dev_file: the file evaluated after each epoch.
        test_file: an optional file to predict (tags optional).
        tag_column: the tag's column (default the last).

    Example:

    >>> directory = tempfile.mkdtemp()
    >>> for name in ("train.txt", "dev.txt"):
    ...     _ = open(os.path.join(directory, name), "w").write("He B-NP\\nran B-VP\\nhome B-NP\\n")
    >>> data = read_tagging("chunk", os.path.join(directory, "train.txt"), os.path.join(directory, "dev.txt"))
    >>> data.labels, data.chunk
    (['O', 'B-NP', 'B-VP', 'I-NP', 'I-VP', 'E-NP', 'E-VP', 'S-NP', 'S-VP'], True)
    """
    if task not in TAGGING_TASKS:
        raise UserError(f"unknown tagging task {task!r}; choose one of {', '.join(TAGGING_TASKS)}")
    train = read_conll(train_file, "train", tag_column)
    train_tags = {t for s in train.examples for t in s.tags}
    chunk = spans_lib.is_chunk_tag_set(train_tags)
    if task == "chunk":
        if not chunk:
            odd = sorted(t for t in train_tags if not spans_lib.is_chunk_tag(t))[:3]
            raise UserError(f"{train_file}: --task=chunk needs chunk tags (O, B-X, I-X, E-X, S-X), found "
                            f"{', '.join(odd) or 'only O'}; use --task=tagging for other tag sets")
        types = sorted({t[2:] for t in train_tags if t != "O"})
        labels = ["O"] + [f"{p}-{t}" for p in "BIES" for t in types]
    else:
        labels = sorted(train_tags)
        if len(labels) < 2:
            raise UserError(f"{train_file} uses a single tag ({labels[0]!r}); tagging needs two or more")
    data = TaggingData(task, labels, train, [], [], chunk, bioes=task == "chunk", tag_column=tag_column)
    data.dev.append(read_conll(dev_file, "dev", tag_column))
    _check_known(data.dev[0], labels, data)
    if test_file:
        test = read_conll(test_file, "test", tag_column, labelled=None)
        if test.labelled:
            _check_known(test, labels, data)
        data.test.append(test)
    return data
