"""Text to ids: the WordPiece vocabulary and the one tokenizer.

Data preparation and the exported SavedModel use the same tokenizer, so serving sees the ids training saw.
"""
