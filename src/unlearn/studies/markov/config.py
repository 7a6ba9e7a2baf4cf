"""The Markov study's configuration (SimNPO §5, App. H), in the toolkit's one config system.

Keys are set like every other ``unlearn`` config: ``-c FILE`` and ``key=value`` overrides, e.g.
``unlearn study markov --all seeds=5 beta_grid.npo=0.1,0.2,0.5 beta_grid.simnpo=2,4``. The flags ``--experiment``,
``--all``, ``--seeds``, ``--iterations``, ``--beta-grid``, ``--retain-weight``, ``--eval-sequences`` and
``--output-dir`` are shorthands for the keys of the same name.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any

from unlearn.config.parsing import check, setting
from unlearn.data.markov import EPSILON, N_SEQUENCES, TEST_FRACTION, experiment_setup
from unlearn.errors import ConfigError

METHODS = ("npo", "simnpo")
METHOD_LABELS = {"npo": "NPO", "simnpo": "SimNPO"}
METRICS = ("forget1", "forget2", "retain")
"""Per-iteration measurements: forget quality on Forget1 and Forget2, retain distance."""
PAPER_BETAS: dict[int, dict[str, float]] = {1: {"npo": 0.2, "simnpo": 4.0}, 2: {"npo": 1.0, "simnpo": 4.0}}
"""App. H "Choice of hyperparameters": β of the paper's Fig. 5."""
DEFAULT_BETA_GRID: dict[str, list[float]] = {"npo": [0.1, 0.2, 0.5, 1.0, 2.0], "simnpo": [1.0, 2.0, 4.0, 8.0]}
"""The grid ``--beta-grid`` searches when given no values; it contains the paper's choices."""


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


@dataclass
class MarkovStudyConfig:
    """Everything the study depends on; defaults are App. H's."""

    experiments: tuple[int, ...] = setting((1,), "experiments to run: 1 (Forget2 short), 2 (Forget2 not "
                                                  "pretrained), or both")
    seeds: int = setting(3, "seeds 0..N-1, each its own data, pretraining and unlearning order")
    iterations: int = setting(50, "unlearning iterations")
    beta_grid: dict[str, list[float]] | None = setting(None, "β values to grid-search per method "
                                                             "(`beta_grid.npo=0.1,0.2`); a method left out keeps "
                                                             "the paper's β")
    betas: dict[int, dict[str, float]] | None = setting(None, "β per experiment and method instead of the paper's "
                                                              "(`betas.1.npo=0.3`)")
    retain_weight: float = setting(0.0, "> 0: NPO+GD / SimNPO+GD with this weight on a GD retain term (0 = none, "
                                        "the paper)")
    n_retain: int = setting(N_SEQUENCES["retain"], "retain sequences")
    n_forget: int = setting(N_SEQUENCES["forget1"], "sequences per forget chain")
    test_fraction: float = setting(TEST_FRACTION, "share of each chain's sequences held out for testing")
    epsilon: float = setting(EPSILON, "leakage ε of the chains")
    n_layer: int = setting(4, "GPT-2 layers")
    n_head: int = setting(4, "GPT-2 attention heads")
    n_embd: int = setting(128, "GPT-2 width")
    pretrain_epochs: int = setting(5, "pretraining epochs")
    pretrain_batch_size: int = setting(128, "pretraining batch size")
    pretrain_lr: float = setting(5e-4, "pretraining learning rate (AdamW)")
    unlearn_batch_size: int = setting(4, "forget sequences per unlearning iteration")
    unlearn_lr: float = setting(5e-4, "unlearning learning rate (AdamW)")
    weight_decay: float = setting(0.01, "AdamW weight decay on every parameter (torch's default; App. H does not "
                                        "say)")
    eval_sequences: int = setting(500, "test sequences per set scored after every iteration (0 = all)")
    eval_batch_size: int = setting(500, "batch size of the metric and of NPO's reference log-probs")
    output_dir: str = setting("runs/markov", "where JSON, PNG and cached models go")
    cache_models: bool = setting(True, "keep pretrained models under `output_dir/models` and reuse them")
    progress: bool = setting(True, "progress bars")

    def __post_init__(self) -> None:
        check(bool(self.experiments), "experiments", "name at least one experiment (--experiment 1, "
              "--experiment 2 or --all)", self.experiments)
        for number in self.experiments:
            experiment_setup(number)
        check(len(set(self.experiments)) == len(self.experiments), "experiments", "not repeat an experiment",
              list(self.experiments))
        for name in ("seeds", "iterations", "n_layer", "n_head", "n_embd", "pretrain_epochs", "pretrain_batch_size",
                     "unlearn_batch_size", "eval_batch_size"):
            value = getattr(self, name)
            check(isinstance(value, int) and not isinstance(value, bool) and value >= 1, name,
                  "be an integer >= 1", value)
        check(self.n_embd % self.n_head == 0, "n_embd", f"be divisible by n_head ({self.n_head})", self.n_embd)
        check(self.eval_sequences >= 0, "eval_sequences", "be 0 (all) or a positive integer", self.eval_sequences)
        for name in ("pretrain_lr", "unlearn_lr"):
            check(_finite(getattr(self, name)) and getattr(self, name) > 0, name, "be a positive number",
                  getattr(self, name))
        check(_finite(self.weight_decay) and self.weight_decay >= 0, "weight_decay", "be >= 0", self.weight_decay)
        check(_finite(self.retain_weight) and self.retain_weight >= 0, "retain_weight",
              "be >= 0 (0 = no retain term)", self.retain_weight)
        check(_finite(self.epsilon) and 0 < self.epsilon < 1, "epsilon", "be in (0, 1)", self.epsilon)
        check(_finite(self.test_fraction) and 0 < self.test_fraction < 1, "test_fraction", "be in (0, 1)",
              self.test_fraction)
        for name in ("n_retain", "n_forget"):
            n = getattr(self, name)
            check(1 <= round(n * self.test_fraction) < n, name,
                  f"leave a non-empty train and test split at test_fraction={self.test_fraction}", n)
        if self.beta_grid is not None:
            validate_beta_grid(self.beta_grid)
        for number, betas in (self.betas or {}).items():
            validate_beta_grid({m: [b] for m, b in betas.items()})
            check(set(betas) == set(METHODS), f"betas.{number}", f"name {', '.join(METHODS)}", betas)

    def candidate_betas(self, number: int) -> dict[str, list[float]]:
        """The β values to run per method: the grid's where it names the method, else the paper's (or the
        overridden) β."""
        betas = (self.betas or {}).get(number, PAPER_BETAS[number])
        grid = self.beta_grid or {}
        return {m: list(grid[m]) if m in grid else [float(betas[m])] for m in METHODS}


def validate_beta_grid(grid: dict[str, list[float]]) -> None:
    if not isinstance(grid, dict) or not grid:
        raise ConfigError("the β grid is empty")
    unknown = set(grid) - set(METHODS)
    if unknown:
        raise ConfigError(f"unknown method(s) {sorted(unknown)} in the β grid; choose from {', '.join(METHODS)}")
    for method, values in grid.items():
        if not values:
            raise ConfigError(f"the β grid has no values for {method}")
        for v in values:
            if not _finite(v) or v <= 0:
                raise ConfigError(f"β must be a positive number, got {v!r} for {method}")
        if len(set(values)) != len(values):
            raise ConfigError(f"β values repeat for {method}: {values}")


def beta_grid_flag(text: str | None) -> dict[str, list[float]] | None:
    """``--beta-grid`` → the ``beta_grid`` key: no value → :data:`DEFAULT_BETA_GRID`; ``0.1,0.2,1`` → the same
    values for both methods. The old per-method form ``npo=0.1;simnpo=2`` still works, with a note that
    ``beta_grid.npo=0.1 beta_grid.simnpo=2`` is the syntax now."""
    if text is None:
        return None
    text = text.strip()
    if text in ("", "default"):
        return {m: list(v) for m, v in DEFAULT_BETA_GRID.items()}
    if "=" in text:
        grid: dict[str, list[float]] = {}
        for part in filter(None, (p.strip() for p in text.split(";"))):
            name, sep, values = part.partition("=")
            if not sep:
                raise ConfigError(f"bad --beta-grid part {part!r}: write beta_grid.npo=0.1,0.2 beta_grid.simnpo=2,4")
            name = name.strip().lower()
            if name in grid:
                raise ConfigError(f"--beta-grid names {name} twice")
            grid[name] = _floats(values)
        warnings.warn("--beta-grid 'npo=…;simnpo=…' is written beta_grid.npo=… beta_grid.simnpo=… now; the old form "
                      "will stop working", FutureWarning, stacklevel=2)
    else:
        values = _floats(text)
        grid = {m: list(values) for m in METHODS}
    validate_beta_grid(grid)
    return grid


def _floats(text: str) -> list[float]:
    out = []
    for item in filter(None, (s.strip() for s in text.split(","))):
        try:
            out.append(float(item))
        except ValueError:
            raise ConfigError(f"bad β value {item!r} in --beta-grid (expected numbers separated by commas)") from None
    if not out:
        raise ConfigError(f"no β values in {text!r}")
    return out
