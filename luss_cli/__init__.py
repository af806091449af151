"""Command-line face of `luss`: one Click group, one small module per command."""
