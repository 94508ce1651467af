"""The networks: config, shared embeddings, the two Transformer towers and their heads.

Everything here is a Keras layer or model built from an `ElectraConfig`.
"""
