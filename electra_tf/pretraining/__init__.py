"""The pre-training objective: keyed randomness, masking, generator sampling, the pretrainer.

What turns a batch of token ids into the generator and discriminator losses.
"""
