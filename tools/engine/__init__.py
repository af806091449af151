"""The one training engine every stage reuses: schedule, SGD/LARC, checkpoints, resume, logging."""
