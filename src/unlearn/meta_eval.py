"""The meta-evaluation of metrics (Dorna et al., arXiv 2506.12618, §4; docs/formulas.md#meta-evaluation): how
faithfully a metric separates models that know the forget set from models that never saw it, and how robust its
reading of unlearned models is to 4-bit quantization and to relearning, with our own attacks over TOFU runs.

- **Faithfulness**: the ROC AUC of the metric's knowledge score over the two pools of runs (knows = positive).
- **Quantization robustness** per unlearned model: Q = min(1, k_before / k_after) — a metric whose knowledge
  reading rises once the weights are rounded to 4 bits was reading a surface change, not forgetting.
- **Relearning robustness** per unlearned model: R = min(1, Δ_retain / Δ_unlearned), Δ = k_after − k_before of the
  same relearning on the unlearned model and on the retain model — knowledge that comes back faster than a model
  that never saw it can learn it was hidden, not removed.
- **Robustness** = HM(mean Q, mean R).

k is the metric's knowledge score on the forget set: the value itself where higher means the model knows, 1 − value
where lower does (TOFU's forget truth ratio, min(Q, 1/Q)).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from unlearn.errors import ConfigError
from unlearn.evaluation.mia import auc
from unlearn.runs import RunDirectory
from unlearn.tasks.tofu.closer_look import harmonic_mean

KNOWS_WHEN_HIGHER = ("exact_memorization", "extraction_strength", "prob", "paraphrase_prob", "truth_ratio_knowledge",
                     "rouge", "cosine_similarity", "entailment")
KNOWS_WHEN_LOWER = ("truth_ratio",)
"""TOFU's forget-set truth ratio statistic, mean min(Q, 1/Q): 1 when true and false answers are alike."""
METRICS = (*KNOWS_WHEN_HIGHER, *KNOWS_WHEN_LOWER)
DEFAULT_METRICS = ("exact_memorization", "extraction_strength", "prob", "paraphrase_prob", "truth_ratio_knowledge",
                   "truth_ratio", "rouge")
QUANTIZE_BITS = 4
# the paper relearns for one epoch on random subsets of the forget set (not the attack's extra shortest-answers
# subset, which would enter the mean); the attack's other defaults (SimNPO §6.2) stay
RELEARN_DEFAULTS = ("epochs=1", "subset=random")


def relearn_settings(overrides: Sequence[str]) -> list[str]:
    """The relearning attack's settings: :data:`RELEARN_DEFAULTS` with ``--relearn KEY=VALUE`` overrides in their
    place (a key given again replaces the default, so it is listed once)."""
    given = {o.split("=", 1)[0].strip() for o in overrides}
    return [*(d for d in RELEARN_DEFAULTS if d.split("=", 1)[0] not in given), *overrides]


def metric_names(given: Sequence[str] | None) -> tuple[str, ...]:
    """The forget-set metrics asked for (``forget.x`` or ``x``), or one line naming the ones there are."""
    if not given:
        return DEFAULT_METRICS
    out = []
    for name in given:
        bare = name.removeprefix("forget.")
        if bare not in METRICS:
            raise ConfigError(f"unknown metric {name!r} for the meta-evaluation; TOFU's forget-set metrics are "
                              f"{', '.join(METRICS)}")
        out.append(bare)
    return tuple(out)


def knowledge(value: float, metric: str) -> float:
    return 1.0 - value if metric in KNOWS_WHEN_LOWER else value


def faithfulness(knows: Sequence[float], not_knows: Sequence[float]) -> float:
    """AUC of the knowledge scores, models that know as the positive class (0.5: no separation)."""
    return auc(knows, not_knows)


def quantization_robustness(before: float, after: float) -> float:
    """min(1, k_before / k_after): 1 when quantizing does not raise the knowledge reading."""
    if after <= before:
        return 1.0
    return float(before / after)


def relearning_robustness(unlearned_before: float, unlearned_after: float, retain_before: float,
                          retain_after: float) -> float:
    """min(1, Δ_retain / Δ_unlearned): 1 when the unlearned model relearns no faster than the retain model, 0 when it
    relearns and the retain model does not."""
    gained, baseline = unlearned_after - unlearned_before, retain_after - retain_before
    if gained <= max(baseline, 0.0):
        return 1.0
    if baseline <= 0:
        return 0.0
    return float(baseline / gained)


# -- reading runs ------------------------------------------------------------------------------------------------------
@dataclass
class Pools:
    knows: list[RunDirectory]
    not_knows: list[RunDirectory]
    unlearned: list[RunDirectory]
    retain: RunDirectory | None


def _forget_value(metrics: Mapping[str, Any], metric: str, where: str) -> float:
    value = ((metrics.get("sets") or {}).get("forget") or {}).get(metric)
    if value is None:
        raise ConfigError(f"{where}: sets.forget.{metric} is missing (not evaluated, or under an older task version: "
                          "re-evaluate it with `unlearn eval`)")
    return float(value)


def check_pools(pools: Pools, metrics: Sequence[str],
                relearn_overrides: Sequence[str] = ()) -> dict[Path, dict[str, Any]]:
    """Every run finished, a TOFU run on one forget split, with every metric; models where attacks need them —
    before anything is computed. Returns each run's metrics."""
    runs = [*pools.knows, *pools.not_knows, *pools.unlearned, *([pools.retain] if pools.retain else [])]
    if not pools.knows or not pools.not_knows:
        raise ConfigError("faithfulness needs runs of both pools: --knows and --not-knows")
    if pools.unlearned and pools.retain is None:
        raise ConfigError("robustness to relearning compares with the retain model: give --retain RUN_DIR")
    splits, found = {}, {}
    for run in runs:
        results = run.read_results()
        found[run.path] = results.metrics
        if results.task != "tofu":
            raise ConfigError(f"{run.path}: the meta-evaluation runs on TOFU runs (our attacks are TOFU's); this is "
                              f"a {results.task} run")
        for m in metrics:
            _forget_value(results.metrics, m, str(run.path))
        splits[str(run.path)] = run.config_value("data.forget_split")
    if len(set(splits.values())) > 1:
        raise ConfigError("the runs unlearn different forget splits: "
                          + ", ".join(f"{k}: {v}" for k, v in splits.items()))
    if pools.unlearned:
        _check_attacks(pools, relearn_overrides)
    return found


def _check_attacks(pools: Pools, relearn_overrides: Sequence[str] = ()) -> None:
    """Each attack's own checks on each run it will attack (libraries, data, models), before any of them runs."""
    from unlearn.attacks import get_attack
    from unlearn.attacks.config import load_attack_config
    from unlearn.attacks.target import AttackTarget

    for run in [*pools.unlearned, pools.retain]:
        assert run is not None  # check_pools: robustness has a retain run
        if not run.model_dir.is_dir():
            raise ConfigError(f"{run.path} has no saved model ({run.model_dir}); the attacks need it "
                              "(save_model=true)")
    for run in pools.unlearned:
        target = AttackTarget.open(run.path)
        for name, overrides in (("quantize", [f"bits=[{QUANTIZE_BITS}]"]),
                                ("relearn", [*relearn_settings(relearn_overrides), f"baseline={pools.retain.path}"])):
            target.require_tofu(name)
            get_attack(name).check(target, load_attack_config(None, overrides))


def _quantized_forget(run: RunDirectory, metrics: Sequence[str]) -> dict[str, float]:
    from unlearn.io import read_json, read_jsonl
    from unlearn.tasks.tofu.evaluate import set_samples_from_rows
    from unlearn.tasks.tofu.metrics import aggregate_set
    from unlearn.tasks.tofu.sets import FORGET

    summary = run.attacks_dir / "quantize.json"
    rows_file = run.attacks_dir / f"quantize_{QUANTIZE_BITS}bit_forget_rows.jsonl"
    done = summary.is_file() and rows_file.is_file() and str(QUANTIZE_BITS) in read_json(summary).get("quantized", {})
    if not done:
        from unlearn.attacks import run_attack

        run_attack("quantize", run.path, [f"bits=[{QUANTIZE_BITS}]"])
    values = aggregate_set(set_samples_from_rows(read_jsonl(rows_file), FORGET))
    missing = [m for m in metrics if m not in values]
    if missing:
        raise ConfigError(f"{rows_file}: the quantized model's forget rows give no {', '.join(missing)} (rows of an "
                          "older toolkit or a metric's plugin not loaded); delete the quantize attack's files to run "
                          "it again")
    return {m: float(values[m]) for m in metrics}


def _relearned(run: RunDirectory, retain: RunDirectory, metrics: Sequence[str],
               overrides: Sequence[str]) -> dict[str, dict[str, tuple[float, float]]]:
    """(before, after) of each metric for the unlearned model and the retain model, means over the subsets."""
    from unlearn.attacks import run_attack
    from unlearn.io import read_json

    path = run_attack("relearn", run.path, [*relearn_settings(overrides), f"baseline={retain.path}"])
    models = read_json(path)["models"]
    out: dict[str, dict[str, tuple[float, float]]] = {}
    for who, key in (("unlearned", "unlearned"), ("retain", "target")):
        curves = list(models[key]["curves"].values())
        out[who] = {m: (float(np.mean([c[0][m] for c in curves])), float(np.mean([c[-1][m] for c in curves])))
                    for m in metrics}
    return out


def meta_evaluate(pools: Pools, metrics: Sequence[str], relearn_overrides: Sequence[str] = ()) -> dict[str, Any]:
    """Faithfulness over the pools, and robustness over the unlearned runs (attacked here, finished attack runs
    reused), per metric."""
    found = check_pools(pools, metrics, relearn_overrides)
    values = {p: [found[r.path] for r in runs] for p, runs in (("knows", pools.knows), ("not_knows", pools.not_knows))}
    result: dict[str, Any] = {"metrics": {}, "pools": {
        "knows": [str(r.path) for r in pools.knows], "not_knows": [str(r.path) for r in pools.not_knows],
        "unlearned": [str(r.path) for r in pools.unlearned],
        "retain": str(pools.retain.path) if pools.retain else None},
        "settings": {"quantize_bits": QUANTIZE_BITS, "relearn": relearn_settings(relearn_overrides)}}
    per_run: dict[str, dict[str, Any]] = {}
    for run in pools.unlearned if pools.retain is not None else []:
        before = found[run.path]
        quantized = _quantized_forget(run, metrics)
        relearned = _relearned(run, pools.retain, metrics, relearn_overrides)
        per_run[str(run.path)] = {
            m: {"before": _forget_value(before, m, str(run.path)), "quantized": quantized[m],
                "relearned": relearned["unlearned"][m], "retain_relearned": relearned["retain"][m]}
            for m in metrics}
    for m in metrics:
        k = {p: [knowledge(_forget_value(v, m, p), m) for v in vs] for p, vs in values.items()}
        entry: dict[str, Any] = {"faithfulness": faithfulness(k["knows"], k["not_knows"]),
                                 "knows": k["knows"], "not_knows": k["not_knows"]}
        if per_run:
            qs, rs = [], []
            for numbers in per_run.values():
                n = numbers[m]
                qs.append(quantization_robustness(knowledge(n["before"], m), knowledge(n["quantized"], m)))
                (ub, ua), (rb, ra) = n["relearned"], n["retain_relearned"]
                rs.append(relearning_robustness(knowledge(ub, m), knowledge(ua, m), knowledge(rb, m),
                                                knowledge(ra, m)))
            entry.update({"quantization": float(np.mean(qs)), "relearning": float(np.mean(rs)),
                          "robustness": harmonic_mean([float(np.mean(qs)), float(np.mean(rs))]),
                          "per_run": {r: {"quantization": q, "relearning": x} for r, q, x in
                                      zip(per_run, qs, rs, strict=True)}})
        result["metrics"][m] = entry
    result["values"] = per_run
    return result


def meta_eval_table(result: Mapping[str, Any]) -> str:
    pools = result["pools"]
    lines = [f"Meta-evaluation of metrics (OpenUnlearning §4): {len(pools['knows'])} models that know the forget set, "
             f"{len(pools['not_knows'])} that do not; robustness over {len(pools['unlearned'])} unlearned models "
             f"against the retain model {pools['retain']}.", "",
             "| metric | faithfulness (AUC) ↑ | quantization ↑ | relearning ↑ | robustness ↑ |",
             "|---|---|---|---|---|"]
    for m, e in result["metrics"].items():
        def cell(key: str, e: Mapping[str, Any] = e) -> str:
            return f"{e[key]:.3f}" if key in e else "n/a"
        lines.append(f"| {m} | {cell('faithfulness')} | {cell('quantization')} | {cell('relearning')} | "
                     f"{cell('robustness')} |")
    lines += ["", "Faithfulness: AUC over the two pools (0.5 = no separation). Quantization: min(1, k_before/k_after) "
              f"at {QUANTIZE_BITS} bits. Relearning: min(1, Δ_retain/Δ_unlearned) after relearning "
              f"({', '.join(result['settings']['relearn'])}). Robustness: their harmonic mean. k = the metric's "
              "knowledge score (1 − value for the forget truth ratio)."]
    return "\n".join(lines) + "\n"


def pools_from(knows: Sequence[str], not_knows: Sequence[str], unlearned: Sequence[str],
               retain: str | None) -> Pools:
    return Pools([RunDirectory(Path(p)) for p in knows], [RunDirectory(Path(p)) for p in not_knows],
                 [RunDirectory(Path(p)) for p in unlearned], RunDirectory(Path(retain)) if retain else None)
