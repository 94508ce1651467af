"""Shared plumbing: the user-error type and its exit policy, atomic writes, progress display.

Nothing here knows about models.
"""
