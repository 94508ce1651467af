"""Beam outputs of every window -> each question's best answers, as text of the original context.

As the original's `write_predictions` (google-research/electra
`finetune/qa/qa_tasks.py`): candidates are the beam's (start, end) pairs
that lie in the context, start where this window gives the start piece its
most context, end after they start and span at most `max_answer_length`
pieces; a candidate scores start + end log-probability; the `n_best_size`
best distinct texts across a question's windows are kept. A candidate's
text is cut from the original context: the characters of its words,
narrowed to its word pieces when those can be found in them (so
"(1895-1943)." gives "1895"). The no-answer score of a question is, for
the original's head, the lowest answerability logit over its windows; for
the linear head (`null_log_prob` in the outputs), the lowest [CLS] span
log-probability over its windows minus the best answer's score, as
transformers' question-answering pipeline compared the two (and BERT's
`run_squad` its `null_score_diff`).
"""

import unicodedata

import numpy as np


def _piece_text(tokens):
    text = " ".join(tokens).replace(" ##", "").replace("##", "")
    return " ".join(text.split())


def final_text(piece_text, original, lowercase):
    """The part of `original` (the answer's words) that the pieces' text spells, else all of `original`.

    Args:
        piece_text: the answer's word pieces joined ("##" continuations glued).
        original: the original characters of the answer's words.
        lowercase: whether the pieces were lower-cased and accent-stripped.

    Example:

    >>> final_text("1895", "(1895-1943).", True), final_text("cafe", "Café!", True)
    ('1895', 'Café')
    """
    chars, where = [], []
    for i, c in enumerate(original):
        if c.isspace():
            continue
        normal = c
        if lowercase:
            normal = "".join(x for x in unicodedata.normalize("NFD", c.lower()) if unicodedata.category(x) != "Mn")
        for x in normal:
            chars.append(x)
            where.append(i)
    wanted = piece_text.replace(" ", "")
    found = "".join(chars).find(wanted) if wanted else -1
    if found < 0:
        return original
    return original[where[found]:where[found + len(wanted) - 1] + 1]


def best_answers(examples, windows, outputs, vocabulary, lowercase, max_answer_length=30, n_best_size=20):
    """Per example: {"text", "score", "null_score", "n_best": [(text, score), ...]}.

    Args:
        examples: the `QAExample`s the windows were made from.
        windows: their `Windows` (electra_tf.finetuning.qa.features).
        outputs: the answerer's beam outputs for the windows (numpy arrays by name): with the original's
            head `answerable_logit`, with the linear head `null_log_prob`.
        vocabulary: the WordPiece tokens in id order.
        lowercase: whether the tokenizer lower-cases.
        max_answer_length: the longest answer in pieces.
        n_best_size: answers kept per example.
    """
    start_index = outputs["start_top_index"]
    end_index = outputs["end_top_index"]
    starts = np.broadcast_to(start_index[:, :, None], end_index.shape)
    rows = np.broadcast_to(np.arange(len(windows))[:, None, None], end_index.shape)
    start_word = windows.word[rows, starts]
    end_word = windows.word[rows, end_index]
    valid = ((starts > 0) & (start_word >= 0) & (end_word >= 0) & windows.max_context[rows, starts]
             & (end_index >= starts) & (end_index - starts + 1 <= max_answer_length))
    scores = outputs["start_top_log_probs"][:, :, None] + outputs["end_top_log_probs"]
    window_of, i, j = np.nonzero(valid)
    by_example = [[] for _ in examples]
    for w, a, b in zip(window_of.tolist(), i.tolist(), j.tolist()):
        by_example[windows.example[w]].append((float(scores[w, a, b]), w, int(start_index[w, a]),
                                               int(end_index[w, a, b])))
    null = np.full([len(examples)], np.inf)
    np.minimum.at(null, windows.example, outputs.get("null_log_prob", outputs.get("answerable_logit")))
    ids = windows.features["input_ids"]
    results = []
    for k, example in enumerate(examples):
        n_best, seen = [], set()
        for score, w, s, e in sorted(by_example[k], key=lambda c: -c[0]):
            first, last = windows.word[w, s], windows.word[w, e]
            original = example.context[example.word_spans[first][0]:example.word_spans[last][1]]
            text = final_text(_piece_text([vocabulary[t] for t in ids[w, s:e + 1]]), original, lowercase)
            if text in seen:
                continue
            seen.add(text)
            n_best.append((text, score))
            if len(n_best) == n_best_size:
                break
        best = n_best[0] if n_best else ("", float("-inf"))
        null_score = float(null[k]) - best[1] if "null_log_prob" in outputs else float(null[k])
        results.append({"text": best[0], "score": best[1], "null_score": null_score, "n_best": n_best})
    return results
