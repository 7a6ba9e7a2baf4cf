"""Recipes: the papers' hyper-parameters per (benchmark, forget split, method), each with its source.

An objective's own defaults are *neutral* (NPO β 0.1, SimNPO β 2.5, forget and retain weight 1); the numbers a
paper tuned for one benchmark live here and are applied only to runs of that benchmark (the run's evaluation
task, ``eval.task``), so a MUSE or WMDP run never inherits TOFU's SimNPO β. ``method.recipe`` chooses:

- ``auto`` (default): the entry's default variant when an entry matches, else the neutral defaults;
- ``none``: the neutral defaults even where a recipe exists;
- a variant name (e.g. ``paper`` for SimNPO's weighting as the paper writes it, ``tofu`` for TOFU's original IDK
  loss): that variant, and an error listing the variants when the name does not exist for this method.

Values set explicitly in the run config (``forget.beta=…``, ``method.forget_weight=…``) always win over the recipe.
The run's ``config.yaml`` holds the resolved values and names the recipe it used; its log says the same.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from fnmatch import fnmatch
from typing import Any

from unlearn.errors import ConfigError

AUTO, NONE = "auto", "none"


@dataclass(frozen=True)
class Variant:
    """One way to set a method up: parameters, weights and where they come from."""

    name: str
    source: str
    forget: Mapping[str, Any] = field(default_factory=dict)
    retain: Mapping[str, Any] = field(default_factory=dict)
    forget_weight: float | None = None
    retain_weight: float | None = None

    def values(self) -> dict[str, Any]:
        """The settings as dotted config keys (for logs and config.yaml)."""
        out = {f"forget.{k}": v for k, v in self.forget.items()}
        out |= {f"retain.{k}": v for k, v in self.retain.items()}
        for key in ("forget_weight", "retain_weight"):
            if getattr(self, key) is not None:
                out[f"method.{key}"] = getattr(self, key)
        return out


@dataclass(frozen=True)
class Recipe:
    """The variants for runs of ``benchmark`` unlearning with ``objective`` (first variant = the default).
    ``benchmark`` is a task name or a pattern (``muse*``: every MUSE task).

    ``regularizers`` limits the entry to methods with one of these regularizers (empty: any), ``splits`` to these
    forget splits (empty: any).
    """

    benchmark: str
    objective: str
    variants: tuple[Variant, ...]
    splits: tuple[str, ...] = ()
    regularizers: tuple[str, ...] = ()

    def matches(self, benchmark: str, objective: str, regularizer: str, split: str | None) -> bool:
        return (fnmatch(benchmark, self.benchmark) and self.objective == objective
                and (not self.regularizers or regularizer in self.regularizers)
                and (not self.splits or split in self.splits))

    def variant(self, name: str) -> Variant:
        for v in self.variants:
            if v.name == name:
                return v
        raise KeyError(name)


SIMNPO_CODE = ("SimNPO reference code, TOFU config (`{split}`): β = {beta}, forget weight {w}, retain weight 1; "
               "β lies in the grid of SimNPO App. I.2")
SIMNPO_PAPER = ("SimNPO eq. 2 and App. I.2: the weight λ ∈ [0.05, 0.25] multiplies the retain term, forget weight 1; "
                "λ = {w}, the value the reference code puts on the forget term instead; β = {beta}")


def _simnpo(split: str, beta: float, weight: float) -> Recipe:
    code = Variant("reference_code", SIMNPO_CODE.format(split=split, beta=beta, w=weight), {"beta": beta},
                   forget_weight=weight, retain_weight=1.0)
    paper = Variant("paper", SIMNPO_PAPER.format(w=weight, beta=beta), {"beta": beta}, forget_weight=1.0,
                    retain_weight=weight)
    return Recipe("tofu", "simnpo", (code, paper), splits=(split,))


RECIPES: tuple[Recipe, ...] = (
    _simnpo("forget05", 2.5, 0.1375),
    _simnpo("forget10", 4.5, 0.125),
    Recipe("tofu", "npo", (Variant("npo_paper", "NPO (Zhang et al., 2024) on TOFU and closer-look App. D: β = 0.1; "
                                   "SimNPO App. I.2 searches [0.05, 0.2]", {"beta": 0.1}),)),
    Recipe("tofu", "me", (Variant("closer_look", "closer-look App. D: α = 0.1 on TOFU (§5.1)", forget_weight=0.1),)),
    Recipe("tofu_continual", "me", (Variant("closer_look", "closer-look App. D: α = 1.0 in continual unlearning "
                                                           "(§5.2)", forget_weight=1.0),)),
    Recipe("real_world", "me", (Variant("closer_look", "closer-look App. D: α = 0.5 on real-world individuals "
                                                       "(§5.3)", forget_weight=0.5),)),
    Recipe("tofu", "idk", (
        Variant("closer_look", "closer-look §3: IDK = M(forget question + IDK answer) on its own (the regularizer, "
                               "if any, is added separately)"),
        Variant("tofu", "TOFU's original `idk` loss (Maini et al., 2024), as the SimNPO paper's IDK baseline: one "
                        "token mean over the forget question + IDK answer and its paired retain sample together",
                {"form": "tofu"}),
    ), regularizers=("none",)),
    Recipe("muse_news", "simnpo", (Variant(
        "reference_code", "SimNPO reference code's MUSE-News script: β = 0.75, γ = 3.0 (outside the paper's γ grid "
        "[0, 2]), λ = 0.1 on the retain term, lr 1e-5, 10 epochs of which its README reports epoch 8; SimNPO "
        "App. I.2 searches β ∈ [0.5, 1.0], λ ∈ [0.05, 0.25]", {"beta": 0.75, "gamma": 3.0}, forget_weight=1.0,
        retain_weight=0.1),)),
    Recipe("muse_books", "simnpo", (Variant(
        "reference_code", "SimNPO reference code's MUSE-Books script: β = 0.7, γ = 0, λ = 0.1 on the retain term, "
        "lr 1e-5, 10 epochs (its README reports epoch 10); SimNPO App. I.2 searches β ∈ [0.5, 1.0], λ ∈ [0.05, 0.25]",
        {"beta": 0.7, "gamma": 0.0}, forget_weight=1.0, retain_weight=0.1),)),
    Recipe("*", "rmu", (Variant("wmdp", "RMU (Li et al., 2024, WMDP): c = 6.5, α = 1200 on the retain term (their "
                                        "Zephyr-7B values; lr 5e-5, batches of 4, 150 batches)",
                                {"steering_coeff": 6.5}, forget_weight=1.0, retain_weight=1200.0),),
           regularizers=("act",)),
    *(Recipe("wmdp*", objective, (Variant(
        "simnpo_paper", f"SimNPO App. I.2, WMDP (Zephyr-7B): λ = 5.0 on the retain term; {label} β "
        "searched in [0.05, 7.5] (the chosen value is not reported, so β keeps the objective's default), lr "
        "searched in [2.5e-6, 5e-6], 125 steps", {}, forget_weight=1.0, retain_weight=5.0),), regularizers=("gd",))
      for objective, label in (("npo", "NPO"), ("simnpo", "SimNPO"))),
    Recipe("muse*", "npo", (Variant("muse", "MUSE (Shi et al., 2024) NPO baseline: β = 0.1, retain weight 1 "
                                            "(10 epochs, lr 1e-5, constant schedule in MUSE's scripts)",
                                    {"beta": 0.1}),)),
    Recipe("muse*", "task_vector", (Variant("muse", "MUSE (Shi et al., 2024) Task Vector baseline: α = 5 (its "
                                                    "scripts' value), fine-tuned on the forget corpus",
                                            {"alpha": 5.0}),)),
    # The baselines of the unlearn_baselines plugin: OpenUnlearning's configs (configs/trainer/*.yaml, read with the
    # search tool; docs/formulas.md#token-weighted), which it applies to TOFU and MUSE alike, so any benchmark.
    Recipe("*", "wga", (Variant("open_unlearning", "WGA (Wang et al., 2025) as OpenUnlearning's configs/trainer/"
                                                   "WGA.yaml: β = 1, forget weight γ = 1, retain weight α = 1 (NLL); "
                                                   "lr 1e-5, 5 epochs", {"beta": 1.0}, forget_weight=1.0,
                                retain_weight=1.0),), regularizers=("gd",)),
    Recipe("*", "satimp", (Variant("open_unlearning", "SatImp (arXiv 2505.11953 §5) as OpenUnlearning's configs/"
                                                      "trainer/SatImp.yaml: β1 = 5, β2 = 1, forget weight γ = 0.1, "
                                                      "retain weight α = 1 (NLL); lr 1e-5, 5 epochs",
                                   {"beta1": 5.0, "beta2": 1.0}, forget_weight=0.1, retain_weight=1.0),),
           regularizers=("gd",)),
    Recipe("*", "undial", (Variant("open_unlearning", "UNDIAL (Dong et al., 2024) as OpenUnlearning's configs/"
                                                      "trainer/UNDIAL.yaml: β = 10, forget weight 1; it sets the "
                                                      "retain weight α = 0, i.e. method=undial (no regularizer); lr "
                                                      "1e-4, 10 epochs", {"beta": 10.0}),)),
    Recipe("tofu", "lmf", (Variant("open_unlearning", "PDU (Entesari et al., 2025) as OpenUnlearning's PDU runs "
                                                      "on TOFU (the configs of its published models): forget weight "
                                                      "γ = 1, λ₀ = α = 100, ε = 0.3, dual step η = 5 per optimizer "
                                                      "step after 5 warm-up epochs",
                                   {}, {"epsilon": 0.3, "dual_init": 100.0, "dual_step": 5.0, "dual_update": "step",
                                        "dual_warmup_epochs": 5}, forget_weight=1.0),), regularizers=("dual",)),
    Recipe("*", "altpo", (Variant("open_unlearning", "AltPO (Mekala et al., 2024): β = 0.1 and retain weight α = 1 "
                                                     "(NLL), the middle of the grid OpenUnlearning's community/methods/"
                                                     "AltPO README suggests (β ∈ {0.05, 0.1, 0.5}, α ∈ {1, 2, 5}); "
                                                     "one greedy alternative per question (its reference code's "
                                                     "augment_k = 1)", {"beta": 0.1}, forget_weight=1.0,
                                  retain_weight=1.0),), regularizers=("gd",)),
    Recipe("*", "ceu", (Variant("paper", "CE-U (arXiv 2503.01224) as OpenUnlearning's CEU trainer: the first "
                                         "answer token left out (skip_first = 1), the forget loss alone",
                                {"skip_first": 1}),)),
)


@dataclass(frozen=True)
class ResolvedRecipe:
    """What ``method.recipe`` selected for one run: the variant (None = neutral defaults) and a sentence saying so."""

    variant: Variant | None
    description: str
    key: str = ""

    @property
    def name(self) -> str:
        return f"{self.key}:{self.variant.name}" if self.variant is not None else NONE

    def describe(self) -> dict[str, Any]:
        if self.variant is None:
            return {"name": NONE, "description": self.description}
        return {"name": self.name, "source": self.variant.source, "values": self.variant.values(),
                "description": self.description}


BENCHMARK_FALLBACK = {"tofu_continual": "tofu", "real_world": "tofu"}
"""A scenario's benchmark name → the benchmark whose recipes apply when it has none of its own (continual TOFU is
TOFU data: NPO's β, SimNPO's values, … carry over; ME's α is its own; closer-look App. D on real-world individuals:
"other configurations are consistent with TOFU dataset")."""


def find_recipe(benchmark: str, objective: str, regularizer: str, split: str | None) -> Recipe | None:
    found = next((r for r in RECIPES if r.matches(benchmark, objective, regularizer, split)), None)
    if found is None and benchmark in BENCHMARK_FALLBACK:
        return find_recipe(BENCHMARK_FALLBACK[benchmark], objective, regularizer, split)
    return found


def resolve_recipe(choice: str, benchmark: str, objective: str, regularizer: str,
                   split: str | None) -> ResolvedRecipe:
    """The recipe a run gets (see the module docstring); raises ConfigError for an unknown variant."""
    method = objective if regularizer == "none" else f"{objective}+{regularizer}"
    where = f"{benchmark} / {split or 'any split'} / {method}"
    recipe = find_recipe(benchmark, objective, regularizer, split)
    if choice == NONE:
        return ResolvedRecipe(None, f"no recipe (method.recipe=none): the objectives' neutral defaults for {where}")
    if recipe is None:
        if choice != AUTO:
            raise ConfigError(f"method.recipe={choice!r}: there is no recipe for {where}; use method.recipe=auto "
                              "or none")
        return ResolvedRecipe(None, f"no recipe for {where}: the objectives' neutral defaults")
    key = f"{benchmark}/{objective}" + (f"/{split}" if recipe.splits else "")
    if choice == AUTO:
        variant = recipe.variants[0]
    else:
        try:
            variant = recipe.variant(choice)
        except KeyError:
            names = ", ".join(v.name for v in recipe.variants)
            raise ConfigError(f"method.recipe={choice!r} is not a variant for {where}; choose auto, none or one of: "
                              f"{names}") from None
    values = ", ".join(f"{k}={v}" for k, v in variant.values().items()) or "no changes to the neutral defaults"
    return ResolvedRecipe(variant, f"{key}:{variant.name} ({values}) — {variant.source}", key)


def default_forget_params(benchmark: str, objective: str, split: str | None) -> dict[str, Any]:
    """The forget parameters ``method.recipe=auto`` gives ``objective`` on (``benchmark``, ``split``) with any
    regularizer (empty when there is no recipe)."""
    for r in RECIPES:
        if fnmatch(benchmark, r.benchmark) and r.objective == objective and (not r.splits or split in r.splits):
            return dict(r.variants[0].forget)
    return {}


def describe_recipes() -> str:
    """Human-readable list of every recipe and its variants (``unlearn methods``)."""
    lines = []
    for r in RECIPES:
        scope = f"{r.benchmark} / {', '.join(r.splits) or 'any split'} / {r.objective}"
        if r.regularizers:
            scope += f" (regularizer: {', '.join(r.regularizers)})"
        lines.append(f"  {scope}")
        for i, v in enumerate(r.variants):
            values = ", ".join(f"{k}={val}" for k, val in v.values().items()) or "—"
            lines.append(f"    {v.name}{' (default)' if i == 0 else ''}: {values} — {v.source}")
    return "\n".join(lines)


RMU_TINY: dict[str, Any] = {"forget": {"steering_coeff": 60.0}, "method": {"retain_weight": 1.0},
                            "train": {"lr": 5e-3}}
"""RMU's c and α (and learning rate) for the WMDP demo's tiny model, applied by ``unlearn demo benchmark=wmdp`` to
RMU only: chosen by the scan in benchmarks/wmdp_demo/NOTES.md. WMDP's own values (c 6.5, α 1200, lr 5e-5) are for
Zephyr-7B and were measured to change nothing on this model; the RMU paper tunes c and α per model too. Not an
``eval.task=wmdp`` recipe: a real model on real WMDP keeps RMU's neutral defaults."""
