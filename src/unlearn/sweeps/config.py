"""Settings of ``unlearn sweep`` (``sweep.<key>=…``; the grid and the run keys are the other arguments)."""

from __future__ import annotations

import os
from dataclasses import dataclass

from unlearn.config.parsing import check, check_choice, setting
from unlearn.sweeps.slurm import SlurmConfig

DEFAULT_METRICS = {"tofu": ("forget_quality", "model_utility_9"), "real_world": ("forget_efficacy", "model_utility"),
                   "tofu_continual": ("forget_quality", "model_utility_9"),
                   **{task: ("knowmem_f", "knowmem_r") for task in ("muse", "muse_news", "muse_books")}}
"""Task → (forgetting, utility) metric a sweep selects on unless ``sweep.forget_metric`` / ``utility_metric`` say.
MUSE: KnowMem on the forget QA (lower is better) against KnowMem on the retain QA. WMDP has none: its forget set
depends on the data (``sweep.forget_metric=wmdp_bio.accuracy sweep.utility_metric=mmlu.accuracy``)."""


@dataclass
class SweepConfig:
    max_runs: int = setting(200, "more runs than this need --yes (a typo in a grid can mean thousands)")
    jobs: int = setting(1, "runs at a time on this machine (each in its own process when > 1)")
    devices: list[int] = setting(doc="GPU ids to spread runs across, one run per GPU at a time (sets jobs)",
                                 factory=list)
    threads: int | None = setting(None, "torch threads per run (default: the CPU cores divided by jobs, so parallel "
                                        "runs never oversubscribe the cores)")
    forget_metric: str | None = setting(None, "forgetting axis: a run metric or SET.METRIC, ranked in the direction "
                                              "the task declares (default: TOFU `forget_quality`, real_world "
                                              "`forget_efficacy`, MUSE `knowmem_f` (lower is better); WMDP e.g. "
                                              "`wmdp_bio.accuracy`)")
    utility_metric: str | None = setting(None, "utility axis, higher is better (default: TOFU `model_utility_9`, "
                                               "real_world `model_utility`, MUSE `knowmem_r`; e.g. "
                                               "`model_utility_18`, `mmlu.accuracy`)")
    utility_ratio: float = setting(0.9, "the selection rule: best forgetting among candidates with utility ≥ this × "
                                        "the target's (the papers pick by eye; 0.9 is our default)")
    target: str | None = setting(None, "the target model's evaluated run directory, for its utility (default: "
                                       "epoch 0 of the runs' per-epoch evaluation, the model before unlearning)")
    retain: str | None = setting(None, "the retain model's evaluated run directory, marked on the front plot "
                                       "(default: eval.retain_reference when it is a run directory)")
    name: str = setting("sweep", "file stem of the selection's output (`OUT/<name>.json`, `<name>.md`, "
                                 "`plots/<name>_front.png`): rerunning with another name and other metrics re-selects "
                                 "the finished runs without running anything again")
    epochs: bool = setting(True, "every evaluated epoch of a run is a candidate (the papers pick the best epoch); "
                                 "false: only each run's final model")
    launcher: str = setting("local", "where the runs go: `local` (this machine, sweep.jobs at a time) or `slurm` "
                                     "(one SLURM job per run through submitit, sweep.slurm.*; pip install "
                                     "'llm-unlearn[slurm]')")
    slurm: SlurmConfig = setting(doc="the SLURM jobs of sweep.launcher=slurm", factory=SlurmConfig)
    reuse: bool = setting(True, "runs from the same starting model and data share its evaluation (epoch 0) and "
                                "the cached reference log-probs through `OUT/cache` (the runs' cache_dir, unless "
                                "the base config sets one); false: every run computes its own")

    def __post_init__(self) -> None:
        check_choice(self.launcher, ("local", "slurm"), "sweep.launcher")
        check(self.max_runs >= 1, "sweep.max_runs", "be at least 1", self.max_runs)
        check(self.jobs >= 1, "sweep.jobs", "be at least 1", self.jobs)
        check(bool(self.name) and all(c.isalnum() or c in "_-" for c in self.name), "sweep.name",
              "be letters, digits, _ or -", self.name)
        check(0 < self.utility_ratio <= 1.5, "sweep.utility_ratio", "be in (0, 1.5]", self.utility_ratio)
        if self.devices:
            check(len(set(self.devices)) == len(self.devices), "sweep.devices", "name each GPU once", self.devices)
            self.jobs = len(self.devices)
        cores = os.cpu_count() or 1
        if self.threads is None:
            self.threads = max(1, cores // self.jobs)
        check(self.threads >= 1, "sweep.threads", "be at least 1", self.threads)
        if not self.devices:
            check(self.threads * self.jobs <= cores, "sweep.threads",
                  f"times sweep.jobs ({self.jobs}) stay within the {cores} CPU cores (oversubscribed threads were "
                  "measured 6× slower with identical results)", self.threads)
