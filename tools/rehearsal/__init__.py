"""The preset rehearsal: the real presets, architectures intact, on a small odd-sized dataset under mpirun."""
