"""Continual unlearning (closer-look §5.2, Fig. 6 and 12; docs/formulas.md#continual): the forget file's tasks
(``task_id``) are unlearned one after another, each from the previous task's model, and every task is evaluated.

The retain set of task t is the closer-look rule: the base retain split (``retain{100 − min(10·XX, 90)}``, the
complement of all tasks of a closer-look ``forgetXX`` file; or ``data.retain_split``) plus every forget row whose task
comes after t, i.e. everything not forgotten yet. Each task is an ordinary ``unlearn run`` on a data view where
``forgetXX`` (and its ``_perturbed`` evaluation file) hold task t's rows, so every method, recipe and metric works
unchanged. NPO's reference is the start-of-task model (``reference=start``) or the original one (``original``,
closer-look Fig. 7c). A finished task is reused, so an interrupted scenario goes on from the last finished task.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from unlearn.config import RunConfig, load_config
from unlearn.config.parsing import check, check_choice, setting
from unlearn.data.files import read_raw_rows
from unlearn.data.views import data_view
from unlearn.errors import ConfigError, DataError
from unlearn.io import write_json, write_text
from unlearn.rendering.tables import fmt
from unlearn.runs import RunDirectory
from unlearn.tasks.tofu.data import TofuData, forget_percent

RETAIN_SPLIT = "continual_retain"


@dataclass
class ContinualConfig:
    methods: list[str] = setting(doc="methods run through the task sequence (closer-look Fig. 6: all seven)",
                                 factory=lambda: ["ga+gd", "npo+gd", "dpo+gd", "idk+gd", "me+gd", "idk+ap"])
    tasks: int | None = setting(None, "run the first N tasks only (default: every task of the forget file)")
    reference: str = setting("start", "NPO/DPO's reference: `start` (the model at the start of each task, "
                                      "closer-look §5.2) or `original` (the model before task 1, their Fig. 7c)")
    keep_models: bool = setting(False, "keep every task's model (default: only the latest, which the next task and "
                                       "a resume start from)")
    method_overrides: dict[str, Any] = setting(doc="run-config keys per method, e.g. "
                                                   "`method_overrides.me+gd.forget.alpha=1.0`", factory=dict)

    def __post_init__(self) -> None:
        check(bool(self.methods), "methods", "name at least one method", self.methods)
        check_choice(self.reference, ("start", "original"), "reference")
        if self.tasks is not None:
            check(self.tasks >= 1, "tasks", "be at least 1", self.tasks)
        from unlearn.objectives.methods import build_method

        for method in self.methods:
            build_method(method)
        unknown = sorted(set(self.method_overrides) - set(self.methods))
        check(not unknown, "method_overrides", f"name methods of `methods` ({', '.join(self.methods)})", unknown)


def base_retain_split(forget_split: str) -> str:
    """closer-look's retain split for a continual forget file: ``retain{100 − min(10·XX, 90)}`` (forget01 → retain90,
    forget05 → retain50, forget10 → retain10): the complement of all the file's tasks."""
    return f"retain{100 - min(10 * forget_percent(forget_split), 90):02d}"


def rows_by_task(path: Path) -> dict[int, list[dict[str, Any]]]:
    """The rows of a continual forget file grouped by ``task_id`` (an int or a numeric string), tasks in order."""
    tasks: dict[int, list[dict[str, Any]]] = {}
    for number, (row, line) in enumerate(read_raw_rows(path)):
        where = f"{path}: row {number}" + (f" (line {line})" if line is not None else "")
        if not isinstance(row, dict) or "task_id" not in row:
            raise DataError(f"{where}: field 'task_id' is missing; continual unlearning reads the task of every "
                            "forget row (closer-look's tofu_continual files have it)")
        try:
            task = int(row["task_id"])
        except (TypeError, ValueError):
            raise DataError(f"{where}: field 'task_id' must be an integer, got {row['task_id']!r}") from None
        tasks.setdefault(task, []).append(row)
    return dict(sorted(tasks.items()))


def continual_retain(base: list[dict[str, Any]], forget_by_task: dict[int, list[dict[str, Any]]],
                     task: int) -> list[dict[str, Any]]:
    """The retain set of ``task``: the base retain rows, then the forget rows of every later task (in task order) —
    everything not forgotten yet."""
    later = [row for t, rows in forget_by_task.items() if t > task for row in rows]
    return [*base, *later]


@dataclass
class ContinualPlan:
    """The tasks, read and checked before any model loads."""

    forget: dict[int, list[dict[str, Any]]]
    perturbed: dict[int, list[dict[str, Any]]]
    base_retain: list[dict[str, Any]]
    base_retain_name: str
    tasks: list[int] = field(default_factory=list)


def plan(cfg: RunConfig, scenario: ContinualConfig) -> ContinualPlan:
    root, split = Path(cfg.data.root), cfg.data.forget_split
    if not root.is_dir():
        raise ConfigError(f"data.root {cfg.data.root!r} is not a directory (a TOFU-layout continual benchmark, e.g. "
                          "closer-look's tofu_continual data or the continual/ folder of generated data)")
    data = TofuData(root)
    files = {}
    for name in (split, f"{split}_perturbed"):
        path = data.local_file(name)
        if path is None:
            raise DataError(f"{root}: split {name} not found (continual unlearning needs {split} and "
                            f"{split}_perturbed, each with task_id)")
        files[name] = path
    forget, perturbed = rows_by_task(files[split]), rows_by_task(files[f"{split}_perturbed"])
    if [len(v) for v in forget.values()] != [len(perturbed.get(t, [])) for t in forget]:
        raise DataError(f"{files[f'{split}_perturbed']}: its tasks do not have the rows of {files[split]} "
                        f"(tasks {list(forget)} with {[len(v) for v in forget.values()]} rows)")
    retain_name = cfg.data.retain_split or base_retain_split(split)
    retain_path = data.local_file(retain_name)
    if retain_path is None:
        raise DataError(f"{root}: retain split {retain_name} not found (closer-look's rule: retain{{100 − min(10·XX, "
                        "90)}}; or name one with data.retain_split)")
    base = [row for row, _ in read_raw_rows(retain_path)]
    if scenario.tasks is not None and scenario.tasks > len(forget):
        raise ConfigError(f"tasks={scenario.tasks}: {files[split]} holds {len(forget)} tasks (task_id "
                          f"{min(forget)}–{max(forget)}); give tasks ≤ {len(forget)} or leave it out for all of them")
    tasks = list(forget)[: scenario.tasks] if scenario.tasks else list(forget)
    return ContinualPlan(forget, perturbed, base, retain_name, tasks)


def task_config(cfg: RunConfig, scenario: ContinualConfig, method: str, model: str, original: str, view: Path,
                out: Path) -> RunConfig:
    from unlearn.config.parsing import merge, to_dict

    values = merge(to_dict(cfg), scenario.method_overrides.get(method, {}))
    task = load_config(RunConfig, base=values)
    task.method.name = method
    task.model.path = model
    task.data.root = str(view)
    task.data.retain_split = RETAIN_SPLIT
    task.save_model = True
    task.output_dir = str(out)
    if task.method.recipe_benchmark is None and task.eval.task == "tofu":
        task.method.recipe_benchmark = "tofu_continual"  # closer-look §5.2's values (ME+GD α 1.0), else TOFU's
    if scenario.reference == "original" and task.method.reference == "initial":
        task.method.reference = original
    return task


def _headline(run: RunDirectory) -> dict[str, Any]:
    metrics = run.read_results().metrics
    closer = metrics.get("closer_look") or {}
    forget = (metrics.get("sets") or {}).get("forget", {})
    return {"model_utility_9": metrics.get("model_utility_9"),
            "model_utility_18": closer.get("model_utility_18"),
            "forget_efficacy": closer.get("forget_efficacy"),
            # offline the NLI model is missing: closer-look's aggregates without ES, labelled as such
            "model_utility_without_es": closer.get("model_utility_without_es"),
            "forget_efficacy_without_es": closer.get("forget_efficacy_without_es"),
            "forget_rouge": forget.get("rouge"), "forget_prob": forget.get("prob")}


def run_continual(cfg: RunConfig, scenario: ContinualConfig, echo=print) -> Path:
    """Every method through the tasks; ``output_dir/continual.json`` and the plots. Returns the output directory."""
    from unlearn.experiments.chain import Link, run_chain
    from unlearn.experiments.plan import with_task_defaults

    cfg = with_task_defaults(cfg)  # the scenario's base: the forget split it slices into tasks
    p = plan(cfg, scenario)
    out = Path(cfg.output_dir or "runs/continual")
    split = cfg.data.forget_split
    views = {}
    for t in p.tasks:
        views[t] = data_view(cfg.data.root, out / "data" / f"task_{t:02d}", {
            split: p.forget[t],
            f"{split}_perturbed": p.perturbed[t],
            RETAIN_SPLIT: continual_retain(p.base_retain, p.forget, t),
        })
    results: dict[str, Any] = {"forget_split": split, "tasks": p.tasks, "rows_per_task": len(p.forget[p.tasks[0]]),
                               "base_retain": p.base_retain_name, "reference": scenario.reference, "methods": {}}
    original = cfg.model.path
    for method in scenario.methods:
        links = []
        for t in p.tasks:
            run_dir = out / method.replace("+", "_") / f"task_{t:02d}"
            n_retain = len(continual_retain(p.base_retain, p.forget, t))
            links.append(Link(
                lambda model, t=t, method=method, run_dir=run_dir: task_config(cfg, scenario, method, model,
                                                                               original, views[t], run_dir),
                f"{method}: task {t} of {p.tasks[-1]} ({len(p.forget[t])} forget rows, {n_retain} retain rows)"))
        runs = run_chain(cfg.model.path, links, echo, keep_models=scenario.keep_models)
        results["methods"][method] = [{"task": t, "seconds": run.read_results().seconds, **_headline(run)}
                                      for t, run in zip(p.tasks, runs, strict=True)]
    write_json(out / "continual.json", results)
    write_text(out / "continual.md", "\n".join(continual_report(results, out)) + "\n")
    return out


def _series(results: dict[str, Any], key: str) -> dict[str, list[tuple[float, float]]]:
    return {m: [(r["task"], r[key]) for r in rows if r.get(key) is not None]
            for m, rows in results["methods"].items() if any(r.get(key) is not None for r in rows)}


def continual_report(results: dict[str, Any], out: Path) -> list[str]:
    """Tables of MU and FE per task and method, and closer-look Fig. 6 / Fig. 12 as plots in ``out/plots``."""
    from unlearn.rendering.plots import plot_metric_curves

    lines = [f"# Continual unlearning: {results['forget_split']}, tasks {results['tasks'][0]}–{results['tasks'][-1]} "
             f"of {results['rows_per_task']} rows (base retain {results['base_retain']}; reference: "
             f"{results['reference']})", ""]
    rows = next(iter(results["methods"].values()))
    mu = "model_utility_18" if rows and rows[0].get("model_utility_18") is not None else "model_utility_without_es"
    fe = "forget_efficacy" if rows and rows[0].get("forget_efficacy") is not None else "forget_efficacy_without_es"
    labels = {"model_utility_18": "MU (closer-look, 18 numbers)", "model_utility_without_es": "MU without ES (15)",
              "forget_efficacy": "FE (closer-look)", "forget_efficacy_without_es": "FE without ES (4 terms)",
              "model_utility_9": "MU (TOFU, 9 numbers)"}
    for key, figure in ((mu, "Fig. 6"), (fe, "Fig. 12"), ("model_utility_9", None)):
        series = _series(results, key)
        if not series:
            continue
        lines += [f"## {labels[key]} after each task", "", "| method | " + " | ".join(
            f"task {t}" for t in results["tasks"]) + " |", "|---|" + "---|" * len(results["tasks"])]
        for method, points in series.items():
            by_task = dict(points)
            lines.append(f"| {method} | " + " | ".join(fmt(by_task.get(t))
                                                        for t in results["tasks"]) + " |")
        lines.append("")
        if figure:
            path = plot_metric_curves(series, out / "plots" / f"continual_{key}.png", xlabel="unlearning task",
                                      ylabel=labels[key], title=f"{labels[key]} per task (closer-look {figure})")
            lines += [f"![{labels[key]}](plots/{path.name})", ""]
    if "without_es" in mu:
        lines += ["ES (the NLI classifier) was unavailable, so MU and FE are closer-look's aggregates without it "
                  "(docs/formulas.md#forget-efficacy).", ""]
    return lines

