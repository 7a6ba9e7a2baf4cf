"""unlearn — machine unlearning for large language models.

The package follows the flow of one run (docs/architecture.md): ``config`` → ``data`` → ``models`` →
``objectives`` → ``train`` → ``evaluation`` (tasks) → ``runs`` / ``reporting``, driven by ``experiments`` and
``studies``. The public Python API for TOFU aggregates lives in :mod:`unlearn.evaluation.tofu_metrics`.
"""

__version__ = "0.1.0"
