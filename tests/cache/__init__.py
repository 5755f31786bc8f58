"""The cache directory's stores: blob records and the block cache."""
