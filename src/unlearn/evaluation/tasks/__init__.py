"""Evaluation tasks, looked up by name (``eval.task``; ``unlearn tasks`` lists them).

A new benchmark registers its task here with :func:`register`; nothing else in the toolkit needs to know its sets or
metrics.
"""

from __future__ import annotations

from unlearn.errors import ConfigError
from unlearn.evaluation.harness import PREFIX as HARNESS_PREFIX
from unlearn.evaluation.tasks.base import EvalResult, Task

TASKS: dict[str, Task] = {}


def register(task: Task) -> Task:
    if task.name in TASKS:
        raise ValueError(f"task {task.name!r} is registered twice")
    TASKS[task.name] = task
    return task


def get_task(name: str) -> Task:
    _load_builtin()
    if name.startswith(HARNESS_PREFIX):  # any lm-evaluation-harness task, resolved when the run is checked
        from unlearn.evaluation.tasks.harness import HarnessTask

        return TASKS.setdefault(name, HarnessTask(name))
    try:
        return TASKS[name]
    except KeyError:
        raise ConfigError(f"unknown eval.task {name!r}; registered tasks: {', '.join(_builtin())}, or "
                          f"{HARNESS_PREFIX}<task>[,<task>…] for lm-evaluation-harness tasks (see unlearn tasks)") \
            from None


def describe_tasks() -> str:
    _load_builtin()
    ordered = sorted((TASKS[n] for n in _builtin()), key=lambda t: (t.name != "tofu", t.data_kind != "tofu"))
    from unlearn.evaluation.tasks.harness import SUMMARY

    harness = f"{HARNESS_PREFIX}<task>[,<task>…]: {SUMMARY}"
    return "\n\n".join([*(task.describe() for task in ordered), harness])  # the default first


def _builtin() -> list[str]:
    return [name for name in TASKS if not name.startswith(HARNESS_PREFIX)]


def _load_builtin() -> None:
    """Import the built-in task modules (each registers itself)."""
    from unlearn.evaluation.tasks import multiple_choice, muse, real_world, tofu, tofu_mia  # noqa: F401


__all__ = ["TASKS", "EvalResult", "Task", "describe_tasks", "get_task", "register"]
