"""The firmware catalogue: images stored by content hash, and who runs which."""
