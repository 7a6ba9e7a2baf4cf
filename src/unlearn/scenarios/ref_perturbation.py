"""NPO's sensitivity to its reference (SimNPO App. B, Fig. A1; docs/formulas.md#reference-perturbation): the same
method with its cached reference from θ_ref and from (θ_ref + θ_rand)/2, side by side.

Each variant is an ordinary ``unlearn run`` (``method.reference_perturbation``); a finished one is reused.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from unlearn.config import RunConfig
from unlearn.config.parsing import check, check_choice, setting
from unlearn.io import write_json, write_text
from unlearn.rendering.tables import fmt_fq

PLAIN = "plain"


@dataclass
class RefPerturbationConfig:
    method: str = setting("npo+gd", "the method whose reference is perturbed (it must cache reference log-probs: "
                                    "NPO or DPO, any regularizer)")
    kinds: list[str] = setting(doc="perturbations run beside the plain reference: `gaussian` (θ_rand ~ N(0, 1), the "
                                   "paper's main-text wording) and/or `init` (a fresh initialisation, App. B's)",
                               factory=lambda: ["gaussian", "init"])

    def __post_init__(self) -> None:
        check(bool(self.kinds), "kinds", "name at least one perturbation", self.kinds)
        for kind in self.kinds:
            check_choice(kind, ("gaussian", "init"), "kinds")
        from unlearn.objectives.methods import LossMethod, build_method

        method = build_method(self.method)
        check(isinstance(method, LossMethod) and bool(method.cached_reference_parts), "method",
              "cache reference log-probs (NPO or DPO)", self.method)


def run_ref_perturbation(cfg: RunConfig, scenario: RefPerturbationConfig, echo=print) -> Path:
    from unlearn.experiments.plan import plan_unlearning
    from unlearn.experiments.stages import run_planned
    from unlearn.experiments.unlearning import run_unlearning
    from unlearn.tasks.tofu.task import TofuMetrics

    out = Path(cfg.output_dir or "runs/ref_perturbation")
    rows: dict[str, dict[str, Any]] = {}
    for kind in (PLAIN, *scenario.kinds):
        run_cfg = copy.deepcopy(cfg)
        run_cfg.method.name = scenario.method
        run_cfg.method.reference_perturbation = None if kind == PLAIN else kind
        run_cfg.output_dir = str(out / kind)
        plan = plan_unlearning(run_cfg)
        run_planned(plan, run_unlearning, lambda kind=kind: echo(f"{scenario.method}: reference {kind}"))
        rows[kind] = TofuMetrics.from_dict(plan.run.read_results().metrics).headline()
    results = {"method": scenario.method, "rows": rows}
    write_json(out / "ref_perturbation.json", results)
    write_text(out / "ref_perturbation.md", "\n".join(ref_perturbation_table(results)) + "\n")
    return out


_f = fmt_fq


def ref_perturbation_table(results: dict[str, Any]) -> list[str]:
    lines = [f"# {results['method']} with a plain and a perturbed reference (SimNPO App. B)", "",
             "| reference | FQ | MU | forget ROUGE | forget Prob | forget TR |", "|---|---|---|---|---|---|"]
    labels = {PLAIN: "θ_ref", "gaussian": "(θ_ref + θ_rand)/2, θ_rand ~ N(0, 1)",
              "init": "(θ_ref + θ_rand)/2, θ_rand a fresh initialisation"}
    for kind, r in results["rows"].items():
        lines.append(f"| {labels[kind]} | {_f(r['forget_quality'])} | {_f(r['model_utility_9'])} | "
                     f"{_f(r['forget_rouge'])} | {_f(r['forget_prob'])} | {_f(r['forget_truth_ratio'])} |")
    return [*lines, ""]
