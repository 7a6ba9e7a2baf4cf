"""Human-readable results: a report per run and one markdown table across runs.

:func:`write_report` turns a run directory (its results, per-epoch rows, per-sample rows and configuration; see
:mod:`unlearn.runs`) into its report with the TOFU table (Maini et al., Table 2 style, with 95 % bootstrap
intervals), the closer-look table (TE, CS, ES, FE, MU-18), the figures of :mod:`unlearn.rendering.plots` and
example generations (closer-look Tables 13/14). What cannot be drawn or computed is said, with the
reason, never replaced by a different number. :func:`write_comparison` puts several runs side by side
(``unlearn compare``).
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from unlearn.errors import UnlearnError
from unlearn.io import write_text
from unlearn.rendering.gradient_weights import DEFAULT_WEIGHT_EPOCHS
from unlearn.rendering.tables import Notes, md_cell, md_table
from unlearn.reporting.attacks import attacks_section
from unlearn.reporting.differences import provenance_differences, refuse_differences, warning_lines
from unlearn.runs import LIMITED, RunDirectory, RunInfo, RunResults
from unlearn.tasks import Task, get_task
from unlearn.tasks.tofu.task import TofuMetrics

# ------------------------------------------------------------------------------------------ reading a run


@dataclass
class Run:
    """A finished run directory, read once: its typed results, its configuration and its per-epoch rows."""

    directory: RunDirectory
    results: RunResults
    config: dict[str, Any] | None
    epochs: list[dict[str, Any]] | None

    @property
    def path(self) -> Path:
        return self.directory.path

    @property
    def info(self) -> RunInfo:
        return self.results.run or RunInfo(stage="unknown")

    @property
    def stage(self) -> str:
        return self.info.stage

    @property
    def method(self) -> dict[str, Any] | None:
        return self.info.method

    @property
    def task(self) -> str:
        return self.results.task

    @property
    def forget_split(self) -> str | None:
        return self.info.forget_split or self.directory.config_value("data.forget_split")

    @property
    def objective(self) -> str | None:
        return self.info.objective

    @property
    def name(self) -> str:
        """The method's name for unlearning runs, else the directory name."""
        if self.method and self.method.get("name"):
            return str(self.method["name"])
        return self.path.name

    @property
    def tofu(self) -> TofuMetrics:
        return TofuMetrics.from_dict(self.results.metrics)

    @property
    def sets(self) -> dict[str, dict[str, Any]]:
        return self.tofu.sets

    @property
    def closer_look(self) -> dict[str, Any]:
        return self.tofu.closer_look

    def rows(self, set_name: str) -> list[dict[str, Any]] | None:
        """Per-sample rows of one eval set, or None when the run has none."""
        return self.directory.read_eval_rows(set_name)


def load_run(run_dir: str | os.PathLike[str]) -> Run:
    """Read a run directory; a path that holds no finished run is an :class:`UnlearnError`."""
    directory = RunDirectory(run_dir)
    results = directory.read_results()
    return Run(directory, results, directory.read_config(), directory.read_epochs())


# ------------------------------------------------------------------------------------------ report sections


def _trains_on_text(task: str) -> bool:
    """Whether the task's unlearning data are text corpora, trained on (and counted) as chunks."""
    return report_task(task).data_kind == "muse"


def _header(run: Run) -> list[str]:
    if run.results.limited is not None:
        return [f"**{run.results.notes['limited']['note']}**", "", *_header_table(run)]
    return _header_table(run)


def _header_table(run: Run) -> list[str]:
    info, cfg = run.info, run.config or {}
    rows = [("run directory", f"`{run.path}`"), ("stage", run.stage), ("task", run.task)]
    if run.method:
        rows.append(("method", describe_method(run.method)))
    elif info.train_splits:
        rows.append(("training data", ", ".join(map(str, info.train_splits))))
    split = run.forget_split
    if split:
        n = info.n_forget
        unit = "chunks" if _trains_on_text(run.task) else "questions"
        rows.append(("forget split", f"{split}" + (f" ({n} {unit})" if n else "")))
    model = (cfg.get("model") or {}).get("path")
    if model:
        rows.append(("model", f"`{model}`"))
    if info.optimizer_steps is not None:
        rows.append(("optimizer steps", str(info.optimizer_steps)))
    times = []
    if run.results.seconds is not None:
        times.append(f"{run.results.seconds:.1f} s in all")
    if isinstance(info.train_seconds, (int, float)):
        times.append(f"{info.train_seconds:.1f} s training")
    if times:
        rows.append(("time", ", ".join(times)))
    rows.append(("report written", dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")))
    title = f"# Run report: {run.name}" + (f" ({run.path.name})" if run.name != run.path.name else "")
    return [title, "", md_table(["", ""], [[k, md_cell(v, 1000)] for k, v in rows]), ""]


def describe_method(method: Mapping[str, Any]) -> str:
    """'npo+gd — forget: npo (beta=0.1); retain: gd; weights: forget 1.0, retain 1.0'."""
    def part(block: Mapping[str, Any] | None, key: str) -> str:
        block = dict(block or {})
        head = block.pop(key, "?")
        params = ", ".join(f"{k}={v}" for k, v in block.items())
        return f"{head} ({params})" if params else str(head)

    text = f"{method.get('name', '?')} — forget: {part(method.get('forget'), 'objective')}"
    if method.get("retain"):
        text += f"; retain: {part(method.get('retain'), 'regularizer')}"
    weights = [f"{k} {method[k + '_weight']}" for k in ("forget", "retain") if method.get(k + "_weight") is not None]
    if weights:
        text += "; weights: " + ", ".join(weights)
    return text


def report_task(name: str) -> Task:
    """The task whose report sections a run of ``name`` gets; TOFU's for a task this install does not know (a run
    written by a newer version or a plugin that is not loaded)."""
    try:
        return get_task(name)
    except UnlearnError:
        return get_task("tofu")


def render_report(run: Run, examples: int = 5, wanted_epochs: Sequence[int] = DEFAULT_WEIGHT_EPOCHS) -> str:
    """The markdown of the report: the header, the task's sections (:meth:`Task.report_sections`), the
    lm-evaluation-harness scores and the attacks; draws the figures into the run's plots directory on the way."""
    sections = report_task(run.task).report_sections(run, examples, wanted_epochs)
    extra = harness_section(run) if not run.task.startswith("lm_eval:") else []
    lines = _header(run) + sections + extra + attacks_section(run.path)
    return "\n".join(lines).rstrip() + "\n"


def harness_section(run: Run) -> list[str]:
    """General capability from lm-evaluation-harness (``eval.lm_eval``), when the run has it."""
    results = run.results.metrics.get("lm_eval")
    if not results:
        return []
    from unlearn.tasks.lm_eval.task import format_harness

    return ["## General capability (lm-evaluation-harness)", "",
            "Scored by lm-evaluation-harness itself (its prompts, metrics and seeds); per-sample rows in "
            "`eval/lm_eval_<task>.jsonl`.", "", format_harness(results), ""]


def write_report(run_dir: str | os.PathLike[str], examples: int = 5,
                 weight_epochs: Sequence[int] = DEFAULT_WEIGHT_EPOCHS) -> Path:
    """Write ``run_dir/report.md`` and its figures under ``run_dir/plots/``; return the report's path.

    ``weight_epochs``: epochs of the gradient-weight figure (-1 = the last one). Figures the data does not allow
    are replaced by one line saying why.
    """
    run = load_run(run_dir)
    text = render_report(run, examples, weight_epochs)
    out = run.directory.report_file
    write_text(out, text)
    return out


# ------------------------------------------------------------------------------------------ comparison


def _unique_names(runs: Sequence[Run], names: Sequence[str] | None) -> list[str]:
    if names is not None:
        if len(names) != len(runs):
            raise UnlearnError(f"{len(names)} names for {len(runs)} run directories")
        return list(names)
    plain = [r.name for r in runs]
    return [f"{r.name} ({r.path.name})" if plain.count(r.name) > 1 else r.name for r in runs]


def write_comparison(run_dirs: Sequence[str | os.PathLike[str]], output_path: str | os.PathLike[str] | None = None,
                     names: Sequence[str] | None = None, plots_dir: str | os.PathLike[str] | None = None,
                     examples: int = 3, weight_epochs: Sequence[int] = DEFAULT_WEIGHT_EPOCHS,
                     strict: bool = False) -> str:
    """Markdown comparing runs (one row per run); written atomically to ``output_path`` when given.

    Runs that differ in what produced them (data contents, task version, starting model, toolkit version:
    :mod:`unlearn.reporting.differences`) get a bold warning at the top; ``strict`` refuses them instead, before
    anything is written.

    With ``plots_dir`` the multi-run figures are drawn there (FE vs MU trajectories of all runs; NPO vs SimNPO
    gradient weights when both are present) and linked. ``examples`` > 0 adds the first forget questions with each
    run's generation side by side.
    """
    if not run_dirs:
        raise UnlearnError("compare needs at least one run directory")
    runs = [load_run(d) for d in run_dirs]
    names = [f"{n} ({LIMITED})" if r.results.limited is not None else n
             for n, r in zip(_unique_names(runs, names), runs, strict=True)]
    differences, unchecked = provenance_differences([r.results for r in runs], names)
    if strict:
        refuse_differences(differences)
    tasks = [report_task(r.task) for r in runs]
    # one task's comparison when every run's task compares the same way (the MUSE tasks and tofu_mia share one);
    # else TOFU's, the default task
    shared = {t.report_module for t in tasks}
    task = tasks[0] if len(shared) == 1 else get_task("tofu")
    link_base = Path(output_path).resolve().parent if output_path is not None else None
    body = task.compare_runs(runs, names, Notes(), Path(plots_dir).resolve() if plots_dir is not None else None,
                             link_base, examples, weight_epochs)
    lines = [f"# Comparison of {len(runs)} runs", "", *warning_lines(differences, unchecked), *body]
    text = "\n".join(lines).rstrip() + "\n"
    if output_path is not None:
        write_text(output_path, text)
    return text
