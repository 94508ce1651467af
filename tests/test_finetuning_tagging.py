"""Token tagging: spans and entity F1 against hand-computed values, CoNLL reading, and run_finetuning --task=chunk."""

import json
import os
import subprocess
import sys

import keras
import pytest
from conftest import (
    SUBPROCESS_TIMEOUT,
    assert_finetuned_card,
    error_lines,
    finetuning_stopped_and_continued,
    run_module,
)

from electra_tf.finetuning.tagging import conll
from electra_tf.finetuning.tagging.metrics import entity_scores, token_accuracy
from electra_tf.text import spans
from electra_tf.utils.errors import UserError

# (words, POS, IOB2 chunk tags) from which the tests' CoNLL-2000-style files are built.
SENTENCES = [
    ("the cat sat on the mat", "DT NN VBD IN DT NN", "B-NP I-NP B-VP B-PP B-NP I-NP"),
    ("a dog ran", "DT NN VBD", "B-NP I-NP B-VP"),
    ("he left", "PRP VBD", "B-NP B-VP"),
    ("the dog went away", "DT NN VBD RB", "B-NP I-NP B-VP B-ADVP"),
    ("he sat on a mat", "PRP VBD IN DT NN", "B-NP B-VP B-PP B-NP I-NP"),
    ("a cat ran away", "DT NN VBD RB", "B-NP I-NP B-VP B-ADVP"),
]


def write_conll(path, sentences, docstart=True, last_blank=True):
    lines = ["-DOCSTART- -X- O", ""] if docstart else []
    for words, pos, chunks in sentences:
        lines += [" ".join(t) for t in zip(words.split(), pos.split(), chunks.split())] + [""]
    text = "\n".join(lines if last_blank else lines[:-1]) + "\n"
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_spans_follow_the_original_reading():
    assert spans.span_labels("B-NP I-NP B-VP B-NP I-NP O".split()) == [(0, 1, "NP"), (2, 2, "VP"), (3, 4, "NP")]
    assert spans.span_labels("I-NP I-NP O I-VP".split()) == [(0, 1, "NP"), (3, 3, "VP")]  # IOB1
    assert spans.span_labels("B-NP E-NP I-NP".split()) == [(0, 2, "NP")]  # E does not close a span
    assert spans.span_labels("S-NP S-NP".split()) == [(0, 0, "NP"), (1, 1, "NP")]
    iob2 = "B-NP I-NP I-NP B-VP O B-PP B-NP".split()
    assert spans.to_bioes(iob2) == "B-NP I-NP E-NP S-VP O S-PP S-NP".split()
    assert spans.tags_of_spans(spans.span_labels(spans.to_bioes(iob2)), len(iob2), "BIO") == iob2


def test_iob2_in_the_graph_reads_spans_as_the_python_does():
    import numpy as np

    tags = ["O", "B-NP", "I-NP", "E-NP", "S-NP", "B-VP", "I-VP", "E-VP", "S-VP"]
    rng = np.random.default_rng(0)
    ids = rng.integers(0, len(tags), (400, 7))
    lengths = rng.integers(0, 8, 400)
    kept = np.arange(7)[None, :] < lengths[:, None]
    out = spans.iob2_tensor(ids, kept, tags).numpy()
    for row, n, written in zip(ids, lengths, out):
        sentence = [tags[i] for i in row[:n]]
        expected = spans.tags_of_spans(spans.span_labels(sentence), n, "BIO") + [""] * (7 - n)
        assert [t.decode() for t in written] == expected, sentence


def test_entity_f1_against_hand_computed_values():
    # IOB2. Gold spans: (0,1,NP) (2,2,VP) (3,4,NP) | (0,0,PP) (1,1,NP): 5.
    # Predicted: (0,1,NP) (2,2,VP) (3,3,NP) | (0,0,PP): 4, of which 3 correct.
    gold = ["B-NP I-NP B-VP B-NP I-NP O".split(), "B-PP B-NP".split()]
    predicted = ["B-NP I-NP B-VP B-NP O O".split(), "B-PP O".split()]
    scores = entity_scores(gold, predicted)
    assert scores["precision"] == pytest.approx(3 / 4) and scores["recall"] == pytest.approx(3 / 5)
    assert scores["f1"] == pytest.approx(2 * 0.75 * 0.6 / 1.35)
    # BIOES. Gold (0,0,NP) (1,2,VP) (4,4,NP); predicted (0,0,NP) (1,3,VP) (4,4,NP): 2 of 3 each way.
    scores = entity_scores(["S-NP B-VP E-VP O S-NP".split()], ["S-NP B-VP I-VP E-VP S-NP".split()])
    assert scores == pytest.approx({"f1": 2 / 3, "precision": 2 / 3, "recall": 2 / 3})
    assert entity_scores([["B-NP"]], [["O"]]) == {"f1": 0.0, "precision": 0.0, "recall": 0.0}
    assert token_accuracy([["DT", "NN", "VBD"]], [["DT", "NN", "NN"]]) == {"accuracy": pytest.approx(2 / 3)}


def test_reading_conll_files(tmp_path):
    train = write_conll(tmp_path / "train.txt", SENTENCES, last_blank=False)
    split = conll.read_conll(train, "train")
    assert len(split.examples) == len(SENTENCES)  # the last sentence, without a blank line after it, is kept
    assert split.examples[0].words == tuple("the cat sat on the mat".split()) and split.examples[0].line == 3
    pos = conll.read_conll(train, "train", tag_column=1)
    assert pos.examples[1].tags == ("DT", "NN", "VBD")
    data = conll.read_tagging("tagging", train, train, tag_column=1)
    assert not data.chunk and data.labels == ["DT", "IN", "NN", "PRP", "RB", "VBD"]
    chunk = conll.read_tagging("chunk", train, train)
    assert chunk.chunk and chunk.bioes and chunk.labels[0] == "O" and "S-ADVP" in chunk.labels
    assert data.metric_names == ["accuracy"] and chunk.metric_names == ["f1", "precision", "recall"]


@pytest.mark.parametrize("case", ["ragged", "unknown_tag", "not_chunk", "no_tag_column", "empty"])
def test_bad_tagging_files_are_one_line_errors(tmp_path, case):
    train = write_conll(tmp_path / "train.txt", SENTENCES)
    dev = tmp_path / "dev.txt"
    task, tag_column = "chunk", -1
    if case == "ragged":
        dev.write_text("the DT B-NP\ncat NN\n", encoding="utf-8")
        expected = f"{dev} line 2: 2 columns where the file's first line has 3"
    elif case == "unknown_tag":
        dev.write_text("the DT B-NP\ncat NN I-NP\n\nran VBD B-XP\n", encoding="utf-8")
        expected = f"{dev} line 4: tag 'B-XP' does not occur in the training file"
    elif case == "not_chunk":
        write_conll(dev, SENTENCES)
        tag_column = 1
        expected = f"{train}: --task=chunk needs chunk tags (O, B-X, I-X, E-X, S-X), found DT, IN, NN"
    elif case == "no_tag_column":
        dev.write_text("the\ncat\n", encoding="utf-8")
        expected = f"{dev} line 1: 1 column(s), no tag column -1 after the word"
    else:
        dev.write_text("-DOCSTART- -X- O\n\n", encoding="utf-8")
        expected = f"{dev} holds no sentence"
    with pytest.raises(UserError) as raised:
        conll.read_tagging(task, train, str(dev), tag_column=tag_column)
    message = str(raised.value)
    assert message.startswith(expected) and "\n" not in message, message


PROBE = """
import json, sys
import tensorflow as tf, tensorflow_text  # noqa: F401  (the tokenizer's ops)
model = tf.saved_model.load(sys.argv[1])
out = model.signatures["serve_text"](tf.constant(json.loads(sys.argv[2])))
print(json.dumps({"electra_tf_imported": "electra_tf" in sys.modules,
                  "words": [[w.decode() for w in row] for row in out["words"].numpy()],
                  "tags": [[t.decode() for t in row] for row in out["tags"].numpy()],
                  "num_words": out["num_words"].numpy().tolist()}))
"""


def test_chunk_end_to_end_through_the_command_line(finetuning_model_dir, tmp_path):
    data = tmp_path / "conll2000"
    data.mkdir()
    long = ("the cat sat on the mat and the dog ran away", "DT NN VBD IN DT NN CC DT NN VBD RB",
            "B-NP I-NP B-VP B-PP B-NP I-NP O B-NP I-NP B-VP B-ADVP")
    write_conll(data / "train.txt", SENTENCES * 4)
    write_conll(data / "test.txt", SENTENCES[:4] + [long])  # CoNLL-2000 has no dev.txt: its test file serves
    out = tmp_path / "out"
    result = run_module("electra_tf.run_finetuning", "--task=chunk", f"--data_dir={data}",
                        f"--dev_file={data}/test.txt", f"--init_checkpoint={finetuning_model_dir}",
                        f"--output_dir={out}", "--max_seq_length=12", "--train_batch_size=8", "--eval_batch_size=4",
                        "--num_train_epochs=1", "--learning_rate=3e-3", "--log_every_steps=2")
    assert "train: 24 sentences, 96 words" in result.stdout
    # The long sentence: [CLS] + 10 one-piece words + [SEP] fill 12 tokens; "away" is cut and counted.
    assert "dev: 1 words beyond max_seq_length 12 are not tagged or scored" in result.stdout
    results = json.loads((out / "eval_results.json").read_text())
    assert results["selected_by"] == "f1" and results["skipped"] == {"dev": {"cut_words": 1},
                                                                     "test": {"cut_words": 1}}
    assert all(0 <= results[m] <= 1 for m in ("f1", "precision", "recall"))
    assert results["test"]["test"]["f1"] == results["f1"]  # the same file, the same best weights
    config = json.loads((out / "finetuning_config.json").read_text())
    assert config["bioes"] and config["hyperparameters"]["max_seq_length"] == 12
    rows = [line.split() for line in (out / "predictions" / "test.txt").read_text().split("\n\n")[4].splitlines()]
    assert [r[0] for r in rows] == long[0].split() and [r[1] for r in rows] == long[2].split()
    predicted = [r[2] for r in rows]
    assert predicted[-1] == "-" and all(t == "O" or t[:2] in ("B-", "I-") for t in predicted[:-1])  # IOB2 out

    probe = subprocess.run([sys.executable, "-c", PROBE, str(out / "export"), json.dumps([long[0], "he left"])],
                           capture_output=True, text=True, timeout=SUBPROCESS_TIMEOUT, cwd=str(tmp_path),
                           env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert probe.returncode == 0, probe.stderr[-2000:]
    served = json.loads(probe.stdout.strip().splitlines()[-1])
    assert served["electra_tf_imported"] is False
    assert served["words"][0] == long[0].split() and served["num_words"] == [11, 2]
    assert served["words"][1][:2] == ["he", "left"] and served["tags"][1][2:] == [""] * 9
    assert served["tags"][0] == predicted[:-1] + [""]  # in IOB2 as the run writes them; the cut word untagged
    assert_finetuned_card(out, (out / "export" / "tags.txt").read_text().split())


def test_tagging_command_line_refuses_ragged_files_before_training(finetuning_model_dir, tmp_path):
    data = tmp_path / "pos"
    data.mkdir()
    write_conll(data / "train.txt", SENTENCES)
    (data / "dev.txt").write_text("the DT\ncat NN B-NP\n", encoding="utf-8")
    out = tmp_path / "out"
    # Files named one by one, no --data_dir: the test file is optional.
    result = run_module("electra_tf.run_finetuning", "--task=tagging", f"--train_file={data}/train.txt",
                        f"--dev_file={data}/dev.txt", f"--init_checkpoint={finetuning_model_dir}",
                        f"--output_dir={out}", check=False)
    assert result.returncode == 2 and error_lines(result.stderr) == [
        f"error: {data}/dev.txt line 2: 3 columns where the file's first line has 2; every word line needs the same "
        "columns (a space inside a word?)"]
    assert not out.exists()


def test_tagger_python_api_learns_plain_tags(finetuning_model_dir):
    from electra_tf import ElectraTagger

    words = [s[0].split() for s in SENTENCES]
    tags = [s[1].split() for s in SENTENCES]
    tagger = ElectraTagger.from_pretrained(finetuning_model_dir, tags=sorted({t for s in tags for t in s}),
                                           sequence_length=16)
    tagger.compile(optimizer=keras.optimizers.Adam(3e-3))
    tagger.fit(words * 8, tags * 8, epochs=4, batch_size=8, verbose=0)
    predicted = tagger.predict(words)
    assert token_accuracy(tags, predicted)["accuracy"] > 0.9


def test_chunk_run_stopped_by_sigterm_continues_to_the_uninterrupted_result(finetuning_model_dir, tmp_path):
    # The tagger's rows carry word positions and tags per token: the same stop and resume as classification's.
    data = tmp_path / "conll2000"
    data.mkdir()
    write_conll(data / "train.txt", SENTENCES * 8)
    write_conll(data / "test.txt", SENTENCES[:4])

    def flags(out):
        return ["--task=chunk", f"--data_dir={data}", f"--dev_file={data}/test.txt",
                f"--init_checkpoint={finetuning_model_dir}", f"--output_dir={out}", "--max_seq_length=12",
                "--train_batch_size=2", "--eval_batch_size=4", "--num_train_epochs=2", "--learning_rate=3e-3",
                "--log_every_steps=1", "--export=false"]

    reference, out = finetuning_stopped_and_continued(tmp_path, flags)
    assert (out / "predictions" / "test.txt").read_text() == (reference / "predictions" / "test.txt").read_text()
