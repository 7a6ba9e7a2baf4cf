"""lm-evaluation-harness on our model: ``eval.task=lm_eval:<task>[,<task>…]`` and ``eval.lm_eval`` (general
capability beside any task, e.g. closer-look §5.3's ARC-Challenge, TruthfulQA MC1, TriviaQA and GSM8K).

The harness does the scoring, with its own prompts and metrics (``acc``, ``acc_norm``, ``exact_match``, …) and its
default seeds, so the numbers are comparable with published lm-eval numbers. We add what the harness does not do
before loading a model: every task name is resolved (an unknown one is named, with close matches), and every data
set it needs is located — a local file, the Hugging Face cache, or a reachable hub — so an offline machine stops with
"task X needs data set Y" instead of retries after the model is loaded. A task file given by path (YAML whose
``dataset_path`` is ``json``/``csv``/… on local ``data_files``, or a local directory) runs offline.
"""

from __future__ import annotations

import difflib
import functools
import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from unlearn.config.parsing import yaml_problem
from unlearn.errors import ConfigError
from unlearn.hub import hub_problem

PREFIX = "lm_eval:"
INSTALL_HINT = "pip install 'llm-unlearn[lm-eval]' (or pip install lm-eval)"
LOCAL_BUILDERS = ("json", "csv", "parquet", "text", "arrow", "pandas")  # datasets' builders for local files
TASK_FILE_SUFFIXES = (".yaml", ".yml")


def import_lm_eval() -> Any:
    """The ``lm_eval`` module, or one line saying how to install it."""
    try:
        import lm_eval
    except ImportError as err:
        raise ConfigError(f"lm-evaluation-harness tasks need the optional lm-eval package, which is not installed "
                          f"({err}); install it with {INSTALL_HINT}") from None
    return lm_eval


def split_specs(text: str | Sequence[str]) -> list[str]:
    """``"lm_eval:arc_challenge,gsm8k"`` (or a list of names) → ``["arc_challenge", "gsm8k"]``."""
    items = text.split(",") if isinstance(text, str) else list(text)
    specs = [item.strip().removeprefix(PREFIX).strip() for item in items]
    specs = [s for s in specs if s]
    if not specs:
        raise ConfigError(f"lm_eval: no task named in {text!r} (e.g. lm_eval:arc_challenge,truthfulqa_mc1)")
    return specs


def is_task_file(spec: str) -> bool:
    return spec.endswith(TASK_FILE_SUFFIXES) or os.sep in spec


@dataclass(frozen=True)
class LeafTask:
    """One leaf task of the harness and the data set it reads."""

    name: str
    dataset: str | None  # ``dataset_path`` of its config (None: set in Python by a task class)
    subset: str | None  # ``dataset_name``
    data_files: tuple[str, ...] = ()

    def describe_dataset(self) -> str:
        if self.dataset is None:
            return "a data set chosen by its Python task class"
        if self.dataset in LOCAL_BUILDERS:
            return f"local {self.dataset} data ({', '.join(self.data_files) or 'no data_files given'})"
        return self.dataset + (f" ({self.subset})" if self.subset else "")

    def missing_data(self) -> str | None:
        """Why this task's data set cannot be read now (None when it can)."""
        if self.dataset is None:
            return None  # only the harness knows; it reports its own error
        if self.dataset in LOCAL_BUILDERS:
            missing = [f for f in self.data_files if "://" not in f and not Path(f).expanduser().exists()]
            return f"its data file {missing[0]} does not exist" if missing else None
        if Path(self.dataset).expanduser().exists():
            return None
        return hub_problem(self.dataset, "dataset")


@dataclass
class HarnessPlan:
    """What to hand to the harness: the specs as given, and the leaf tasks they expand to."""

    specs: list[str]
    leaves: list[LeafTask]


def _data_files(kwargs: Any) -> tuple[str, ...]:
    files = (kwargs or {}).get("data_files") if isinstance(kwargs, dict) else None
    if isinstance(files, str):
        return (files,)
    if isinstance(files, dict):
        values = [v for value in files.values() for v in ([value] if isinstance(value, str) else value)]
        return tuple(values)
    return tuple(files or ())


def _leaf(name: str, cfg: dict[str, Any]) -> LeafTask:
    return LeafTask(name, cfg.get("dataset_path"), cfg.get("dataset_name"),
                       _data_files(cfg.get("dataset_kwargs")))


def _expand(entry: Any, index: dict[str, Any], seen: set[str]) -> Iterator[LeafTask]:
    """The leaf tasks of a task, group or tag entry of lm-eval's task index."""
    from lm_eval.tasks._index import Kind

    if entry.name in seen:
        return
    seen.add(entry.name)
    cfg = entry.cfg or {}
    if entry.kind in (Kind.TASK, Kind.PY_TASK):
        yield _leaf(entry.name, cfg)
    elif entry.kind == Kind.GROUP:
        for item in cfg.get("task") or []:
            if isinstance(item, dict) and item.get("dataset_path"):
                yield _leaf(str(item.get("task")), item)
                continue
            sub = index.get(item.get("task") if isinstance(item, dict) else item)
            if sub is not None:
                yield from _expand(sub, index, seen)
    elif entry.kind == Kind.TAG:
        for other in index.values():
            if entry.name in other.tags:
                yield from _expand(other, index, seen)


@functools.lru_cache(maxsize=1)
def builtin_index() -> dict[str, Any]:
    """lm-eval's index of its built-in tasks, groups and tags (≈14 000 YAML files: seconds, so once a process)."""
    import_lm_eval()
    from lm_eval.tasks import TaskManager

    return TaskManager().task_index


def resolve(specs: Sequence[str]) -> HarnessPlan:
    """Resolve task names and task files to leaf tasks; unknown names and missing files are one line each."""
    import_lm_eval()
    from lm_eval.tasks._index import Kind, TaskIndex
    from lm_eval.tasks._yaml_loader import load_yaml

    files = [s for s in specs if is_task_file(s)]
    for spec in files:
        if not Path(spec).expanduser().is_file():
            raise ConfigError(f"lm_eval: task file {spec} not found")
    names = [s for s in specs if s not in files]
    index = builtin_index() if names else {}  # scanned only when a task is named rather than given by path
    leaves: list[LeafTask] = []
    for spec in specs:
        if spec in files:
            try:
                entry = TaskIndex.entry_from_config(load_yaml(Path(spec).expanduser(), resolve_func=False))
            except Exception as err:  # YAML errors, include cycles, …
                raise ConfigError(f"lm_eval: task file {spec} cannot be read ({yaml_problem(err)})") from None
            if entry is None:
                raise ConfigError(f"lm_eval: {spec} is not an lm-eval task file (no `task:` or `group:` key)")
            if entry.kind not in (Kind.TASK, Kind.PY_TASK) and not index:
                index = builtin_index()  # a group file naming built-in tasks
        else:
            entry = index.get(spec)
            if entry is None:
                close = difflib.get_close_matches(spec, list(index), n=5, cutoff=0.6)
                hint = f"; close matches: {', '.join(close)}" if close else ""
                raise ConfigError(f"lm_eval: unknown task {spec!r}{hint} (`lm-eval ls tasks` lists them; a local "
                                  f"task file can be given by path)")
        leaves += list(_expand(entry, index, set()))
    return HarnessPlan([str(Path(s).expanduser()) if s in files else s for s in specs], leaves)


@functools.lru_cache(maxsize=8)
def cached_plan(specs: tuple[str, ...]) -> HarnessPlan:
    """:func:`resolve`, once per process for the same specs (the check and the run share it)."""
    return resolve(specs)


def plan(specs: str | Sequence[str]) -> HarnessPlan:
    """The plan for ``"lm_eval:a,b"`` or a list of task names (resolved once per process)."""
    return cached_plan(tuple(split_specs(specs)))


def check_data(plan: HarnessPlan) -> None:
    """Stop, before any model is loaded, when a task's data set cannot be read: which task needs which data set."""
    problems = [(leaf, why) for leaf in plan.leaves if (why := leaf.missing_data()) is not None]
    if not problems:
        return
    shown = "; ".join(f"{leaf.name} needs {leaf.describe_dataset()}: {why}" for leaf, why in problems[:8])
    more = f"; and {len(problems) - 8} more" if len(problems) > 8 else ""
    hub = any(leaf.dataset not in LOCAL_BUILDERS for leaf, _ in problems)
    advice = (" Run where the Hugging Face hub is reachable (or the data sets are cached), or give a local task file "
              "by path." if hub else "")
    raise ConfigError(f"lm_eval: {len(problems)} of {len(plan.leaves)} tasks cannot read their data — "
                      f"{shown}{more}.{advice}")


def _metric_name(key: str) -> str:
    metric, _, flt = key.partition(",")
    return metric if flt in ("", "none") else f"{metric} ({flt})"


def tidy_results(results: dict[str, Any]) -> dict[str, Any]:
    """The harness's result dict → ``{task: {metric: value, …, "n": questions}}`` (its ``,none`` filter suffix
    dropped; stderr kept as ``<metric>_stderr``)."""
    out: dict[str, Any] = {}
    counts = results.get("n-samples", {})
    for section in ("results", "groups"):
        for task, values in (results.get(section) or {}).items():
            if task in out:
                continue
            row = {_metric_name(k): v for k, v in values.items()
                   if k not in ("alias", "sample_len") and isinstance(v, (int, float)) and not isinstance(v, bool)}
            if task in counts:
                row["n"] = counts[task].get("effective")
            out[task] = row
    return out


def json_safe(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def run_harness(model: torch.nn.Module, tokenizer: Any, plan: HarnessPlan, batch_size: int,
                device: torch.device, max_rows: dict[str, int] | None = None,
                limit: int | None = None) -> tuple[dict[str, Any], dict[str, list[dict]]]:
    """Run the harness on ``model`` (in memory, no reload): ``(metrics per task, per-sample rows per task)``.

    ``max_rows``: the first rows of a leaf task by name (lm-eval's ``samples``), only to fit a CPU; ``limit``: at
    most that many rows of every leaf task (``--limit``, smoke tests).
    """
    lm_eval = import_lm_eval()
    from lm_eval.models.huggingface import HFLM

    was_training = model.training
    model.eval()
    try:
        lm = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=batch_size, device=str(device))
        leaf_names = {leaf.name for leaf in plan.leaves}
        rows_of = {name: n for name in leaf_names if (n := (max_rows or {}).get(name, limit)) is not None}
        if limit is not None:
            rows_of = {name: min(n, limit) for name, n in rows_of.items()}
        samples = {name: list(range(n)) for name, n in rows_of.items()} or None
        results = lm_eval.simple_evaluate(model=lm, tasks=list(plan.specs), samples=samples, log_samples=True,
                                          bootstrap_iters=1000)
    finally:
        model.train(was_training)
    if results is None:  # non-zero ranks of a multi-process run
        return {}, {}
    rows = {task: json_safe(list(items)) for task, items in (results.get("samples") or {}).items()}
    return tidy_results(results), rows
