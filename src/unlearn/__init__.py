"""unlearn — machine unlearning for large language models.

The package is organised along the flow of one run (DESIGN.md "The flow"):
``data`` → ``models`` → ``objectives`` → ``train`` → ``evaluation`` → ``experiments``.
The public Python API for TOFU aggregates lives in :mod:`unlearn.evaluation.tofu_metrics`.
"""

__version__ = "0.1.0"
