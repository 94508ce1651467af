"""Token tagging (CoNLL-style files): chunking, named entities, part-of-speech tags.

The original's tagging task (google-research/electra `finetune/tagging/`):
one dense layer on the final hidden state of each word's first word piece,
the loss summed over the words; chunk-style tags scored by entity-level
precision, recall and F1.
"""
