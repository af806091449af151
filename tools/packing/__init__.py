"""Submission packing: build and check the ImageNet-S / Jittor-challenge submission zip.

Modules, one job each:

* ``method_info``: the 6-line ``method.txt`` (write and parse).
* ``safe_zip``: read any user zip without extracting it and without trusting it.
* ``rules``: the checks shared by ``luss pack`` and ``luss pack --check``.
* ``pack``: write the zip atomically and deterministically.
"""
