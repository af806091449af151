"""``luss prepare``: an ILSVRC2012 copy + the ImageNet-S annotation zip -> the exact ImageNet-S tree."""
