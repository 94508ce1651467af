"""Reading SQuAD-format JSON (v1.1 and v2.0): questions, contexts as words, answers as word spans.

As the original (google-research/electra `finetune/qa/qa_tasks.py`): a
context is split into words on whitespace (space, tab, CR, LF, U+202F),
each character mapped to its word; a training question uses its first
answer, mapped from its character offset to a start and end word. A
training answer that does not occur at its stated offset is skipped and
counted (the original skips these too). Malformed JSON, or JSON without
SQuAD's `data` / `paragraphs` / `qas` layout, is a `UserError`. No
TensorFlow here.
"""

import dataclasses
import json
import os

from electra_tf.finetuning.tasks import Split
from electra_tf.utils.errors import UserError

FILES = {"squad_v1": {"train": "train-v1.1.json", "dev": "dev-v1.1.json", "test": "test-v1.1.json"},
         "squad_v2": {"train": "train-v2.0.json", "dev": "dev-v2.0.json", "test": "test-v2.0.json"}}


@dataclasses.dataclass(frozen=True)
class QAExample:
    """One question on one context.

    `words` are the context's whitespace-separated words and `word_spans`
    their (start, end) character offsets in `context`. `answers` are every
    gold answer text (evaluation); `start_word`/`end_word` locate the first
    one (training; -1 when there is none or the question is impossible).
    """

    index: int
    qid: str
    question: str
    context: str
    words: tuple
    word_spans: tuple
    answers: tuple = ()
    answer_text: str = ""
    start_word: int = -1
    end_word: int = -1
    is_impossible: bool = False


def _is_whitespace(c):
    return c in " \t\r\n" or ord(c) == 0x202F


def split_words(context):
    """The words of `context` and their (start, end) character offsets, end exclusive.

    Example:

    >>> split_words("The man  (1895-1943).")
    (('The', 'man', '(1895-1943).'), ((0, 3), (4, 7), (9, 21)))
    """
    words, spans, start = [], [], None
    for i, c in enumerate(context):
        if _is_whitespace(c):
            if start is not None:
                words.append(context[start:i])
                spans.append((start, i))
                start = None
        elif start is None:
            start = i
    if start is not None:
        words.append(context[start:])
        spans.append((start, len(context)))
    return tuple(words), tuple(spans)


def make_example(index, qid, question, context, answers=(), answer_start=None, is_impossible=False):
    """A `QAExample`; with `answer_start`, the first answer is located in words (None if it is not there).

    Args:
        index: the example's position in its file.
        qid: the question id.
        question: the question text.
        context: the context paragraph.
        answers: the gold answer texts.
        answer_start: the character offset of the first answer (training), or None.
        is_impossible: SQuAD 2.0: the question has no answer in the context.

    Example:

    >>> e = make_example(0, "q1", "When?", "He was born (1895-1943).", ["1895"], answer_start=13)
    >>> e.words[e.start_word:e.end_word + 1]
    ('(1895-1943).',)
    """
    words, spans = split_words(context)
    answers = tuple(answers)
    example = QAExample(index, qid, question, context, words, spans, answers, is_impossible=is_impossible)
    if answer_start is None or is_impossible or not answers:
        return example
    text = answers[0]
    end_char = answer_start + len(text) - 1
    if not text or answer_start < 0 or end_char >= len(context):
        return None
    start_word = next((k for k, (s, e) in enumerate(spans) if e > answer_start), None)
    end_word = next((k for k, (s, e) in enumerate(spans) if e > end_char), None)
    if start_word is None or end_word is None:
        return None
    # As the original: the answer must occur, whitespace-normalised and lower-cased, in its words.
    if " ".join(text.split()).lower() not in " ".join(words[start_word:end_word + 1]).lower():
        return None
    return dataclasses.replace(example, answer_text=text, start_word=start_word, end_word=end_word)


def _load(path):
    try:
        with open(path, encoding="utf-8-sig") as f:
            document = json.load(f)
    except json.JSONDecodeError as e:
        raise UserError(f"{path} is not valid JSON ({e.msg} at line {e.lineno} column {e.colno}); give a SQuAD "
                        "JSON file") from None
    except UnicodeDecodeError as e:
        raise UserError(f"{path} is not UTF-8 ({e.reason} at byte {e.start}); save it as UTF-8") from None
    except OSError as e:
        raise UserError(f"cannot read {path} ({e.strerror})") from None
    if not isinstance(document, dict) or not isinstance(document.get("data"), list):
        raise UserError(f"{path} has no 'data' list; give a file in SQuAD's layout (data -> paragraphs -> qas)")
    return document["data"]


def read_squad(path, name, training):
    """The questions of one SQuAD-format file as a `Split` of `QAExample`s.

    `split.malformed_lines` counts training questions skipped because their
    answer does not occur at its stated offset.

    Args:
        path: the JSON file.
        name: the split's name.
        training: locate the first answer of each question (a training file).

    Example:

    >>> path = os.path.join(tempfile.mkdtemp(), "train.json")
    >>> qas = [{"id": "q1", "question": "Who sat?", "answers": [{"text": "the cat", "answer_start": 0}]},
    ...        {"id": "q2", "question": "Where?", "answers": [{"text": "rug", "answer_start": 3}]}]
    >>> doc = {"data": [{"paragraphs": [{"context": "the cat sat on the mat", "qas": qas}]}]}
    >>> _ = open(path, "w").write(json.dumps(doc))
    >>> split = read_squad(path, "train", training=True)
    >>> [e.qid for e in split.examples], split.malformed_lines
    (['q1'], 1)
    """
    split = Split(name, path, [], labelled=True)
    seen = set()
    for article in _load(path):
        for paragraph in (article.get("paragraphs") or []) if isinstance(article, dict) else []:
            context = paragraph.get("context") if isinstance(paragraph, dict) else None
            if not isinstance(context, str):
                raise UserError(f"{path}: a paragraph without a 'context' string; give a file in SQuAD's layout")
            for qa in paragraph.get("qas") or []:
                if not isinstance(qa, dict) or "id" not in qa or "question" not in qa:
                    raise UserError(f"{path}: a question without 'id' or 'question' in a paragraph starting "
                                    f"{context[:40]!r}; give a file in SQuAD's layout")
                qid = str(qa["id"])
                if qid in seen:
                    raise UserError(f"{path}: question id {qid!r} occurs twice; ids must be unique")
                seen.add(qid)
                impossible = bool(qa.get("is_impossible", False))
                answers = [a for a in qa.get("answers") or [] if isinstance(a, dict) and "text" in a]
                texts = [str(a["text"]) for a in answers]
                if training and not impossible:
                    if not answers or "answer_start" not in answers[0]:
                        split.malformed_lines += 1
                        continue
                    example = make_example(len(split.examples), qid, qa["question"], context, texts,
                                           int(answers[0]["answer_start"]))
                    if example is None:
                        split.malformed_lines += 1
                        continue
                else:
                    example = make_example(len(split.examples), qid, qa["question"], context, texts,
                                           is_impossible=impossible)
                split.examples.append(example)
    if not split.examples:
        raise UserError(f"{path} holds no usable question ({split.malformed_lines} skipped); give a SQuAD JSON file")
    return split


@dataclasses.dataclass
class QAData:
    """A SQuAD task read from disk: its splits of `QAExample`s and its metrics."""

    name: str
    train: Split
    dev: list
    test: list

    @property
    def version_2(self):
        return self.name == "squad_v2"

    @property
    def labels(self):
        return None

    @property
    def metric_names(self):
        if not self.version_2:
            return ["f1", "exact_match"]
        names = ["f1", "exact"]
        # The official script reports HasAns_* / NoAns_* only for the kinds of question the file has.
        for prefix, present in (("HasAns_", any(e.answers for e in self.dev[0].examples)),
                                ("NoAns_", any(not e.answers for e in self.dev[0].examples))):
            names += [prefix + "f1", prefix + "exact"] if present else []
        return names + ["best_f1", "best_exact"]

    @property
    def headline_metric(self):
        return "f1"

    def summary(self):
        lines = []
        for split in [self.train, *self.dev, *self.test]:
            note = (f" ({split.malformed_lines} whose answer is not at its stated offset skipped)"
                    if split.malformed_lines else "")
            if self.version_2:
                impossible = sum(e.is_impossible for e in split.examples)
                note += f", {impossible:,} without an answer"
            lines.append(f"{split.name}: {len(split.examples):,} questions from {split.path}{note}")
        return lines


def find_squad_file(data_dir, task, split, required):
    """The task's official file name in `data_dir` (train-v2.0.json, ...), or `<split>.json`."""
    for name in (FILES[task][split], f"{split}.json"):
        path = os.path.join(data_dir, name)
        if os.path.exists(path):
            return path
    if required:
        raise UserError(f"no {FILES[task][split]} (or {split}.json) in {data_dir}; add it or name the file with "
                        f"--{split}_file")
    return None


def read_squad_task(task, train_file, dev_file, test_file=None):
    """Reads a SQuAD task's train, dev (and test) files into `QAData`.

    Args:
        task: "squad_v1" or "squad_v2".
        train_file: the training file.
        dev_file: the file evaluated after each epoch (its answers are the gold ones).
        test_file: an optional file to predict.

    Example:

    >>> path = os.path.join(tempfile.mkdtemp(), "train.json")
    >>> qas = [{"id": "q1", "question": "Who sat?", "answers": [{"text": "the cat", "answer_start": 0}]}]
    >>> _ = open(path, "w").write(json.dumps({"data": [{"paragraphs": [{"context": "the cat sat", "qas": qas}]}]}))
    >>> data = read_squad_task("squad_v1", path, path)
    >>> data.metric_names, data.dev[0].examples[0].answers
    (['f1', 'exact_match'], ('the cat',))
    """
    train = read_squad(train_file, "train", training=True)
    dev = read_squad(dev_file, "dev", training=False)
    test = [read_squad(test_file, "test", training=False)] if test_file else []
    if task == "squad_v1" and any(e.is_impossible for e in train.examples):
        raise UserError(f"{train_file} has questions without an answer (is_impossible); use --task=squad_v2")
    return QAData(task, train, [dev], test)
