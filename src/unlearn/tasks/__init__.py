"""Evaluation tasks, looked up by name (``eval.task``; ``unlearn tasks`` lists them).

A benchmark registers its task with :func:`register` (a plugin: :func:`unlearn.extend.register_task`); nothing else
in the toolkit needs to know its sets or metrics.
"""

from __future__ import annotations

from unlearn.registry import Registry, RegistryError
from unlearn.tasks.base import EvalResult, Task
from unlearn.tasks.lm_eval.harness import PREFIX as HARNESS_PREFIX


def _load_builtin() -> None:
    """Import the built-in task modules (each registers itself)."""
    from unlearn.tasks.multiple_choice import task as _mc  # noqa: F401
    from unlearn.tasks.muse import task as _muse  # noqa: F401
    from unlearn.tasks.real_world import task as _real_world  # noqa: F401
    from unlearn.tasks.tofu import mia as _tofu_mia  # noqa: F401
    from unlearn.tasks.tofu import task as _tofu  # noqa: F401


TASKS: Registry[Task] = Registry("eval.task", loader=_load_builtin,
                                 hint=f"or {HARNESS_PREFIX}<task>[,<task>…] for lm-evaluation-harness tasks; "
                                      "`unlearn tasks` lists them", fold_case=False)


def register(task: Task) -> Task:
    """Add a task (a :class:`Task` instance) under its ``name``; a name taken already is an error."""
    if not isinstance(task, Task):
        raise RegistryError(f"register_task expects a Task instance, got {type(task).__name__}")
    version = getattr(task, "version", None)
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise RegistryError(f"task {task.name!r} ({type(task).__module__}) declares no version: give its class "
                            "`version = 1` (an int ≥ 1, raised whenever its protocol changes a number)")
    return TASKS.register(task.name, task, origin=type(task).__module__)


_HARNESS: dict[str, Task] = {}
"""``lm_eval:…`` tasks, made on first use: any harness task is one, so they are not registered names."""


def get_task(name: str) -> Task:
    if name.startswith(HARNESS_PREFIX):  # any lm-evaluation-harness task, resolved when the run is checked
        from unlearn.tasks.lm_eval.task import HarnessTask

        return _HARNESS.setdefault(name, HarnessTask(name))
    return TASKS.get_entry(name)


def describe_tasks() -> str:
    ordered = sorted(TASKS.values(), key=lambda t: (t.name != "tofu", t.data_kind != "tofu"))
    from unlearn.tasks.lm_eval.task import SUMMARY

    harness = f"{HARNESS_PREFIX}<task>[,<task>…]: {SUMMARY}"
    return "\n\n".join([*(task.describe() for task in ordered), harness])  # the default first


__all__ = ["TASKS", "EvalResult", "Task", "describe_tasks", "get_task", "register"]
