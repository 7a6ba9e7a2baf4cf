"""``unlearn sweep``: every run of a grid as an ordinary run directory under ``OUT/runs/``, then the selection and the
report (docs/sweeps.md).

Runs go one after another in this process, or ``sweep.jobs`` at a time each in its own ``unlearn run`` process (on
``sweep.devices`` GPUs, one run per GPU), every process limited to ``sweep.threads`` torch threads. A run already
finished with the same configuration is skipped and an interrupted one resumes from its checkpoint, so a sweep
stopped anywhere goes on where it stopped.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from unlearn.config import RunConfig
from unlearn.config.parsing import dump_yaml
from unlearn.errors import ConfigError, UnlearnError
from unlearn.io import write_json, write_text
from unlearn.runs import RunDirectory
from unlearn.sweeps.config import DEFAULT_METRICS, SweepConfig
from unlearn.sweeps.grid import GridRun, expand, parse_grid
from unlearn.sweeps.select import Axis, Candidate, choose, metric_value, pareto_front

if TYPE_CHECKING:
    from unlearn.experiments.plan import RunPlan
    from unlearn.tasks.base import MetricSpec


def selection_axes(cfg: RunConfig, sweep: SweepConfig) -> tuple[Axis, str]:
    """The forgetting axis (key and direction) and the utility metric key, checked against what the run's task
    produces: a run-level metric (``knowmem_f``) or a set's (``SET.METRIC``: ``wmdp_bio.accuracy``). The forgetting
    direction is the task's declaration: a run-level metric's own (FQ ↑, KnowMem ↓, PrivLeak closest to 0); a set
    metric is forgotten when lower (accuracy, ROUGE, Prob), or higher where the task says so (TOFU's Truth Ratio).
    Utility must be a higher-is-better metric."""
    from unlearn.tasks import get_task

    task = get_task(cfg.eval.task)
    defaults = DEFAULT_METRICS.get(task.name, (None, None))
    declared = task.all_metrics()
    run_level = {m.key: m for m in declared if m.scope == "run"}
    set_level = {m.key: m for m in declared if m.scope == "set"}
    named = [*run_level, *(f"SET.{k}" for k in set_level)]
    found: dict[str, tuple[str, MetricSpec]] = {}
    for setting, default in (("forget_metric", defaults[0]), ("utility_metric", defaults[1])):
        key = getattr(sweep, setting) or default
        if key is None:
            raise ConfigError(f"sweep.{setting} is required for the {task.name} task (its metrics: "
                              f"{', '.join(named)}; SET one of {', '.join(task.set_names)})")
        spec = run_level.get(key)
        if spec is None and "." in key:
            set_name, metric = key.split(".", 1)
            spec = set_level.get(metric) if set_name in task.set_names else None
        if spec is None:
            raise ConfigError(f"sweep.{setting}={key!r}: the {task.name} task does not produce it (its metrics: "
                              f"{', '.join(named)}; SET one of {', '.join(task.set_names)})")
        found[setting] = (key, spec)
    key, spec = found["forget_metric"]
    if spec.scope == "run":
        axis = Axis(key, lower_is_better=not spec.higher_is_better, goal=spec.goal)
    else:
        axis = Axis(key, lower_is_better=not spec.forgotten_when_higher)
    utility, spec = found["utility_metric"]
    if not spec.higher_is_better or spec.goal is not None:
        raise ConfigError(f"sweep.utility_metric={utility!r}: the selection keeps utility ≥ a share of the target's, "
                          f"so it needs a higher-is-better metric ({spec.name} is not)")
    return axis, utility


def plan_sweep(base: Mapping[str, Any], items: Sequence[str], sweep: SweepConfig, out: Path,
               yes: bool = False) -> list[tuple[GridRun, RunPlan]]:
    """Every run with its plan (the resolved ``config.yaml`` among it), all checked before anything runs."""
    from unlearn.experiments.common import check_evaluation
    from unlearn.experiments.plan import plan_unlearning
    from unlearn.experiments.unlearning import check_generated_answers

    runs = expand(parse_grid(items), base, (), out)
    for run in runs:  # shared through the runs' configs, so process and SLURM launchers share it too
        if sweep.reuse and not run.config.cache_dir:
            run.config.cache_dir = str(out / "cache")
    if len(runs) > sweep.max_runs and not yes:
        raise ConfigError(f"the grid has {len(runs)} runs, more than sweep.max_runs={sweep.max_runs}; pass --yes to "
                          "run them all, or raise sweep.max_runs")
    planned = []
    for run in runs:
        try:
            plan = plan_unlearning(run.config)
            check_evaluation(plan)
            check_generated_answers(plan)  # AltPO's budget: tokenizer and data, no weights
        except UnlearnError as err:
            raise type(err)(f"grid run {run.name}: {err}") from None
        planned.append((run, plan))
    axis, _ = selection_axes(runs[0].config, sweep)
    if axis.key == "forget_quality":
        missing = [r.name for r in runs if not r.config.eval.retain_reference]
        if missing:
            raise ConfigError(f"the selection ranks by forget_quality, which needs eval.retain_reference (the retain "
                              f"model's run directory or TOFU eval log); {len(missing)} run(s) have none, e.g. "
                              f"{missing[0]}: set eval.retain_reference=…, or choose sweep.forget_metric")
    if sweep.target is None and not all(r.config.train.eval_every_epoch for r in runs):
        raise ConfigError("the selection needs the target model's utility: set train.eval_every_epoch=true (epoch 0 "
                          "is the model before unlearning) or sweep.target=RUN_DIR (the target's evaluation)")
    if sweep.target is not None and not RunDirectory(sweep.target).is_complete():
        raise ConfigError(f"sweep.target={sweep.target!r} is not a finished run directory (with metrics.json)")
    return planned


def check_finished_runs(planned: Sequence[tuple[GridRun, RunPlan]], out: Path, overwrite: bool) -> None:
    """A run directory of the grid that holds a finished (or checkpointed) run of another configuration — an earlier
    sweep into this output_dir with another base value — is never replaced without ``--overwrite``."""
    from unlearn.experiments.stages import other_run

    others = [(run, keys) for run, plan in planned if (keys := other_run(plan.run, plan.config_text))]
    if others and not overwrite:
        run, keys = others[0]
        shown = ", ".join(keys[:5]) + (f" and {len(keys) - 5} more" if len(keys) > 5 else "")
        from unlearn.objectives.methods import rename_note

        stored = RunDirectory(run.config.output_dir).read_config()
        note = rename_note(((stored or {}).get("method") or {}).get("name") if isinstance(stored, dict) else None)
        raise UnlearnError(f"{out}: {len(others)} run(s) of this grid already hold a run of another configuration, "
                           f"e.g. {run.config.output_dir} (differs in {shown}); a sweep never replaces finished runs: "
                           f"choose another output_dir, or add --overwrite to replace them{note}")


def _named(run: GridRun, err: UnlearnError) -> UnlearnError:
    return type(err)(f"sweep run {run.name} ({run.config.output_dir}): {err}")


def _execute_here(planned: Sequence[tuple[GridRun, RunPlan]], threads: int, echo) -> None:
    import torch

    from unlearn.experiments.stages import run_stage
    from unlearn.experiments.unlearning import run_unlearning

    torch.set_num_threads(threads)
    for i, (run, plan) in enumerate(planned, start=1):
        def execute(run: GridRun = run, plan: RunPlan = plan, i: int = i, **how: bool) -> None:
            echo(f"[{i}/{len(planned)}] {run.name}")
            try:
                run_unlearning(plan, **how)
            except UnlearnError as err:
                raise _named(run, err) from None

        run_stage(plan.run, plan.config_text, execute)


def _execute_processes(planned: Sequence[tuple[GridRun, RunPlan]], sweep: SweepConfig, out: Path, echo) -> None:
    """Each run as ``unlearn run -c CONFIG`` in its own process, ``sweep.jobs`` at a time."""
    from unlearn.experiments.stages import stage_action

    configs, logs = out / "configs", out / "logs"
    slots = list(sweep.devices) or [None] * sweep.jobs
    free = list(range(len(slots)))

    def launch(item: tuple[int, tuple[GridRun, str]]) -> tuple[str, int]:
        i, (run, plan) = item
        slot = free.pop()
        try:
            path = configs / f"{run.name}.yaml"
            write_text(path, dump_yaml(run.config))
            resume = stage_action(plan.run, plan.config_text) == "resume"
            env = {**os.environ, "OMP_NUM_THREADS": str(sweep.threads), "MKL_NUM_THREADS": str(sweep.threads)}
            if slots[slot] is not None:
                env["CUDA_VISIBLE_DEVICES"] = str(slots[slot])
            echo(f"[{i}/{len(planned)}] {run.name}" + (f" (GPU {slots[slot]})" if slots[slot] is not None else ""))
            logs.mkdir(parents=True, exist_ok=True)
            with open(logs / f"{run.name}.log", "w", encoding="utf-8") as log:
                code = subprocess.call([sys.executable, "-m", "unlearn.cli", "run", "-c", str(path),
                                        "--resume" if resume else "--overwrite"], env=env, stdout=log,
                                       stderr=subprocess.STDOUT)
            return run.name, code
        finally:
            free.append(slot)

    with ThreadPoolExecutor(max_workers=len(slots)) as pool:
        failed = [name for name, code in pool.map(launch, enumerate(planned, start=1)) if code != 0]
    if failed:
        why = _last_error(logs / f"{failed[0]}.log")
        raise UnlearnError(f"{len(failed)} sweep run(s) failed: {', '.join(failed[:5])}; {failed[0]}: {why} (logs "
                           f"in {logs})")


def _execute_slurm(planned: Sequence[tuple[GridRun, RunPlan]], sweep: SweepConfig, out: Path, echo) -> None:
    """Each run as one job of a SLURM job array (:mod:`unlearn.sweeps.slurm`); waits for the last one."""
    from unlearn.sweeps.slurm import report_failures, submit_and_wait

    configs = out / "configs"
    paths = []
    for run, _ in planned:
        path = configs / f"{run.name}.yaml"
        write_text(path, dump_yaml(run.config))
        paths.append(path)
    folder = out / "slurm"
    report_failures(submit_and_wait(paths, [run.name for run, _ in planned], sweep.slurm, folder, echo), folder)


def _last_error(log: Path) -> str:
    """The run process's own one-line error, else its last line."""
    lines = [line for line in log.read_text(encoding="utf-8", errors="replace").splitlines() if line.strip()]
    errors = [line.removeprefix("error: ") for line in lines if line.startswith("error: ")]
    return errors[-1] if errors else (lines[-1] if lines else "no output")


def candidates_of(run: GridRun, forget_key: str, utility_key: str, epochs: bool) -> tuple[list[Candidate],
                                                                                           dict[str, Any]]:
    """The run's candidates (every evaluated epoch ≥ 1, or its final evaluation) and its epoch-0 row."""
    directory = RunDirectory(run.config.output_dir)
    rows = directory.read_epochs() or []
    start = next((r for r in rows if r.get("epoch") == 0), {})
    out = []
    for row in (r for r in rows if epochs and r.get("epoch", 0) >= 1):
        forget, utility = metric_value(row, forget_key), metric_value(row, utility_key)
        if forget is not None and utility is not None:
            out.append(Candidate(run.name, run.method, int(row["epoch"]), forget, utility, run.settings))
    if not out:
        metrics = directory.read_results().metrics
        forget, utility = metric_value(metrics, forget_key), metric_value(metrics, utility_key)
        if forget is None or utility is None:
            raise UnlearnError(f"{directory.path}: its results have no {forget_key if forget is None else utility_key}")
        out.append(Candidate(run.name, run.method, None, forget, utility, run.settings))
    return out, start


def run_sweep(base: Mapping[str, Any], items: Sequence[str], sweep: SweepConfig, out: Path, yes: bool = False,
              echo=print, overwrite: bool = False, report_only: bool = False) -> Path:
    """Plan, run what is not finished, select, report. Returns the sweep directory. ``overwrite``: replace grid runs
    that hold another configuration's finished run; ``report_only``: run nothing, select and report from the runs
    that have finished (e.g. while SLURM jobs are still running), saying which are missing."""
    if sweep.launcher == "slurm":
        from unlearn.sweeps.slurm import check_slurm

        check_slurm(sweep.slurm)  # submitit installed, every sbatch option known: before anything is planned
    planned = plan_sweep(base, items, sweep, out, yes)
    check_finished_runs(planned, out, overwrite)
    axis, utility_key = selection_axes(planned[0][0].config, sweep)
    from unlearn.experiments.stages import stage_action

    pending = [(r, p) for r, p in planned if stage_action(p.run, p.config_text) != "reuse"]
    if report_only:
        finished = [(r, p) for r, p in planned if (r, p) not in pending]
        if not finished:
            raise UnlearnError(f"--report-only: none of the {len(planned)} runs in {out} has finished yet")
        echo(f"sweep: the report from {len(finished)} of {len(planned)} finished runs (nothing is run)")
        return write_sweep(finished, sweep, axis, utility_key, out, missing=[r.name for r, _ in pending])
    how = (f"one SLURM job each ({sweep.slurm.cluster})" if sweep.launcher == "slurm"
           else f"{sweep.jobs} at a time, {sweep.threads} threads each")
    echo(f"sweep: {len(planned)} runs, {len(planned) - len(pending)} finished, {len(pending)} to run ({how})")
    if pending:
        if sweep.launcher == "slurm":
            _execute_slurm(pending, sweep, out, echo)
        elif sweep.jobs == 1 and not sweep.devices:
            _execute_here(pending, sweep.threads, echo)
        else:
            _execute_processes(pending, sweep, out, echo)
    return write_sweep(planned, sweep, axis, utility_key, out)


def _point(run_dir: str | None, forget_key: str, utility_key: str) -> dict[str, float] | None:
    if not run_dir or not RunDirectory(run_dir).is_complete():
        return None
    metrics = RunDirectory(run_dir).read_results().metrics
    forget, utility = metric_value(metrics, forget_key), metric_value(metrics, utility_key)
    if utility is None:
        return None
    if forget is None and forget_key == "forget_quality":
        forget = 1.0  # the retain model against itself: the same distribution
    return None if forget is None else {"forget": forget, "utility": utility}


def write_sweep(planned: Sequence[tuple[GridRun, RunPlan]], sweep: SweepConfig, axis: Axis, utility_key: str,
                out: Path, missing: Sequence[str] = ()) -> Path:
    from unlearn.reporting.differences import limited_lines, provenance_differences, warning_lines
    from unlearn.sweeps.report import sweep_report

    forget_key = axis.key
    runs_results = [RunDirectory(run.config.output_dir).read_results() for run, _ in planned]
    candidates, starts = [], []
    for run, _ in planned:
        found, start = candidates_of(run, forget_key, utility_key, sweep.epochs)
        candidates += found
        if start:
            starts.append(start)
    target = _point(sweep.target, forget_key, utility_key)
    if target is None and starts:
        start = starts[0]
        target = {"forget": metric_value(start, forget_key), "utility": metric_value(start, utility_key)}
    if target is None or target.get("utility") is None:
        raise UnlearnError("the target's utility is unknown (no epoch-0 evaluation and no sweep.target)")
    first = runs_results[0].metrics
    n_forget = ((first.get("sets") or {}).get("forget") or {}).get("n")
    choices = choose(candidates, target["utility"], sweep.utility_ratio, forget_key == "forget_quality", n_forget,
                     axis=axis)
    retain_dir = sweep.retain or planned[0][0].config.eval.retain_reference
    retain = _point(retain_dir, forget_key, utility_key)
    result = {
        "forget_metric": forget_key, "forget_direction": axis.direction, "utility_metric": utility_key,
        "utility_ratio": sweep.utility_ratio,
        "target": target, "retain": retain, "n_forget": n_forget,
        "runs": [{"name": r.name, "method": r.method, "settings": r.settings} for r, _ in planned],
        "candidates": [c.__dict__ | {"settings": dict(c.settings)} for c in candidates],
        "front": [c.label for c in pareto_front(candidates, axis)],
        "fronts": {m: [c.label for c in pareto_front([c for c in candidates if c.method == m], axis)]
                   for m in dict.fromkeys(c.method for c in candidates)},
        "chosen": {m: {"candidate": None if ch.chosen is None else ch.chosen.label, "threshold": ch.threshold,
                       "eligible": ch.eligible, "tied_with": ch.tied_with, "seed_spread": ch.seed_spread,
                       "reason": ch.reason} for m, ch in choices.items()},
    }
    differences, unchecked = provenance_differences(runs_results, [r.name for r, _ in planned])
    result["provenance"] = {"runs": {r.name: res.provenance for (r, _), res in zip(planned, runs_results,
                                                                                strict=True)},
                            "differences": [{"what": d.what, "values": d.values} for d in differences]}
    report = sweep_report(result, candidates, choices, out, sweep.name)
    names = [r.name for r, _ in planned]
    warnings = [*limited_lines(runs_results, names), *warning_lines(differences, unchecked)]
    if missing:
        result["missing"] = list(missing)
        warnings = [f"**Partial: {len(missing)} run(s) have not finished and are left out: "
                    f"{', '.join(missing[:8])}{' …' if len(missing) > 8 else ''}.**", "", *warnings]
    write_json(out / f"{sweep.name}.json", result)
    write_text(out / f"{sweep.name}.md", "\n".join([*report[:2], *warnings, *report[2:]]) + "\n")
    return out

