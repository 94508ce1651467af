"""Extractive question answering (SQuAD 1.1 and 2.0).

The original's QA task (google-research/electra `finetune/qa/`): question
then context in sliding windows, start logits, end logits conditioned on
the start, an answerability classifier, a beam over starts and ends at
prediction time, and the official SQuAD evaluation.
"""
