"""`QAConfig`: the question-answering settings, importable without TensorFlow.

Defaults are the original's (google-research/electra `configure_finetuning.py`).
"""

import dataclasses

QA_TASKS = ("squad_v1", "squad_v2")


@dataclasses.dataclass(frozen=True)
class QAConfig:
    """Windows, beam and answer settings of a question-answering run.

    Args:
        max_query_length: question word pieces kept (the rest are cut).
        doc_stride: word pieces between the starts of consecutive windows over a long context.
        max_answer_length: the longest answer, in word pieces.
        n_best_size: candidate answers kept per question.
        beam_size: start positions, and end positions per start, searched at prediction.
        answerable_weight: weight of the answerability loss.
        na_threshold: SQuAD 2.0: "no answer" when the answerability logit (higher: no answer) exceeds it.

    Example:

    >>> QAConfig().doc_stride, QAConfig().na_threshold
    (128, -2.75)
    """

    max_query_length: int = 64
    doc_stride: int = 128
    max_answer_length: int = 30
    n_best_size: int = 20
    beam_size: int = 20
    answerable_weight: float = 0.5
    na_threshold: float = -2.75

    def __post_init__(self):
        problems = [f"{name} must be positive, got {getattr(self, name)}"
                    for name in ("max_query_length", "doc_stride", "max_answer_length", "n_best_size", "beam_size")
                    if getattr(self, name) <= 0]
        if problems:
            raise ValueError("; ".join(problems))

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
    "answerable_weight": "squad: weight of the answerability classifier's loss (the original's 0.5).",
    "na_threshold": "squad_v2: answer 'no answer' when the answerability logit exceeds this (the original's -2.75).",
}
