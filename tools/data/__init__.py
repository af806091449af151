"""Data layer: the ImageNet-S tree, the label PNG codec, dataset validation and the demo dataset."""
