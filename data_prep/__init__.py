"""Data preparation: demo corpus export, WordPiece vocabulary, packed TFRecords."""
