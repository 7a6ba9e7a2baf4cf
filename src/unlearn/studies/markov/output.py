"""The Markov study's outputs: the summary tables (markdown) and the paper's Fig. 5 (PNG)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from unlearn.io import atomic_path
from unlearn.rendering.tables import MISSING
from unlearn.studies.markov.config import METHOD_LABELS, METHODS


def _fmt(stat: dict[str, Any] | None, digits: int = 3) -> str:
    if stat is None or stat.get("mean") is None:
        return "never"
    text = f"{stat['mean']:.{digits}f} ± {stat['std']:.{digits}f}"
    return text


def format_summary(results: dict[str, Any]) -> str:
    """Markdown tables of the key numbers (mean ± std over seeds)."""
    lines = []
    for number, r in results["experiments"].items():
        n = len(r["seeds"])
        source = ", ".join(f"{METHOD_LABELS[m]} β from {src}" for m, src in r["beta_source"].items())
        lines += [f"### Experiment {number}: {r['description']} ({n} seed(s); {source})", "",
                  "| model | β | Forget1 quality | Forget2 quality | retain distance | "
                  "retain dist. when F1 reaches Retrain | retain dist. when F2 reaches Retrain | "
                  "F1−F2 gap at matched retain dist. |",
                  "|---|---|---|---|---|---|---|---|"]
        for name in ("original", "retrain"):
            s = r[name]
            lines.append(f"| {name.capitalize()} | | {_fmt(s['forget1'])} | {_fmt(s['forget2'])} | "
                         f"{_fmt(s['retain'])} | | | |")
        for m in METHODS:
            s, t = r["summary"][m], r["trajectories"][m]
            reach = [f"{_fmt(s[k])} ({s[k]['n']}/{n})"
                     for k in ("retain_at_retrain_forget1", "retain_at_retrain_forget2")]
            gap = s.get("gap_at_matched_retain")
            lines.append(f"| {t['label']} (iteration {len(t['forget1']['mean']) - 1}) | {t['beta']:g} | "
                         f"{_fmt(s['final']['forget1'])} | {_fmt(s['final']['forget2'])} | "
                         f"{_fmt(s['final']['retain'])} | {reach[0]} | {reach[1]} | "
                         f"{_fmt(gap['gap']) if gap else MISSING} |")
        if r.get("grid"):
            for m, g in r["grid"].items():
                ranking = ", ".join(f"β={row['beta']:g}: " + (f"{row['retain_at_retrain_mean_forget']:.3f}"
                                    if row["retain_at_retrain_mean_forget"] is not None
                                    else f"not reached (max {row['max_mean_forget']:.3f})") for row in g["ranking"])
                lines.append(f"\nGrid {METHOD_LABELS[m]}: selected β={g['selected']:g}; retain distance at "
                             f"Retrain's mean forget quality — {ranking}")
        lines.append(f"\nwall time {r['wall_time_s']} s (pretraining {r['timing']['pretrain_s']} s, "
                     f"unlearning + metrics {r['timing']['unlearn_s']} s)\n")
    return "\n".join(lines).rstrip()


COLORS = {"npo": "tab:blue", "simnpo": "tab:red"}


def plot_study(experiments: dict[str, dict[str, Any]], path: str | Path, log_x: bool = False) -> None:
    """The paper's Fig. 5: retain distance (x) vs forget quality (y) along the unlearning path, NPO vs SimNPO, one
    row per experiment, Forget1 and Forget2 panels; seed-mean path (thick; the per-iteration mean of both
    coordinates) and each seed (thin), the original model (iteration 0, ○) and Retrain (★ / ●, mean ± std over
    seeds, with its forget quality as a dotted line). ``log_x`` spreads out the early iterations, where the
    paths cross Retrain's forget quality."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = len(experiments)
    fig, axes = plt.subplots(rows, 2, figsize=(11, 4.4 * rows), squeeze=False)
    for row, (number, r) in enumerate(experiments.items()):
        for col, (key, marker) in enumerate((("forget1", "*"), ("forget2", "o"))):
            ax = axes[row][col]
            for m in METHODS:
                t = r["trajectories"][m]
                for run in t["per_seed"]:
                    ax.plot(run["retain"], run[key], color=COLORS[m], alpha=0.25, lw=0.8)
                ax.plot(t["retain"]["mean"], t[key]["mean"], color=COLORS[m], lw=2.2,
                        label=f"{t['label']} (β={t['beta']:g})")
                ax.plot(t["retain"]["mean"][-1], t[key]["mean"][-1], marker="s", color=COLORS[m], ms=6)
            o, rt = r["original"], r["retrain"]
            ax.plot(o["retain"]["mean"], o[key]["mean"], marker="o", mfc="white", mec="black", ms=8, ls="none",
                    label="original (iteration 0)")
            ax.errorbar(rt["retain"]["mean"], rt[key]["mean"], xerr=rt["retain"]["std"], yerr=rt[key]["std"],
                        marker=marker, color="black", ms=13 if marker == "*" else 8, ls="none", label="Retrain")
            ax.axhline(rt[key]["mean"], color="black", ls=":", lw=1)
            name = "Forget1" if key == "forget1" else f"Forget2 (length {r['lengths']['forget2']})"
            ax.set_title(f"Experiment {number}: {name}", fontsize=11)
            if log_x:
                ax.set_xscale("log")
            ax.set_xlabel("retain distance: KL on retain test data (lower = better)" + (", log scale" if log_x else ""))
            ax.set_ylabel(f"forget quality: KL on {name.split(' ')[0]} test data (higher = more forgotten)",
                          fontsize=9)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8.5, loc="best")
    n_seeds = len(next(iter(experiments.values()))["seeds"])
    fig.suptitle(f"Mixture of Markov chains (SimNPO §5, Fig. 5): unlearning paths, {n_seeds} seed(s) "
                 "(thick = mean, thin = each seed, ■ = last iteration)", fontsize=11)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=130, format="png")
    plt.close(fig)


