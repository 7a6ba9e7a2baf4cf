"""Unlearning speed (SimNPO App. G, Fig. A4): KL(unlearned ‖ original) on forget data against the optimizer step,
for GA, NPO and SimNPO, in one plot (docs/formulas.md#divergence).

Each method is an ordinary ``unlearn run`` from ``model.path`` with a :class:`DivergenceProbe` after every step; a
finished run with its ``divergence.jsonl`` is reused.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from unlearn.config import RunConfig
from unlearn.config.parsing import check, setting
from unlearn.io import read_jsonl, write_json, write_text
from unlearn.rendering.tables import fmt_small

PROBE_FILE = "divergence.jsonl"


@dataclass
class DivergenceConfig:
    methods: list[str] = setting(doc="methods compared (SimNPO Fig. A4: GA, NPO, SimNPO, forget objectives alone)",
                                 factory=lambda: ["ga", "npo", "simnpo"])
    rows: int = setting(16, "forget rows the KL is measured on (the first N of the forget split)")
    every: int = setting(1, "measure after every N optimizer steps")

    def __post_init__(self) -> None:
        check(bool(self.methods), "methods", "name at least one method", self.methods)
        check(self.rows >= 1, "rows", "be at least 1", self.rows)
        check(self.every >= 1, "every", "be at least 1", self.every)
        from unlearn.objectives.methods import LossMethod, build_method

        for method in self.methods:
            check(isinstance(build_method(method), LossMethod), "methods", "name loss methods (a weight edit has "
                  "no optimizer steps to probe)", method)


def run_divergence(cfg: RunConfig, scenario: DivergenceConfig, echo=print) -> Path:
    from unlearn.evaluation.divergence import DivergenceProbe
    from unlearn.experiments.plan import RunPlan, plan_unlearning
    from unlearn.experiments.stages import run_stage
    from unlearn.experiments.unlearning import run_unlearning

    out = Path(cfg.output_dir or "runs/divergence")
    curves: dict[str, list[dict[str, Any]]] = {}
    for method in scenario.methods:
        run_cfg = copy.deepcopy(cfg)
        run_cfg.method.name = method
        run_cfg.output_dir = str(out / method.replace("+", "_"))
        plan = plan_unlearning(run_cfg)
        run = plan.run
        probe_file = run.path / PROBE_FILE
        if not probe_file.is_file():
            run.clear()  # a run without its probe log is run again

        def unlearn(plan: RunPlan = plan, path: Path = probe_file, method: str = method, **how: bool) -> None:
            echo(f"{method}: unlearning, KL from the starting model every {scenario.every} step(s)")

            def probe(session: Any) -> DivergenceProbe:
                return DivergenceProbe(session.model, session.parts, session.accelerator.device, path,
                                       scenario.rows, scenario.every)

            # the probe measures from the starting model, so an interrupted run starts over rather than resuming
            run_unlearning(plan, overwrite=True, step_hook=probe)

        run_stage(run, plan.config_text, unlearn)
        curves[method] = read_jsonl(probe_file)
    results = {"rows": scenario.rows, "every": scenario.every, "curves": curves}
    write_json(out / "divergence.json", results)
    write_text(out / "divergence.md", "\n".join(divergence_report(results, out)) + "\n")
    return out


def divergence_report(results: dict[str, Any], out: Path) -> list[str]:
    from unlearn.rendering.plots import plot_metric_curves

    curves = results["curves"]
    path = plot_metric_curves({m: [(r["step"], r["kl"]) for r in rows] for m, rows in curves.items()},
                              out / "plots" / "divergence.png", xlabel="optimizer step",
                              ylabel="KL(unlearned ‖ original), forget answer tokens",
                              title="Divergence from the original model (SimNPO Fig. A4)")
    last = max(rows[-1]["step"] for rows in curves.values())
    marks = sorted({0, last // 4, last // 2, last})
    lines = [f"# Divergence from the original model (SimNPO App. G), on the first {results['rows']} forget rows", "",
             "| method | " + " | ".join(f"step {s}" for s in marks) + " |", "|---|" + "---|" * len(marks)]
    for method, rows in curves.items():
        by_step = {r["step"]: r["kl"] for r in rows}
        lines.append(f"| {method} | " + " | ".join(fmt_small(by_step.get(s)) for s in marks)
                     + " |")
    return [*lines, "", f"![divergence](plots/{path.name})", ""]
