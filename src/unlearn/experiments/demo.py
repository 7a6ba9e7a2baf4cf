"""``unlearn demo [benchmark=NAME]``: the whole product on an embedded benchmark, on a CPU, in minutes — one skeleton
for every benchmark's :class:`~unlearn.tasks.demo.DemoRecipe` (``tasks/<benchmark>/demo.py``):

1. the embedded benchmark and a random-init tiny model with a tokenizer trained on its text;
2. the reference models, fine-tuned in the recipe's order (TOFU: the retain model, then the target; MUSE: the
   retrained model, then the target; WMDP: the target);
3. unlearning from the target with each method, evaluated by the benchmark's task;
4. the recipe's table, printed and written to ``summary.md`` / ``summary.json`` with ``comparison.md``.

Stages whose results exist with the same configuration are reused, so an interrupted demo resumes.
"""

from __future__ import annotations

import shutil
from dataclasses import asdict
from pathlib import Path
from typing import Any

import yaml

from unlearn.errors import UnlearnError
from unlearn.experiments.common import Timer
from unlearn.experiments.finetune import run_finetune
from unlearn.experiments.plan import plan_finetune, plan_unlearning
from unlearn.experiments.stages import run_planned
from unlearn.experiments.unlearning import run_unlearning
from unlearn.io import write_json, write_text
from unlearn.reporting.report import write_comparison
from unlearn.runs import RunDirectory
from unlearn.tasks.demo import DEMOS, DemoRecipe
from unlearn.tasks.multiple_choice.demo import WmdpDemoConfig
from unlearn.tasks.muse.demo import MuseDemoConfig
from unlearn.tasks.tofu.demo import DemoConfig

DEMO_CONFIG = "demo_config.yaml"
DEMO_OWNED = (DEMO_CONFIG, "data", "base_model", "retain", "target", "methods", "plots", "comparison.md",
              "summary.json", "summary.md")
"""Everything a demo writes into its output directory (and all that ``--fresh`` removes), beside its recipe's own
files (:attr:`DemoRecipe.owned`)."""


def check_demo_output(out: Path) -> None:
    """A demo writes only into a new or empty directory, or one that a demo made (it holds ``demo_config.yaml``)."""
    if out.exists() and not out.is_dir():
        raise UnlearnError(f"output_dir {out} is a file, not a directory")
    if out.is_dir() and any(out.iterdir()) and not (out / DEMO_CONFIG).is_file():
        raise UnlearnError(f"output_dir {out} is not empty and holds no demo (no {DEMO_CONFIG}); choose a new "
                           "directory")


def clear_demo_output(out: Path, recipe: DemoRecipe | None = None) -> None:
    """``--fresh``: remove what an earlier demo wrote into ``out`` — only from a directory a demo made, and only its
    own files."""
    check_demo_output(out)
    owned = DEMO_OWNED + (recipe.owned if recipe is not None else tuple(f for r in DEMOS.values() for f in r.owned))
    for name in owned:
        target = out / name
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()


def recipe_for(demo: Any) -> DemoRecipe:
    """The recipe a demo configuration belongs to (its ``benchmark``)."""
    return DEMOS.get_entry(demo.benchmark)


def run_demo(demo: DemoConfig | MuseDemoConfig | WmdpDemoConfig | Any, echo=print) -> Path:
    """Run the demo of ``demo.benchmark`` with the settings ``demo`` (its recipe's ``config_class``)."""
    recipe = recipe_for(demo)
    timer = Timer()
    out = Path(demo.output_dir)
    check_demo_output(out)
    out.mkdir(parents=True, exist_ok=True)
    write_text(out / DEMO_CONFIG, yaml.safe_dump(asdict(demo), sort_keys=False))
    stages = recipe.stages(demo)
    total = len(stages) + 2
    echo(f"[1/{total}] {recipe.data_message} in {out}")
    data_dir, base_dir = recipe.prepare(demo, out)

    trained: dict[str, RunDirectory] = {}
    for number, stage in enumerate(stages, 2):
        run = RunDirectory(out / stage.directory)
        echo(f"[{number}/{total}] {stage.message}")
        reference = trained[stage.reference].path if stage.reference else None
        cfg = recipe.finetune_config(demo, data_dir, base_dir, run.path, stage, reference)
        run_planned(plan_finetune(cfg), run_finetune)
        trained[stage.directory] = run
        if stage.echo_row:
            echo(recipe.progress(stage.label, recipe.row(stage.label, run.read_results())))
    order = [recipe.target] + [s.directory for s in stages if s.directory != recipe.target]
    labels = [next(s.label for s in stages if s.directory == d) for d in order]
    rows = [recipe.row(label, trained[d].read_results()) for d, label in zip(order, labels, strict=True)]

    echo(f"[{total}/{total}] unlearning {recipe.unlearn_message(demo)} with {len(demo.methods)} methods")
    target = trained[recipe.target].model_dir
    reference = trained[recipe.reference].path if recipe.reference else None
    method_runs: dict[str, RunDirectory] = {}
    for method in demo.methods:
        run = RunDirectory(out / "methods" / method.replace("+", "_"))
        method_runs[method] = run
        cfg = recipe.unlearn_config(demo, data_dir, target, run.path, method, reference)
        cfg.cache_dir = cfg.cache_dir or str(out / "cache")  # one target: its epoch-0 evaluation is computed once
        run_planned(plan_unlearning(cfg), run_unlearning)
        rows.append(recipe.row(method, run.read_results()))
        echo(recipe.progress(method, rows[-1]))

    table = recipe.table(rows)
    if recipe.comparison:
        write_comparison([*(trained[d].path for d in order), *(r.path for r in method_runs.values())],
                         output_path=out / "comparison.md", names=recipe.comparison_names(labels, demo.methods),
                         plots_dir=out / "plots" if recipe.comparison_plots else None)
    figures = recipe.figures(method_runs, out)
    write_json(out / "summary.json", {"rows": rows, "total_seconds": timer.seconds, "config": asdict(demo)})
    write_text(out / "summary.md", f"# {recipe.title}\n\n{table}\n\n{recipe.summary_note(timer.seconds, figures)}")
    echo("")
    echo(table)
    echo(f"\nEverything is in {out} ({recipe.contents()}). Total {timer.seconds:.0f} s.")
    return out
