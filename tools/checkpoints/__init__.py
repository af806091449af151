"""Checkpoint readers: PyTorch zip files without torch, strict key-by-key loading into Jittor modules."""
