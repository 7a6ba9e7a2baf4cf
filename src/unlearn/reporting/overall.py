"""OpenUnlearning's overall score (Dorna et al., arXiv 2506.12618, §5 and App. F) from finished runs: the harmonic
mean of a memorization, a privacy and a utility score (docs/formulas.md#overall-score).

It is an optional, named aggregate beside a benchmark's own numbers (TOFU's Forget Quality and Model Utility,
MUSE's table), never in their place. The paper's text leaves several choices open and its authors never released
the computation (their issues #150 and #172); each choice made here is stated in the docs and in every result
(:data:`CHOICES`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from unlearn.errors import ConfigError
from unlearn.runs import RunDirectory, RunResults
from unlearn.tasks.tofu.closer_look import harmonic_mean

PRIVACY_ATTACKS = ("loss", "zlib", "min_k", "min_k_plus_plus")
"""The paper's four membership-inference attacks (LOSS, ZLib, Min-k %, Min-k %++)."""
TOFU_MEMORIZATION = ("extraction_strength", "exact_memorization", "paraphrase_prob", "truth_ratio_knowledge")
MUSE_MEMORIZATION = {"verbmem_forget": ("extraction_strength", "exact_memorization"),
                     "knowmem_forget": ("extraction_strength", "exact_memorization")}
TASKS = ("tofu", "muse", "muse_news", "muse_books")
CHOICES = {
    "memorization": "TOFU: HM(1 − ES, 1 − EM, 1 − Para.Prob, 1 − TR_knowledge) on the forget set; MUSE: HM(1 − ES, "
                    "1 − EM) on verbmem_forget and knowmem_forget",
    "privacy": "HM over LOSS, ZLib, Min-k, Min-k++ of sMIA = clip(1 − |AUC − AUC_retain| / max(AUC_retain, "
               "1 − AUC_retain), 0, 1)",
    "utility": "TOFU: Model Utility (MU-9); MUSE: KnowMem ROUGE-L F1 on the retain QA; the paper's fluency "
               "classifier is not part of it (it cannot be loaded offline)",
    "overall": "HM(memorization, privacy, utility)",
}


def s_mia(auc: float, auc_retain: float) -> float:
    """The privacy transform of one attack: 1 where the AUC equals the retain model's, 0 at the farthest AUC possible
    on that side (0 or 1), linear between. Dividing by the largest deviation the retain AUC allows keeps a run's score
    independent of which other runs (the target's included) are scored with it."""
    span = max(auc_retain, 1.0 - auc_retain)
    return float(min(1.0, max(0.0, 1.0 - abs(auc - auc_retain) / span)))


@dataclass
class ScoredRun:
    """One run's inputs: its results and where its membership-inference AUCs come from."""

    name: str
    results: RunResults
    aucs: dict[str, float] | None
    aucs_from: str | None


def _aucs(results: RunResults) -> dict[str, float] | None:
    attacks = (results.metrics.get("mia") or {}).get("attacks") or {}
    found = {name: float(attacks[name]["auc"]) for name in PRIVACY_ATTACKS if name in attacks}
    return found or None


def load_run(path: str | Path, mia: str | Path | None = None) -> ScoredRun:
    """A finished run and, for TOFU, the ``tofu_mia`` evaluation of its model (``mia``); MUSE runs carry theirs."""
    run = RunDirectory(path)
    results = run.read_results()
    if results.task not in TASKS:
        raise ConfigError(f"{run.path}: the overall score is defined for the tasks {', '.join(TASKS)}, not "
                          f"{results.task!r}")
    aucs = _aucs(results)
    source = str(run.path) if aucs else None
    if mia is not None:
        mia_run = RunDirectory(mia)
        mia_results = mia_run.read_results()
        if mia_results.task != "tofu_mia":
            raise ConfigError(f"--mia {mia_run.path}: a tofu_mia evaluation is needed, this is a {mia_results.task} "
                              "run")
        evaluated, own = mia_run.config_value("model.path"), run.model_dir
        if evaluated is None or Path(str(evaluated)).resolve() != own.resolve():
            raise ConfigError(f"--mia {mia_run.path} evaluated {evaluated!r}, not {run.path}'s model ({own})")
        aucs, source = _aucs(mia_results), str(mia_run.path)
    return ScoredRun(run.path.name, results, aucs, source)


def _value(run: ScoredRun, block: Mapping[str, Any], key: str, where: str) -> float:
    value = block.get(key)
    if value is None:
        raise ConfigError(f"{run.name}: {where}.{key} is missing from its metrics.json (evaluated under an older task "
                          f"version? re-evaluate it with `unlearn eval`)")
    return float(value)


def memorization_score(run: ScoredRun) -> float:
    """One minus each memorization metric, harmonic mean (:data:`CHOICES`)."""
    sets = run.results.metrics.get("sets") or {}
    if run.results.task == "tofu":
        forget = sets.get("forget") or {}
        return harmonic_mean([1.0 - _value(run, forget, k, "sets.forget") for k in TOFU_MEMORIZATION])
    return harmonic_mean([1.0 - _value(run, sets.get(s) or {}, k, f"sets.{s}")
                          for s, keys in MUSE_MEMORIZATION.items() for k in keys])


def utility_score(run: ScoredRun) -> float:
    if run.results.task == "tofu":
        return _value(run, run.results.metrics, "model_utility_9", "metrics")
    return _value(run, (run.results.metrics.get("sets") or {}).get("knowmem_retain") or {}, "rougeL_f1",
                  "sets.knowmem_retain")


def privacy_score(run: ScoredRun, retain: ScoredRun) -> tuple[float, dict[str, float]]:
    """(the harmonic mean of sMIA over the attacks both runs have, each attack's sMIA)."""
    for who in (run, retain):
        if not who.aucs:
            hint = ("give --mia RUN_DIR MIA_DIR, the model's `unlearn eval eval.task=tofu_mia` output"
                    if who.results.task == "tofu" else "evaluate it with privleak in eval.sets")
            raise ConfigError(f"{who.name}: no membership-inference AUCs ({', '.join(PRIVACY_ATTACKS)}); {hint}")
    shared = [a for a in PRIVACY_ATTACKS if a in run.aucs and a in retain.aucs]  # type: ignore[operator]
    if not shared:
        raise ConfigError(f"{run.name} and the retain run {retain.name} share no membership-inference attack")
    per_attack = {a: s_mia(run.aucs[a], retain.aucs[a]) for a in shared}  # type: ignore[index]
    return harmonic_mean(list(per_attack.values())), per_attack


def check_same_task(runs: Sequence[ScoredRun]) -> str:
    """The one task of ``runs`` (the retain run's included), else one line naming each run's."""
    tasks = {r.results.task for r in runs}
    if len(tasks) != 1:
        raise ConfigError("the overall score compares runs of one task; these are of "
                          + ", ".join(f"{r.name}: {r.results.task}" for r in runs))
    return tasks.pop()


def overall_scores(runs: Sequence[ScoredRun], retain: ScoredRun) -> dict[str, Any]:
    """Memorization, privacy, utility and their harmonic mean for each run, and the retain run's own (its privacy is
    1 by construction), with the choices made."""
    task = check_same_task([*runs, retain])
    rows = {}
    for run in [*runs, retain]:
        privacy, per_attack = privacy_score(run, retain)
        memorization, utility = memorization_score(run), utility_score(run)
        rows[run.name] = {"memorization": memorization, "privacy": privacy, "utility": utility,
                          "overall": harmonic_mean([memorization, privacy, utility]), "s_mia": per_attack,
                          "aucs_from": run.aucs_from}
    return {"task": task, "retain": retain.name, "runs": rows, "choices": CHOICES,
            "unavailable": {"fluency": "the paper's gibberish classifier is not available offline; utility is the "
                                       "benchmark's utility alone"}}


def overall_table(scores: Mapping[str, Any]) -> str:
    """The scores as a markdown table, the retain run marked, then the choices."""
    lines = [f"Overall score (OpenUnlearning, arXiv 2506.12618) on {scores['task']}, against the retain run "
             f"{scores['retain']}:", "", "| run | memorization ↑ | privacy ↑ | utility ↑ | overall ↑ |",
             "|---|---|---|---|---|"]
    for name, row in scores["runs"].items():
        label = f"{name} (retain)" if name == scores["retain"] else name
        lines.append(f"| {label} | {row['memorization']:.3f} | {row['privacy']:.3f} | {row['utility']:.3f} | "
                     f"{row['overall']:.3f} |")
    lines += ["", *(f"- {k}: {v}" for k, v in scores["choices"].items()),
              *(f"- {k}: unavailable — {v}" for k, v in scores["unavailable"].items())]
    return "\n".join(lines) + "\n"
