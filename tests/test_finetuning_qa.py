"""SQuAD: official normalisation and scores against hand-computed values, windows, bad files, the CLI and export."""

import json
import os
import re
import subprocess
import sys

import pytest
from conftest import (
    SUBPROCESS_TIMEOUT,
    assert_finetuned_card,
    error_lines,
    finetuning_stopped_and_continued,
    run_module,
)

from electra_tf.finetuning.qa import squad_metrics
from electra_tf.finetuning.qa.postprocess import final_text
from electra_tf.finetuning.qa.squad import make_example, read_squad
from electra_tf.utils.errors import UserError

FILLER = "it was very good and the film was not bad . "
CONTEXT = ("the cat sat on the mat . " + FILLER * 3 + "the dog ran away . " + FILLER * 2 + "he left .").strip()
QUESTIONS = [("who sat on the mat ?", "the cat"), ("where did the cat sit ?", "the mat"),
             ("who ran away ?", "the dog"), ("who left ?", "he"), ("what was awful ?", None)]


def offset(answer, context=CONTEXT):
    """The answer's character offset as a word (not inside another word: "he" in "the")."""
    return re.search(rf"\b{re.escape(answer)}\b", context).start()


def squad_document(questions=QUESTIONS, context=CONTEXT, shift=0):
    qas = []
    for k, (question, answer) in enumerate(questions):
        if answer is None:
            qas.append({"id": f"q{k}", "question": question, "answers": [], "is_impossible": True})
        else:
            qas.append({"id": f"q{k}", "question": question,
                        "answers": [{"text": answer, "answer_start": offset(answer, context) + shift}]})
    return {"version": "v2.0", "data": [{"title": "t", "paragraphs": [{"context": context, "qas": qas}]}]}


def test_official_normalisation_and_scores():
    assert squad_metrics.normalize_answer("  The Cat's  mat!") == "cats mat"
    assert squad_metrics.normalize_answer("an apple, a pear and the plum") == "apple pear and plum"
    # F1 of "the big red cat" / "red cat sat": tokens [big red cat] vs [red cat sat]: 2 common, P = R = 2/3.
    assert squad_metrics.f1_score("the big red cat", "red cat sat") == pytest.approx(2 / 3)
    v1 = squad_metrics.evaluate_v1({"a": ["red cat", "the cat"], "b": ["dog"], "c": ["mat"]},
                                   {"a": "cat", "b": "The dog.", "c": "rug"})
    # a: "the cat" normalises to "cat": EM 1, F1 1. b: EM 1. c: 0.
    assert v1 == {"exact_match": pytest.approx(100 * 2 / 3), "f1": pytest.approx(100 * 2 / 3)}
    gold = {"h1": ["red cat"], "h2": ["dog"], "n1": [], "n2": [""]}
    predictions = {"h1": "cat", "h2": "dog", "n1": "mat", "n2": "rug"}
    null_odds = {"h1": -3.0, "h2": 0.5, "n1": 1.0, "n2": -4.0}
    v2 = squad_metrics.evaluate_v2(gold, predictions, null_odds, threshold=0.0)
    # Above 0: h2 (has an answer: 0) and n1 (no answer: 1). h1: EM 0, F1 2/3. n2 answered "rug": 0.
    assert v2["HasAns_exact"] == 0.0 and v2["HasAns_f1"] == pytest.approx(100 * (2 / 3) / 2)
    assert v2["NoAns_exact"] == 50.0 and v2["NoAns_total"] == 2 and v2["total"] == 4
    assert v2["exact"] == 25.0 and v2["f1"] == pytest.approx(100 * (2 / 3 + 1) / 4)
    # Best threshold: sorted odds n2 -4 (answered, -1), h1 -3 (+0 EM), h2 0.5 (+1), n1 1.0 (-1); from 2 no-answers
    # the running EM is 2, 1, 1, 2, 1: the best is 2 at the start (threshold 0.0) and again at 0.5 (not higher).
    assert v2["best_exact"] == 50.0 and v2["best_exact_thresh"] == 0.0
    # F1: 2, 1, 1 + 2/3, 2 + 2/3 at 0.5, 1 + 2/3.
    assert v2["best_f1"] == pytest.approx(100 * (2 + 2 / 3) / 4) and v2["best_f1_thresh"] == 0.5


def test_windows_map_every_answer_back_to_its_text(finetuning_model_dir):
    from electra_tf.finetuning.preprocessing import ElectraPreprocessor
    from electra_tf.finetuning.qa.features import make_windows
    from electra_tf.finetuning.qa.postprocess import _piece_text

    preprocessor = ElectraPreprocessor(os.path.join(finetuning_model_dir, "vocab.txt"), sequence_length=40)
    examples = [make_example(k, str(k), q, CONTEXT, [a], offset(a)) for k, (q, a) in enumerate(QUESTIONS[:4])]
    examples.append(make_example(4, "4", "who ran ?", "a dog (ran) away", ["ran"], answer_start=7))
    windows = make_windows(examples, preprocessor, max_query_length=8, doc_stride=16, training=True)
    assert len(windows) > 2 * len(examples)  # the context does not fit one window
    found = set()
    for w in range(len(windows)):
        s, e = windows.start_positions[w], windows.end_positions[w]
        if s == 0:
            assert e == 0
            continue
        example = examples[windows.example[w]]
        first, last = windows.word[w, s], windows.word[w, e]
        original = example.context[example.word_spans[first][0]:example.word_spans[last][1]]
        pieces = [preprocessor.vocabulary[t] for t in windows.features["input_ids"][w, s:e + 1]]
        assert final_text(_piece_text(pieces), original, True) == example.answer_text
        assert (windows.features["segment_ids"][w, s:e + 1] == 1).all()
        found.add(windows.example[w])
    assert found == set(range(len(examples)))  # every answer lies wholly in some window
    assert examples[4].words[examples[4].start_word] == "(ran)"  # tightened to the pieces of "ran" above


def test_python_api_and_export_answer_alike(finetuning_model_dir, tmp_path):
    """ElectraQuestionAnswerer.fit/predict, then its SavedModel: the same answers, narrowed to word pieces.

    A random-initialised head answers arbitrary spans, which is what exercises the windows' max-context
    rule (contexts of several windows) and the narrowing of "(1895-1943)." to its pieces.
    """
    import keras
    import tensorflow as tf

    from electra_tf.finetuning.qa.answerer import ElectraQuestionAnswerer
    from electra_tf.finetuning.qa.config import QAConfig
    from electra_tf.serving.qa_savedmodel import export_answerer

    # A seeded head, whatever ran before in this process: with this seed a best span lies inside "(1895-1943).".
    keras.utils.set_random_seed(2)
    qa = QAConfig(max_query_length=8, doc_stride=5, beam_size=8, na_threshold=1e9)
    answerer = ElectraQuestionAnswerer.from_pretrained(finetuning_model_dir, qa=qa, sequence_length=24)
    answerer.compile()
    answers = [{"text": a, "answer_start": offset(a)} if a else None for _, a in QUESTIONS]
    history = answerer.fit(([q for q, _ in QUESTIONS], [CONTEXT] * len(QUESTIONS)), answers, epochs=1, verbose=0)
    assert all(v > 0 for v in history.history["loss"])
    dated = "the cat (1895-1943). sat on the mat, and the dog's bed."
    questions = ["who sat ?", "when ?", "where did the cat sit ?", "who ran away ?", "whose bed ?"]
    contexts = [dated, dated, CONTEXT, CONTEXT, dated]
    assert len(answerer.windows([make_example(0, "0", questions[2], CONTEXT)], training=False)) > 3
    predicted = answerer.predict((questions, contexts))
    assert all(p["answer"] and p["answer"] in c for p, c in zip(predicted, contexts))

    export_dir = export_answerer(answerer, str(tmp_path / "export"), no_answer=False)
    served = tf.saved_model.load(export_dir).signatures["serve_text"](questions=tf.constant(questions),
                                                                        contexts=tf.constant(contexts))
    assert served["score"].numpy() == pytest.approx([p["score"] for p in predicted], abs=1e-4)
    unknown = answerer.preprocessor.unk_id
    for answer, p in zip(served["answer"].numpy(), predicted, strict=True):
        # The same text, except where the span's words hold a piece the vocabulary lacks ("1895" here): the
        # run cannot find [UNK] in the words and keeps them whole, as the original does; the export narrows
        # the span to its pieces' characters ("-1943). sat on the" where the run gives "(1895-1943). sat on the").
        whole_words = unknown in answerer.preprocessor.tokenize_words([p["answer"].split()]).flat_values.numpy()
        assert answer.decode() == p["answer"] or (whole_words and answer.decode() in p["answer"]), (answer, p)
    assert served["null_score"].numpy() == pytest.approx([p["null_score"] for p in predicted], abs=1e-4)


@pytest.mark.parametrize("case", ["json", "layout", "offset"])
def test_bad_squad_files(tmp_path, case):
    path = tmp_path / "train.json"
    if case == "json":
        path.write_text('{"data": [', encoding="utf-8")
        with pytest.raises(UserError, match=r"is not valid JSON \(Expecting value at line 1 column 11\)"):
            read_squad(str(path), "train", True)
    elif case == "layout":
        path.write_text('{"version": 1}', encoding="utf-8")
        with pytest.raises(UserError, match="has no 'data' list"):
            read_squad(str(path), "train", True)
    else:
        document = squad_document()
        document["data"][0]["paragraphs"][0]["qas"][0]["answers"][0]["answer_start"] += 3  # not "the cat" there
        path.write_text(json.dumps(document), encoding="utf-8")
        split = read_squad(str(path), "train", True)
        assert split.malformed_lines == 1 and [e.qid for e in split.examples] == ["q1", "q2", "q3", "q4"]


PROBE = """
import json, sys
import tensorflow as tf, tensorflow_text  # noqa: F401  (the tokenizer's ops)
model = tf.saved_model.load(sys.argv[1])
questions, contexts = json.loads(sys.argv[2])
out = model.signatures["serve_text"](questions=tf.constant(questions), contexts=tf.constant(contexts))
print(json.dumps({"electra_tf_imported": "electra_tf" in sys.modules,
                  "answers": [a.decode() for a in out["answer"].numpy()],
                  "scores": out["score"].numpy().tolist(), "null": out["null_score"].numpy().tolist()}))
"""


def test_squad_v2_end_to_end_through_the_command_line(finetuning_model_dir, tmp_path):
    data = tmp_path / "squad"
    data.mkdir()
    (data / "train-v2.0.json").write_text(json.dumps(squad_document()), encoding="utf-8")
    broken = squad_document(shift=2)
    (data / "dev-v2.0.json").write_text(json.dumps(squad_document()), encoding="utf-8")
    (data / "train.json").write_text(json.dumps(broken), encoding="utf-8")  # not read: the official name wins
    out = tmp_path / "out"
    result = run_module("electra_tf.run_finetuning", "--task=squad_v2", f"--data_dir={data}",
                        f"--init_checkpoint={finetuning_model_dir}", f"--output_dir={out}", "--max_seq_length=40",
                        "--doc_stride=16", "--max_query_length=8", "--beam_size=5", "--train_batch_size=8",
                        "--num_train_epochs=1", "--learning_rate=3e-3", "--log_every_steps=2")
    assert "train: 5 questions" in result.stdout and "1 without an answer" in result.stdout
    results = json.loads((out / "eval_results.json").read_text())
    assert results["task"] == "squad_v2" and results["selected_by"] == "f1"
    for name in ("exact", "f1", "HasAns_exact", "HasAns_f1", "NoAns_exact", "NoAns_f1", "best_f1", "best_exact"):
        assert 0 <= results[name] <= 100
    predictions = json.loads((out / "predictions.json").read_text())
    null_odds = json.loads((out / "null_odds.json").read_text())
    assert sorted(predictions) == sorted(null_odds) == [f"q{k}" for k in range(5)]
    for qid, text in predictions.items():
        assert text == "" or text in CONTEXT
        assert (text == "") == (null_odds[qid] > -2.75) or text == ""
    n_best = json.loads((out / "nbest_predictions.json").read_text())
    assert all(len(v) <= 20 for v in n_best.values())

    questions = [q for q, _ in QUESTIONS] + ["who sat ?"]
    contexts = [CONTEXT] * len(QUESTIONS) + ["the cat sat"]
    probe = subprocess.run([sys.executable, "-c", PROBE, str(out / "export"), json.dumps([questions, contexts])],
                           capture_output=True, text=True, timeout=SUBPROCESS_TIMEOUT, cwd=str(tmp_path),
                           env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert probe.returncode == 0, probe.stderr[-2000:]
    served = json.loads(probe.stdout.strip().splitlines()[-1])
    assert served["electra_tf_imported"] is False and len(served["answers"]) == len(questions)
    for answer, context, null in zip(served["answers"], contexts, served["null"]):
        assert (answer == "") == (null > -2.75) or answer == ""
        assert answer in context
    # The export reads the same windows with the same weights and chooses as the run does.
    assert served["null"][:5] == pytest.approx([null_odds[f"q{k}"] for k in range(5)], abs=1e-4)
    assert served["answers"][:5] == [predictions[f"q{k}"] for k in range(5)]
    assert_finetuned_card(out)


def test_squad_command_line_refuses_malformed_json(finetuning_model_dir, tmp_path):
    (tmp_path / "train.json").write_text("{oops", encoding="utf-8")
    (tmp_path / "dev.json").write_text("{}", encoding="utf-8")
    result = run_module("electra_tf.run_finetuning", "--task=squad_v1", f"--data_dir={tmp_path}",
                        f"--init_checkpoint={finetuning_model_dir}", f"--output_dir={tmp_path / 'out'}", check=False)
    assert result.returncode == 2 and error_lines(result.stderr) == [
        f"error: {tmp_path}/train.json is not valid JSON (Expecting property name enclosed in double quotes at line 1 "
        "column 2); give a SQuAD JSON file"]


def test_squad_run_stopped_by_sigterm_continues_to_the_uninterrupted_result(finetuning_model_dir, tmp_path):
    # The QA runner's rows are windows, not examples: the same stop and resume as classification's.
    data = tmp_path / "squad"
    data.mkdir()
    (data / "train-v2.0.json").write_text(json.dumps(squad_document(QUESTIONS * 6)), encoding="utf-8")
    (data / "dev-v2.0.json").write_text(json.dumps(squad_document()), encoding="utf-8")

    def flags(out):
        return ["--task=squad_v2", f"--data_dir={data}", f"--init_checkpoint={finetuning_model_dir}",
                f"--output_dir={out}", "--max_seq_length=40", "--doc_stride=16", "--max_query_length=8",
                "--train_batch_size=4", "--num_train_epochs=2", "--learning_rate=3e-3", "--log_every_steps=1",
                "--export=false"]

    reference, out = finetuning_stopped_and_continued(tmp_path, flags)
    for name in ("predictions.json", "null_odds.json", "nbest_predictions.json"):
        assert (out / name).read_text() == (reference / name).read_text(), name
