"""Fine-tuning the discriminator on classification and regression tasks (GLUE and your own files).

The recipe is the original's (google-research/electra `run_finetuning.py`,
`configure_finetuning.py`, `model/optimization.py`): the [CLS] vector ->
dropout -> one dense layer, AdamW without bias correction with layer-wise
learning-rate decay, the loss summed over the batch.
"""
