"""Inference: image -> logits -> full-resolution labels, written as ImageNet-S PNGs."""
