"""Running training: the loop, strategies, flags, the model_dir record, optimizer and reporting.

Used by the command-line entry points at the top of `electra_tf`.
"""
