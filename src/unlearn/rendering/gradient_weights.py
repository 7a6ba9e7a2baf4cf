"""The gradient-weight figure's data (SimNPO Fig. 3/4; docs/formulas.md#gradient-weights): which objectives have a
per-sample gradient weight, with which parameters, along a run's epochs.

A registry of :class:`WeightFormula` — one per forget objective whose gradient is a per-sample weight times
∇log π(y|x) (NPO, SimNPO) — so the report draws every registered weight without naming any method.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from unlearn.config.recipes import default_forget_params
from unlearn.objectives.components import NPO, SimNPO
from unlearn.rendering import plots

DEFAULT_WEIGHT_EPOCHS = (1, 2, -1)  # -1 = the last epoch
GREEK = {"beta": "β", "gamma": "γ"}


@dataclass(frozen=True)
class WeightFormula:
    """A forget objective's per-sample gradient weight as a function of the per-epoch log-likelihoods."""

    objective: str
    label: str  # "NPO"
    symbol: str  # "$w_\\theta$"
    defaults: Mapping[str, float]  # the objective's neutral parameters the weight depends on
    uses_reference: bool  # NPO's weight needs π_ref: the run's epoch 0
    compute: Callable[[Mapping[str, Any], Mapping[str, Any] | None, Mapping[str, float]], np.ndarray]

    @property
    def possessive(self) -> str:
        return f"{self.label}'s"


def _npo(entry: Mapping[str, Any], ref: Mapping[str, Any] | None, p: Mapping[str, float]) -> np.ndarray:
    return plots.npo_weights(entry["forget_logp"], ref["forget_logp"], p["beta"])


def _simnpo(entry: Mapping[str, Any], ref: Mapping[str, Any] | None, p: Mapping[str, float]) -> np.ndarray:
    return plots.simnpo_weights(entry["forget_logp"], entry["forget_tokens"], p["beta"], p["gamma"])


WEIGHT_FORMULAS: dict[str, WeightFormula] = {f.objective: f for f in (
    WeightFormula("npo", "NPO", "$w_\\theta$", {"beta": NPO.Params().beta}, True, _npo),
    WeightFormula("simnpo", "SimNPO", "$w'_\\theta$",
                  {k: v for k, v in dataclasses.asdict(SimNPO.Params()).items()}, False, _simnpo),
)}


def weight_params(method: Mapping[str, Any] | None, forget_split: str | None = None,
                  benchmark: str = "tofu") -> dict[str, dict[str, tuple[float, bool]]]:
    """Per weight formula, its parameters as (value, is_default): the run's own where the run optimised that
    objective, else what ``method.recipe=auto`` gives on ``benchmark`` and ``forget_split`` (TOFU forget10: NPO β 0.1,
    SimNPO β 4.5), else the neutral defaults."""
    forget = (method or {}).get("forget") or {}
    out = {}
    for name, formula in WEIGHT_FORMULAS.items():
        recipe = default_forget_params(benchmark, name, forget_split)
        values = {k: (float(recipe.get(k, v)), True) for k, v in formula.defaults.items()}
        if forget.get("objective") == name:
            values.update({k: (float(forget[k]), False) for k in formula.defaults if forget.get(k) is not None})
        out[name] = values
    return out


def has_logp(entry: Mapping[str, Any]) -> bool:
    logp, n = entry.get("forget_logp"), entry.get("forget_tokens")
    return isinstance(logp, list) and isinstance(n, list) and len(logp) == len(n) > 0


def weight_epochs(entries: Sequence[Mapping[str, Any]], wanted: Sequence[int] = DEFAULT_WEIGHT_EPOCHS) -> list[int]:
    """The epochs (> 0, with saved log-likelihoods) to show, from ``wanted``; -1 means the last one."""
    available = sorted({int(e["epoch"]) for e in entries if int(e["epoch"]) > 0 and has_logp(e)})
    if not available:
        return []
    chosen = {available[-1] if w == -1 else int(w) for w in wanted}
    return sorted(e for e in chosen if e in available)


def weight_panels(entries: Sequence[Mapping[str, Any]], formula: WeightFormula, params: Mapping[str, float],
                  wanted: Sequence[int] = DEFAULT_WEIGHT_EPOCHS, default: bool = False,
                  prefix: str = "") -> list[plots.WeightPanel]:
    """SimNPO Fig. 3 panels along one run, one per chosen epoch (a reference-based weight uses epoch 0 as π_ref)."""
    by_epoch = {int(e["epoch"]): e for e in entries}
    ref = by_epoch.get(0)
    if formula.uses_reference and (ref is None or not has_logp(ref)):
        return []
    shown = ", ".join(f"{GREEK.get(k, k)}={params[k]:g}" for k in formula.defaults)
    source = "default " if default else ""
    panels = []
    for k in weight_epochs(entries, wanted):
        e = by_epoch[k]
        if formula.uses_reference and len(ref["forget_logp"]) != len(e["forget_logp"]):
            continue
        w = formula.compute(e, ref, params)
        panels.append(plots.WeightPanel(f"{prefix}{formula.label} {formula.symbol} ({source}{shown}), epoch {k}",
                                        f"{formula.label} weight {formula.symbol}", e["forget_tokens"], w))
    return panels
