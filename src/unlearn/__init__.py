"""unlearn — machine unlearning for large language models.

The package follows the flow of one run (docs/architecture.md): ``config`` → ``data`` → ``models`` →
``objectives`` → ``train`` → ``evaluation`` (tasks) → ``runs`` / ``reporting``, driven by ``experiments`` and
``studies``. Whole runs from Python: :func:`run`, :func:`finetune`, :func:`evaluate`, :func:`plan`, :func:`configure`
(:mod:`unlearn.api`); adding a method, task, attack or scenario from outside: :mod:`unlearn.extend`
(docs/extending.md).
"""

__version__ = "0.1.0"


def __getattr__(name: str):
    # the API loads torch and transformers: only when asked for, so `import unlearn` stays light
    if name in ("run", "finetune", "evaluate", "configure", "plan", "RunOutcome"):
        from unlearn import api

        return getattr(api, name)
    raise AttributeError(f"module 'unlearn' has no attribute {name!r}")
