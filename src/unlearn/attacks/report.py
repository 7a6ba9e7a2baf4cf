"""The "Attacks" section of a run's report, from ``RUN_DIR/attacks/*.json``: one table per attack, and the leak@j
curve as a plot."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from unlearn.io import read_json
from unlearn.runs import RunDirectory


def _f(value: Any, digits: int = 3) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float) and value != 0 and abs(value) < 10 ** -digits:
        return f"{value:.2e}"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def leak_figure(r: dict[str, Any], run_dir: Path) -> list[str]:
    """The run's leak@j curve beside greedy decoding, drawn into its plots directory."""
    from unlearn.reporting.plots import plot_leak_curves

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


FORMATTERS = {"leak": format_leak, "paraphrase": format_paraphrase}


def format_attack(record: dict[str, Any]) -> list[str]:
    lines = FORMATTERS[record["attack"]](record)
    return [*lines, f"({record['seconds']:.0f} s; model {record['model']})", ""]


def attacks_section(run_dir: Path) -> list[str]:
    """The report section: every attack recorded in ``run_dir/attacks`` (nothing when there is none)."""
    folder = RunDirectory(run_dir).attacks_dir
    records = [read_json(folder / f"{name}.json") for name in FORMATTERS if (folder / f"{name}.json").is_file()]
    if not records:
        return []
    lines = ["## Attacks", ""]
    for record in records:
        lines += format_attack(record)
        if record["attack"] == "leak":
            lines += leak_figure(record, Path(run_dir))
    return lines
