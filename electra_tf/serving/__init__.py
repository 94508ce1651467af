"""Serving: the SavedModels that `export` and the end of `run_pretraining` write.

They take raw strings (the tokenizer is in the graph) or ids, and load without electra_tf.
"""
