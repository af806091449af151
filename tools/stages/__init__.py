"""What each ``luss`` command does: one module per pipeline stage, reading and writing a run directory."""
