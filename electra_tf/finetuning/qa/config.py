"""`QAConfig`: the question-answering settings, importable without TensorFlow.

Defaults are the original's (google-research/electra `configure_finetuning.py`).
"""

import dataclasses

QA_TASKS = ("squad_v1", "squad_v2")
# The answer head: the original's (start-conditioned end, answerability classifier), or one dense layer
# giving start and end logits, as transformers' ElectraForQuestionAnswering (which it converts to).
QA_HEADS = ("original", "linear")
# The no-answer thresholds of each head's no-answer score: the original's for its answerability logit; for
# the linear head's (the [CLS] span's log-probability minus the best span's) 0, "no answer" when more likely.
NA_THRESHOLDS = {"original": -2.75, "linear": 0.0}
ANSWERABLE_WEIGHT = 0.5  # the original's weight of the answerability loss


@dataclasses.dataclass(frozen=True)
class QAConfig:
    """Windows, beam and answer settings of a question-answering run.

    Args:
        max_query_length: question word pieces kept (the rest are cut).
        doc_stride: word pieces between the starts of consecutive windows over a long context.
        max_answer_length: the longest answer, in word pieces.
        n_best_size: candidate answers kept per question.
        beam_size: start positions, and end positions per start, searched at prediction.
        answerable_weight: the original head: weight of the answerability loss (None: the original's 0.5).
            The linear head has no answerability classifier and takes none.
        na_threshold: SQuAD 2.0: "no answer" when a question's no-answer score exceeds it. The original
            head's score is its answerability logit (None: the original's -2.75); the linear head's is
            the [CLS] span's start + end log-probability minus the best span's (None: 0, no answer
            when that is the more likely).
        qa_head: "original" (start-conditioned end logits and an answerability classifier) or "linear"
            (start and end logits from one dense layer, as transformers' ElectraForQuestionAnswering,
            which `convert_checkpoint --to_hf` writes it as).

    Example:

    >>> QAConfig().doc_stride, QAConfig().na_threshold, QAConfig(qa_head="linear").na_threshold
    (128, -2.75, 0.0)
    """

    max_query_length: int = 64
    doc_stride: int = 128
    max_answer_length: int = 30
    n_best_size: int = 20
    beam_size: int = 20
    answerable_weight: float = None
    na_threshold: float = None
    qa_head: str = dataclasses.field(default="original", metadata={"choices": QA_HEADS})

    def __post_init__(self):
        problems = [f"{name} must be positive, got {getattr(self, name)}"
                    for name in ("max_query_length", "doc_stride", "max_answer_length", "n_best_size", "beam_size")
                    if getattr(self, name) <= 0]
        if self.qa_head not in QA_HEADS:
            problems.append(f"qa_head must be one of {', '.join(QA_HEADS)}, got {self.qa_head!r}")
        elif self.qa_head == "linear" and self.answerable_weight is not None:
            problems.append("answerable_weight is for the original QA head; the linear head has no answerability "
                            "classifier (drop answerable_weight)")
        if problems:
            raise ValueError("; ".join(problems))
        # Frozen: the head's defaults are filled in once, here.
        if self.na_threshold is None:
            object.__setattr__(self, "na_threshold", NA_THRESHOLDS[self.qa_head])
        if self.answerable_weight is None and self.qa_head == "original":
            object.__setattr__(self, "answerable_weight", ANSWERABLE_WEIGHT)

    def check_sequence(self, max_seq_length):
        """The window holds [CLS] question [SEP] at least one context piece [SEP]."""
        if self.max_query_length + 4 > max_seq_length:
            raise ValueError(f"max_query_length {self.max_query_length} leaves no room for the context in "
                             f"max_seq_length {max_seq_length}; lower --max_query_length or raise --max_seq_length")


FIELD_HELP = {
    "max_query_length": "squad: question word pieces kept (the original's 64).",
    "doc_stride": "squad: word pieces between the starts of the windows over a long context (the original's 128).",
    "max_answer_length": "squad: the longest answer, in word pieces (the original's 30).",
    "n_best_size": "squad: candidate answers kept per question (the original's 20).",
    "beam_size": "squad: start positions, and ends per start, searched at prediction (the original's 20).",
    "answerable_weight": "squad, the original head: weight of the answerability classifier's loss (default: the "
                         "original's 0.5).",
    "na_threshold": "squad_v2: answer 'no answer' when a question's no-answer score exceeds this. Original head: "
                    "the answerability logit (default: the original's -2.75); linear head: the [CLS] span's start + "
                    "end log-probability minus the best span's (default 0: no answer when it is the more likely).",
    "qa_head": "squad: original (the original's start-conditioned end logits and answerability classifier) or "
               "linear (start and end logits from one dense layer, no answer by the [CLS] span, as transformers' "
               "ElectraForQuestionAnswering; convert_checkpoint --to_hf writes it as that class).",
}
