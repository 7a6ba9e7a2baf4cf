"""Reading the Markov study's trajectories: where a method reaches Retrain's forget quality, how evenly it forgets
Forget1 and Forget2, seed statistics, and the β grid-search criterion (SimNPO App. H)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from unlearn.studies.markov.config import METRICS


def first_crossing(xs: Sequence[float], ys: Sequence[float], level: float) -> float | None:
    """``ys`` linearly interpolated where ``xs`` first reaches ``level`` (xs[t−1] < level ≤ xs[t]); ``ys[0]`` if
    xs[0] ≥ level; None if never reached."""
    if xs[0] >= level:
        return float(ys[0])
    for t in range(1, len(xs)):
        if xs[t] >= level:
            frac = (level - xs[t - 1]) / (xs[t] - xs[t - 1])
            return float(ys[t - 1] + frac * (ys[t] - ys[t - 1]))
    return None


def forget_gap_at_matched_retain(trajs: dict[str, dict[str, list[float]]], retrain: dict[str, float],
                                 n_levels: int = 10) -> dict[str, dict[str, float]] | None:
    """Evenness (claim 2): at ``n_levels`` retain distances inside the range every method reaches, where each
    method first reaches that retain distance, the gap |Forget1 − Forget2| (raw KL) and the gap of the fractions
    of Retrain's forget quality |F1/F1_R − F2/F2_R|, averaged over the levels. Lower = more even."""
    start = max(t["retain"][0] for t in trajs.values())
    stop = min(max(t["retain"]) for t in trajs.values())
    if not stop > start:
        return None
    levels = np.linspace(start, stop, n_levels + 2)[1:-1]
    out = {}
    for method, t in trajs.items():
        raw, rel = [], []
        for level in levels:
            f1 = first_crossing(t["retain"], t["forget1"], level)
            f2 = first_crossing(t["retain"], t["forget2"], level)
            raw.append(abs(f1 - f2))
            rel.append(abs(f1 / retrain["forget1"] - f2 / retrain["forget2"]))
        out[method] = {"gap": float(np.mean(raw)), "relative_gap": float(np.mean(rel)),
                       "retain_range": [float(start), float(stop)]}
    return out


def seed_summary(traj: dict[str, list[float]], retrain: dict[str, float]) -> dict[str, Any]:
    """Per-seed numbers for one method: where it reaches Retrain's forget quality and how it splits its forgetting."""
    mean_fq = [(a + b) / 2 for a, b in zip(traj["forget1"], traj["forget2"], strict=True)]
    retrain_mean = (retrain["forget1"] + retrain["forget2"]) / 2
    split = {}
    for k in ("forget1", "forget2"):
        v = first_crossing(mean_fq, traj[k], retrain_mean)
        split[k] = None if v is None else v / retrain[k]
    return {
        "final": {k: traj[k][-1] for k in METRICS},
        "retain_at_retrain_forget1": first_crossing(traj["forget1"], traj["retain"], retrain["forget1"]),
        "retain_at_retrain_forget2": first_crossing(traj["forget2"], traj["retain"], retrain["forget2"]),
        "retain_at_retrain_mean_forget": first_crossing(mean_fq, traj["retain"], retrain_mean),
        "fraction_of_retrain_forget_at_retrain_mean_forget": split,
    }


def mean_std(values: Sequence[float | None]) -> dict[str, Any]:
    """Mean and sample standard deviation (ddof = 1; 0 for one value) over the seeds where the value exists, and
    how many those are."""
    present = [v for v in values if v is not None]
    if not present:
        return {"mean": None, "std": None, "n": 0}
    return {"mean": float(np.mean(present)), "std": float(np.std(present, ddof=min(1, len(present) - 1))),
            "n": len(present)}


def _aggregate(per_seed: list[dict[str, Any]]) -> Any:
    """Mean/std of a list of same-shaped nested dicts of numbers (None = missing for that seed)."""
    first = per_seed[0]
    if isinstance(first, dict):
        return {k: _aggregate([d[k] for d in per_seed]) for k in first}
    if isinstance(first, list):
        return _aggregate_lists(per_seed)
    return mean_std(per_seed)


def _aggregate_lists(per_seed: list[list[float]]) -> dict[str, list[float]]:
    arr = np.asarray(per_seed, dtype=float)
    return {"mean": arr.mean(0).tolist(), "std": arr.std(0, ddof=min(1, len(arr) - 1)).tolist()}


def select_beta(mean_trajs: dict[float, dict[str, list[float]]], retrain: dict[str, float]) -> tuple[float, list]:
    """The grid-search criterion (App. H: "optimize the tradeoff between forget quality and retain loss"), applied
    to the seed-mean trajectory of each β: the smallest retain distance at which the mean forget quality
    (Forget1 + Forget2)/2 first reaches Retrain's; β that never reach it within the iterations rank after, by
    their highest mean forget quality. Returns the chosen β and the ranking."""
    target = (retrain["forget1"] + retrain["forget2"]) / 2
    rows = []
    for beta, t in mean_trajs.items():
        mean_fq = [(a + b) / 2 for a, b in zip(t["forget1"], t["forget2"], strict=True)]
        rows.append({"beta": beta, "retain_at_retrain_mean_forget": first_crossing(mean_fq, t["retain"], target),
                     "max_mean_forget": max(mean_fq)})
    rows.sort(key=lambda r: (r["retain_at_retrain_mean_forget"] is None,
                             r["retain_at_retrain_mean_forget"] or 0.0, -r["max_mean_forget"]))
    return rows[0]["beta"], rows

