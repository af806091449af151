"""The `luss` library: data, training engine, clustering, evaluation, packing and SAM refinement.

Nothing here changes global state on import; the CLI configures the runtime in one entry function
(`tools.runtime.configure_runtime`).
"""
