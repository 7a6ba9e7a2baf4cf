"""The "Attacks" section of a run's report, from ``RUN_DIR/attacks/*.json``: one table per attack, and the leak@j
curve as a plot."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from unlearn.io import read_json
from unlearn.rendering.tables import MISSING, fmt_small
from unlearn.runs import RunDirectory

RESTORED_SHARE = 0.2
"""Share of the removed forget ROUGE a quantized model must get back for the report to call the knowledge restored."""

_f = fmt_small


def leak_figure(r: dict[str, Any], run_dir: Path) -> list[str]:
    """The run's leak@j curve beside greedy decoding, drawn into its plots directory."""
    from unlearn.rendering.plots import plot_leak_curves

    path = plot_leak_curves({"this run": r["curve"]}, {"this run": r["greedy_leak"]},
                            RunDirectory(run_dir).plots_dir / "leak_curve.png", r["threshold"])
    return [f"![leak@j](plots/{path.name})", "", "leak@j: the fraction of forget questions with a leaking answer "
            "among j samples (unbiased estimator over the k drawn); dashed: greedy decoding.", ""]


def format_leak(r: dict[str, Any]) -> list[str]:
    lines = [f"### leak@k: {r['k']} samples per question at T = {r['temperature']:g} (top-p {r['top_p']:g}, seed "
             f"{r['seed']}), leaked when ROUGE-L recall ≥ {r['threshold']:g}; {r['n']} forget questions", "",
             "| decoding | questions leaked | mean ROUGE-L recall |", "|---|---|---|",
             f"| greedy | {_f(r['greedy_leak'])} | {_f(r['greedy_rouge'])} |",
             f"| best of {r['k']} samples | {_f(r['leak_at_k'])} | {_f(r['mean_best_rouge'])} (one sample: "
             f"{_f(r['mean_sample_rouge'])}) |", ""]
    if r["leak_at_k"] > r["greedy_leak"]:
        lines += [f"Sampling recovers answers greedy decoding hides: {_f(r['leak_at_k'] - r['greedy_leak'])} more of "
                  "the forget questions leak.", ""]
    return lines


def format_paraphrase(r: dict[str, Any]) -> list[str]:
    sets, fq = r["sets"], r.get("forget_quality") or {}
    lines = [f"### Paraphrased questions ({r['n']} forget questions)", "",
             "| questions | ROUGE-L recall | Probability | Truth Ratio | Forget Quality |", "|---|---|---|---|---|"]
    for name in ("original", "paraphrased"):
        s = sets[name]
        lines.append(f"| {name} | {_f(s.get('rouge'))} | {_f(s.get('prob'))} | {_f(s.get('truth_ratio'))} | "
                     f"{_f(fq.get(name))} |")
    lines.append("")
    if r.get("forget_quality_unavailable"):
        lines += [f"Forget Quality: n/a — {r['forget_quality_unavailable']}.", ""]
    return lines


def relearn_series(r: dict[str, Any], key: str = "forget_quality") -> dict[str, list[tuple[int, float, float | None]]]:
    """(epoch, value, spread) per line of the relearning plot: each model's random-subset mean ± sd and its
    shortest-answers run."""
    series: dict[str, list[tuple[int, float, float | None]]] = {}
    for model, m in r["models"].items():
        mean = m.get("random_mean") or []
        if mean and all(e.get(key) is not None for e in mean):
            n = sum(1 for name in m["curves"] if name.startswith("random_"))
            series[f"{model}: random ({n} seeds)"] = [(e["epoch"], e[key], e.get(f"{key}_std")) for e in mean]
        shortest = m["curves"].get("shortest") or []
        if shortest and all(e.get(key) is not None for e in shortest):
            series[f"{model}: shortest"] = [(e["epoch"], e[key], None) for e in shortest]
    return series


def format_relearn(r: dict[str, Any]) -> list[str]:
    sizes = ", ".join(f"{n} rows" for n in sorted(set(r["subset_rows"].values())))
    lines = [f"### Relearning: {r['epochs']} epochs on {r['fraction']:g} of the forget split ({sizes} of "
             f"{r['n_forget']}), lr {r['lr']:g}, batch {r['batch_size']}", ""]
    for key, label in (("forget_quality", "Forget Quality ↓ means the attack restored knowledge"),
                       ("rouge", "forget ROUGE-L recall ↑ means the attack restored knowledge")):
        series = relearn_series(r, key)
        if not series:
            continue
        epochs = sorted({p[0] for points in series.values() for p in points})
        lines += [f"{label}:", "", "| epoch | " + " | ".join(series) + " |", "|---|" + "---|" * len(series)]
        for epoch in epochs:
            cells = []
            for points in series.values():
                hit = [p for p in points if p[0] == epoch]
                if not hit:
                    cells.append(MISSING)
                    continue
                _, value, spread = hit[0]
                cells.append(_f(value) + (f" ± {_f(spread)}" if spread is not None else ""))
            lines.append(f"| {epoch} | " + " | ".join(cells) + " |")
        lines.append("")
    if r.get("baseline_unavailable"):
        lines += [f"No target-model baseline: {r['baseline_unavailable']}.", ""]
    return lines


def relearn_figure(r: dict[str, Any], run_dir: Path) -> list[str]:
    from unlearn.rendering.plots import plot_relearn_curves

    series = relearn_series(r)
    if not series:
        return ["Not drawn: no Forget Quality per epoch (the run has no eval.retain_reference).", ""]
    path = plot_relearn_curves(series, RunDirectory(run_dir).plots_dir / "relearn_fq.png")
    return [f"![relearning](plots/{path.name})", "", "Forget Quality per relearning epoch (log scale; band: ± one "
            "standard deviation over the random subsets), SimNPO Fig. 6's layout.", ""]


def format_quantize(r: dict[str, Any]) -> list[str]:
    lines = [f"### Quantization ({r['library']}, weights only, {', '.join(r['excluded'])} kept in full precision)", "",
             "| model | FQ | MU | forget ROUGE | forget Prob | forget TR | forget ROUGE restored |",
             "|---|---|---|---|---|---|---|"]
    rows = [("starting model", r.get("starting_model")), ("unlearned, full precision", r["full_precision"])]
    rows += [(f"unlearned, {bits}-bit", q) for bits, q in r["quantized"].items()]
    for name, h in rows:
        if h is None:
            continue
        restored = h.get("restored_share")
        lines.append(f"| {name} | {_f(h['forget_quality'])} | {_f(h['model_utility_9'])} | {_f(h['forget_rouge'])} | "
                     f"{_f(h['forget_prob'])} | {_f(h['forget_truth_ratio'])} | "
                     f"{'' if restored is None else f'{restored:.0%}'} |")
    lines.append("")
    for bits, q in r["quantized"].items():
        share = q.get("restored_share")
        if share is not None and share >= RESTORED_SHARE:
            lines += [f"**{bits}-bit quantization restores forgotten knowledge**: forget ROUGE "
                      f"{_f(r['full_precision']['forget_rouge'])} → {_f(q['forget_rouge'])}, {share:.0%} of what "
                      f"unlearning removed (starting model {_f(r['starting_model']['forget_rouge'])}).", ""]
    if r.get("starting_model") is None:
        lines += ["The starting model's metrics were not found (its run directory), so the restored share is missing.",
                  ""]
    return lines


FORMATTERS = {"leak": format_leak, "paraphrase": format_paraphrase, "relearn": format_relearn,
              "quantize": format_quantize}
FIGURES = {"leak": leak_figure, "relearn": relearn_figure}


def format_attack(record: dict[str, Any]) -> list[str]:
    lines = FORMATTERS[record["attack"]](record)
    limited = [f"**{record['limited']['note']}**", ""] if isinstance(record.get("limited"), dict) else []
    return [*limited, *lines, f"({record['seconds']:.0f} s; model {record['model']})", ""]


def attacks_section(run_dir: Path) -> list[str]:
    """The report section: every attack recorded in ``run_dir/attacks`` (nothing when there is none)."""
    folder = RunDirectory(run_dir).attacks_dir
    records = [read_json(folder / f"{name}.json") for name in FORMATTERS if (folder / f"{name}.json").is_file()]
    if not records:
        return []
    lines = ["## Attacks", ""]
    for record in records:
        lines += format_attack(record)
        if record["attack"] in FIGURES:
            lines += FIGURES[record["attack"]](record, Path(run_dir))
    return lines
