"""Choosing among a sweep's candidates (docs/sweeps.md#selection): the Pareto front of forgetting against utility,
and "the best forgetting subject to utility ≥ x × the target's", with ties where the data cannot tell candidates
apart.

A candidate is one evaluated model: a run's final evaluation, or one epoch of its per-epoch evaluation (the papers
pick the best epoch). Utility is higher-is-better; the forgetting axis (an :class:`Axis`) is higher-is-better (Forget
Quality, Forget Efficacy), lower-is-better (MUSE's KnowMem and VerbMem on the forget set, WMDP's forget accuracy) or
closest to a goal (PrivLeak: 0). Candidates keep the metric's own value; only the ranking is oriented.

Forget Quality is a KS p-value: on n forget rows compared with the retain model's n, the statistic is k/n for an
integer k, so FQ takes one of n + 1 values (:func:`fq_ladder`). Two configurations are tied when their FQ lies on
the same rung, or, when seeds were swept, when their seed means differ by less than the larger seed spread.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import stats


@dataclass(frozen=True)
class Axis:
    """The forgetting axis of a selection: a metric key (run-level, or ``SET.METRIC``) and which way is forgotten."""

    key: str
    lower_is_better: bool = False
    goal: float | None = None  # closest to this value is best (PrivLeak: 0)

    def score(self, value: float) -> float:
        """The value oriented so that higher is more forgotten."""
        if self.goal is not None:
            return -abs(value - self.goal)
        return -value if self.lower_is_better else value

    @property
    def direction(self) -> str:
        if self.goal is not None:
            return f"closest to {self.goal:g} is best"
        return "lower is better" if self.lower_is_better else "higher is better"


HIGHER = Axis("")
"""Orientation only: higher is more forgotten (Forget Quality, Forget Efficacy)."""


@dataclass(frozen=True)
class Candidate:
    run: str
    method: str
    epoch: int | None  # None: the run's final evaluation
    forget: float
    utility: float
    settings: Mapping[str, str] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return self.run + (f"@e{self.epoch}" if self.epoch is not None else "")


def metric_value(metrics: Mapping[str, Any], key: str) -> float | None:
    """A metric from ``metrics.json`` or an ``epochs.jsonl`` row: a run-level one at the top level or in the
    closer-look block (``model_utility_18``, ``forget_efficacy`` of TOFU runs); ``SET.METRIC`` from the set's record
    (``sets.<SET>`` of TOFU runs, ``<SET>`` of multiple-choice runs, whose epoch rows hold each set's accuracy as the
    set's value)."""
    value = metrics.get(key)
    if value is None:
        value = (metrics.get("closer_look") or {}).get(key)
    if value is None and "." in key:
        set_name, metric = key.split(".", 1)
        record = (metrics.get("sets") or {}).get(set_name, metrics.get(set_name))
        if isinstance(record, Mapping):
            value = record.get(metric)
        elif isinstance(record, int | float) and not isinstance(record, bool):
            value = record
    return None if value is None else float(value)


def pareto_front(candidates: Sequence[Candidate], axis: Axis = HIGHER) -> list[Candidate]:
    """The candidates no other candidate beats on both axes (≥ on both, > on one; forgetting as ``axis`` orients
    it), by utility ascending."""
    def beaten(c: Candidate) -> bool:
        f = axis.score(c.forget)
        return any(axis.score(o.forget) >= f and o.utility >= c.utility
                   and (axis.score(o.forget) > f or o.utility > c.utility) for o in candidates)

    front = [c for c in candidates if not beaten(c)]
    return sorted(front, key=lambda c: (c.utility, axis.score(c.forget)))


def fq_ladder(n: int) -> np.ndarray:
    """Every value Forget Quality can take on n forget rows (two samples of n): the two-sided KS p-value of
    D = k/n for k = n, …, 0 (ascending). D = k/n is the statistic of 0..n−1 against the same shifted by k."""
    base = np.arange(n, dtype=float)
    return np.array([stats.ks_2samp(base, base + k).pvalue for k in range(n, -1, -1)])


def rung(value: float, ladder: np.ndarray) -> int:
    """The index of ``value`` on the ladder (its nearest rung)."""
    return int(np.argmin(np.abs(np.log(np.maximum(ladder, 1e-300)) - np.log(max(value, 1e-300)))))


@dataclass
class Choice:
    """The chosen candidate of one method and how it was chosen."""

    method: str
    chosen: Candidate | None
    threshold: float
    eligible: int
    tied_with: list[str] = field(default_factory=list)
    seed_spread: float | None = None
    reason: str = ""


def _config_key(c: Candidate, seed_key: str) -> tuple:
    return (c.method, c.epoch, tuple(sorted((k, v) for k, v in c.settings.items() if k != seed_key)))


@dataclass
class _Configuration:
    """One configuration's candidates (its seeds) and their summary."""

    members: list[Candidate]
    forget: float  # mean over seeds
    utility: float  # mean over seeds
    spread: float  # standard deviation of forgetting over seeds (0 for one seed)

    @classmethod
    def of(cls, members: list[Candidate]) -> _Configuration:
        forget = [c.forget for c in members]
        return cls(members, statistics.fmean(forget), statistics.fmean(c.utility for c in members),
                   statistics.stdev(forget) if len(forget) > 1 else 0.0)


def choose(candidates: Sequence[Candidate], target_utility: float, ratio: float, forget_is_fq: bool = True,
           n_forget: int | None = None, seed_key: str = "train.seed", axis: Axis = HIGHER) -> dict[str, Choice]:
    """Per method: the candidate with the best forgetting (as ``axis`` orients it) among those with utility ≥
    ``ratio`` × ``target_utility``.

    Candidates that differ only in ``seed_key`` are one configuration: it is ranked by its seed mean, and its spread
    (the standard deviation over seeds) widens the tie. Without seeds, FQ values on the same rung of the ladder of
    ``n_forget`` rows are ties. Among tied configurations the higher mean utility wins; a configuration run with
    several seeds is represented by the seed whose forgetting is nearest its mean."""
    threshold = ratio * target_utility
    ladder = fq_ladder(n_forget) if forget_is_fq and n_forget else None
    out: dict[str, Choice] = {}
    for method in dict.fromkeys(c.method for c in candidates):
        groups: dict[tuple, list[Candidate]] = {}
        for c in candidates:
            if c.method == method:
                groups.setdefault(_config_key(c, seed_key), []).append(c)
        configurations = [_Configuration.of(members) for members in groups.values()]
        eligible = [g for g in configurations if g.utility >= threshold]
        if not eligible:
            best_mu = max(g.utility for g in configurations)
            out[method] = Choice(method, None, threshold, 0, reason=f"no configuration reaches utility {threshold:.4g} "
                                                                    f"(best {best_mu:.4g})")
            continue
        best = max(eligible, key=lambda g: axis.score(g.forget))

        def tied(g: _Configuration, best: _Configuration = best) -> bool:
            if g is best:
                return True
            if max(g.spread, best.spread) > 0:
                return axis.score(best.forget) - axis.score(g.forget) < max(g.spread, best.spread)
            if ladder is not None:
                return rung(g.forget, ladder) == rung(best.forget, ladder)
            return g.forget == best.forget

        ties = [g for g in eligible if tied(g)]
        winner = max(ties, key=lambda g: (g.utility, axis.score(g.forget)))
        representative = min(winner.members, key=lambda c: abs(c.forget - winner.forget))
        out[method] = Choice(method, representative, threshold, len(eligible),
                             tied_with=[g.members[0].label for g in ties if g is not winner],
                             seed_spread=winner.spread if len(winner.members) > 1 else None)
    return out
