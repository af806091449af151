"""Jittor networks of `luss`: backbones, the Feature Aggregator adapter, heads and losses. No file I/O."""
