"""Settings of ``unlearn attack NAME RUN_DIR key=value …``: one dataclass for every attack's knobs (each says which
attack reads it). Keys that are not attack settings override the attacked run's own config (``eval.batch_size=8``,
``data.root=…``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields

from unlearn.config.parsing import check, check_choice, load_config, partition_overrides, setting


@dataclass
class AttackConfig:
    k: int = setting(16, "leak: samples drawn per forget question")
    temperature: float = setting(1.0, "leak: sampling temperature T")
    top_p: float = setting(1.0, "leak: nucleus sampling p (1 = off)")
    threshold: float = setting(0.5, "leak: ROUGE-L recall against the answer at which a sample counts as leaked")
    seed: int = setting(0, "seed of the sampling (leak)")
    max_rows: int | None = setting(None, "forget questions attacked: the first N (default: the run's whole forget "
                                         "evaluation set, eval.forget_rows)")
    retain_reference: str | None = setting(None, "paraphrase: the retain model's run directory (with its model) for "
                                                 "Forget Quality on the paraphrased questions; default: the run's "
                                                 "eval.retain_reference when it is such a directory")

    fraction: float = setting(0.2, "relearn: share of the forget split relearned on (SimNPO §6.2: 20 %)")
    subset: str = setting("both", "relearn: `random` (one subset per seed), `shortest` (the shortest answers) or "
                                  "`both` (SimNPO Fig. 6)")
    seeds: int = setting(5, "relearn: random subsets, seeds 0..N−1 (SimNPO §6.2: 5)")
    epochs: int = setting(3, "relearn: fine-tuning epochs (SimNPO §6.2: 3)")
    lr: float = setting(1e-5, "relearn: learning rate (TOFU's fine-tuning lr; the paper gives none)")
    batch_size: int = setting(8, "relearn: batch size (no accumulation)")
    baseline: str | None = setting(None, "relearn: the model the attack is repeated on, a run directory with its "
                                         "model (default: the model the run started from, when it is a run's; `none` "
                                         "= skip)")
    bits: list[int] = setting(doc="quantize: weight bit widths, each evaluated (optimum-quanto: 8, 4, 2; "
                                  "bitsandbytes: 8, 4)", factory=lambda: [8, 4])
    backend: str = setting("quanto", "quantize: the library, `quanto` (optimum-quanto, extra [quantize]) or "
                                     "`bitsandbytes` (LLM.int8 and its default 4-bit type, where it is installed)")

    def __post_init__(self) -> None:
        check(self.k >= 1, "k", "be at least 1", self.k)
        check(self.temperature > 0, "temperature", "be positive", self.temperature)
        check(0 < self.top_p <= 1, "top_p", "be in (0, 1]", self.top_p)
        check(0 <= self.threshold <= 1, "threshold", "be in [0, 1] (a ROUGE-L recall)", self.threshold)
        check(self.seed >= 0, "seed", "be ≥ 0", self.seed)
        check(0 < self.fraction <= 1, "fraction", "be in (0, 1]", self.fraction)
        check_choice(self.subset, ("random", "shortest", "both"), "subset")
        check_choice(self.backend, ("quanto", "bitsandbytes"), "backend")
        for name in ("seeds", "epochs", "batch_size"):
            check(getattr(self, name) >= 1, name, "be at least 1", getattr(self, name))
        check(self.lr > 0, "lr", "be positive", self.lr)
        if self.max_rows is not None:
            check(self.max_rows >= 1, "max_rows", "be at least 1", self.max_rows)


ATTACK_KEYS = frozenset(f.name for f in fields(AttackConfig))


def split_overrides(overrides: Sequence[str]) -> tuple[list[str], list[str]]:
    """(attack settings, overrides of the run's config): a key naming an :class:`AttackConfig` field is an attack
    setting, anything else belongs to the run."""
    return partition_overrides(overrides, ATTACK_KEYS)


def load_attack_config(config: str | None, overrides: Sequence[str]) -> AttackConfig:
    return load_config(AttackConfig, config, overrides)
