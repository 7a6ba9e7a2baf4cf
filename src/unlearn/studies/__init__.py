"""Controlled studies that reproduce a paper's analysis end to end (``unlearn study NAME``)."""
