"""Checkpoint conversion: the original's variable names, and Hugging Face, TF1 and keras-hub formats.

Every conversion passes through the original google-research/electra layout.
"""
