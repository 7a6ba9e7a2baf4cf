"""Sweeps: a grid of runs in the override syntax, run and resumed as ordinary run directories, the trade-off front
and a selection rule (`unlearn sweep`; docs/sweeps.md)."""
