"""The papers' figures for one run or several (matplotlib, Agg backend, PNG written atomically).

Every ``plot_*`` function takes plain data (numbers, lists, the rows of ``epochs.jsonl``) and an output path and
returns the path; :mod:`unlearn.evaluation.report` reads run directories and decides what can be drawn.

- :func:`plot_fq_mu_epochs`: Forget Quality (log scale) and Model Utility per epoch.
- :func:`plot_fe_mu_trajectories`: Forget Efficacy vs Model Utility along training (closer-look Fig. 4/5).
- :func:`plot_truth_ratio_histogram`: forget-set truth ratios, unlearned vs retain model (SimNPO Fig. 1b/2).
- :func:`plot_gradient_weights`: per-sample gradient weights vs answer length |y| with the Pearson correlation
  (SimNPO Fig. 3/4); the weights themselves come from :func:`npo_weights` and :func:`simnpo_weights`.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats
from scipy.special import expit

from unlearn.io import atomic_path

DPI = 120
COLORS = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown", "tab:pink", "tab:olive",
          "tab:cyan", "tab:gray")
# What the ES-free aggregates are made of (docs/formulas.md#forget-efficacy): FE from 4 of its 5 forget-set terms,
# MU from 15 of 18 numbers.
FE_WITHOUT_ES_LABEL = "Forget Efficacy (ES unavailable: R, P, TR, CS)"
MU_WITHOUT_ES_LABEL = "Model Utility (ES unavailable: R, P, TR, TE, CS)"
FE_LABEL = "Forget Efficacy (FE)"
MU18_LABEL = "Model Utility (MU-18)"


def _pyplot():
    """pyplot on the non-interactive Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: str | Path) -> Path:
    """Tight layout, write the PNG atomically, free the figure."""
    plt = _pyplot()
    path = Path(path)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=DPI, format="png")
    plt.close(fig)
    return path


def finite_values(values: Sequence[float | None]) -> list[float]:
    return [float(v) for v in values if v is not None and math.isfinite(v)]


# ------------------------------------------------------------------------------------------ gradient weights
def npo_weights(logp: Sequence[float], ref_logp: Sequence[float], beta: float) -> np.ndarray:
    """NPO's per-sample gradient weight (SimNPO Eq. 4, Fig. 3): w_θ = 2π_θ^β / (π_θ^β + π_ref^β).

    With sequence log-likelihoods ``logp`` = log π_θ(y|x) and ``ref_logp`` = log π_ref(y|x) this is
    2·σ(β·(logp − ref_logp)) — the factor in front of ∇ log π_θ(y|x) in ∇ of NPO's loss.
    """
    logp = np.asarray(logp, dtype=np.float64)
    ref = np.asarray(ref_logp, dtype=np.float64)
    return 2.0 * expit(beta * (logp - ref))


def simnpo_weights(logp: Sequence[float], n_tokens: Sequence[int], beta: float, gamma: float = 0.0) -> np.ndarray:
    """SimNPO's per-sample gradient weight (SimNPO Eq. 6, Fig. 3): w'_θ = 2·σ((β/|y|)·log π_θ(y|x) + γ) / |y|.

    It is the factor in front of ∇ log π_θ(y|x) in ∇ of −(2/β)·log σ(−(β/|y|)·log π_θ(y|x) − γ); unlike NPO's it
    needs no reference model and shrinks with the answer length |y| = ``n_tokens``.
    """
    logp = np.asarray(logp, dtype=np.float64)
    n = np.asarray(n_tokens, dtype=np.float64)
    return 2.0 * expit(beta / n * logp + gamma) / n


def pearson_r(x: Sequence[float], y: Sequence[float]) -> float | None:
    """Pearson correlation of ``x`` and ``y`` (scipy.stats.pearsonr); None when undefined (n < 2 or a constant)."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if len(x) < 2 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return None
    return float(stats.pearsonr(x, y).statistic)


@dataclass
class WeightPanel:
    """One scatter of SimNPO Fig. 3: per-sample weights against answer lengths at one epoch."""

    title: str
    ylabel: str
    lengths: np.ndarray
    weights: np.ndarray
    r: float | None = field(default=None)

    def __post_init__(self) -> None:
        self.lengths = np.asarray(self.lengths, dtype=np.float64)
        self.weights = np.asarray(self.weights, dtype=np.float64)
        if self.r is None:
            self.r = pearson_r(self.lengths, self.weights)


def plot_gradient_weights(grid: Sequence[Sequence[WeightPanel]], path: str | Path, title: str) -> Path:
    """SimNPO Fig. 3/4: gradient weight vs answer length |y|, one panel per (weight definition, epoch).

    ``grid`` holds the rows (e.g. NPO's w_θ, SimNPO's w'_θ) of panels (epochs); each panel shows the Pearson r
    between |y| and the weight, and a least-squares line when r is defined.
    """
    plt = _pyplot()
    rows = [list(r) for r in grid if len(r)]
    if not rows:
        raise ValueError("plot_gradient_weights: no panels to draw")
    ncols = max(len(r) for r in rows)
    fig, axes = plt.subplots(len(rows), ncols, figsize=(4.2 * ncols, 3.5 * len(rows)), squeeze=False)
    for i, row in enumerate(rows):
        for j in range(ncols):
            ax = axes[i][j]
            if j >= len(row):
                ax.set_visible(False)
                continue
            p = row[j]
            ax.scatter(p.lengths, p.weights, s=22, alpha=0.75, color=COLORS[i % len(COLORS)], edgecolor="none")
            if p.r is not None:
                slope, intercept = np.polyfit(p.lengths, p.weights, 1)
                xs = np.linspace(p.lengths.min(), p.lengths.max(), 2)
                ax.plot(xs, slope * xs + intercept, color="black", lw=1, ls="--")
            r_text = f"Pearson r = {p.r:.3f}" if p.r is not None else "Pearson r undefined (constant weights)"
            ax.set_title(f"{p.title}\n{r_text}", fontsize=9.5)
            ax.set_xlabel("answer length |y| (tokens)")
            ax.set_ylabel(p.ylabel)
            ax.grid(alpha=0.3)
    fig.suptitle(title, fontsize=11)
    return _save(fig, path)


# ------------------------------------------------------------------------------------------ FQ / MU per epoch
def _epoch_series(rows: Sequence[Mapping[str, Any]], get) -> tuple[list[int], list[float]]:
    xs, ys = [], []
    for r in rows:
        v = get(r)
        if v is not None and math.isfinite(v):
            xs.append(int(r["epoch"]))
            ys.append(float(v))
    return xs, ys


def plot_fq_mu_epochs(rows: Sequence[Mapping[str, Any]], path: str | Path, title: str = "") -> Path:
    """Forget Quality (log y-axis, the 0.05 level dashed) and Model Utility per epoch, from ``epochs.jsonl`` rows.

    The utility panel shows TOFU's MU-9 and the closer-look MU-18 — or, when ES is unavailable, the ES-free
    utility, labelled as such. Epoch 0 is the model before unlearning. A quantity with no value is left out.
    """
    plt = _pyplot()
    fq = _epoch_series(rows, lambda r: r.get("forget_quality"))
    mu_series = [("Model Utility (MU-9, TOFU)", _epoch_series(rows, lambda r: r.get("model_utility_9")), "o-")]
    mu18 = _epoch_series(rows, lambda r: (r.get("closer_look") or {}).get("model_utility_18"))
    if mu18[0]:
        mu_series.append((MU18_LABEL, mu18, "s--"))
    else:
        mu_wo = _epoch_series(rows, lambda r: (r.get("closer_look") or {}).get("model_utility_without_es"))
        if mu_wo[0]:
            mu_series.append((MU_WITHOUT_ES_LABEL, mu_wo, "s--"))
    mu_series = [s for s in mu_series if s[1][0]]
    panels = (["fq"] if fq[0] else []) + (["mu"] if mu_series else [])
    if not panels:
        raise ValueError("plot_fq_mu_epochs: no Forget Quality or Model Utility values in the rows")
    fig, axes = plt.subplots(1, len(panels), figsize=(5.6 * len(panels), 4.2), squeeze=False)
    for ax, panel in zip(axes[0], panels, strict=True):
        if panel == "fq":
            xs, ys = fq
            floor = np.finfo(float).tiny
            ax.semilogy(xs, [max(y, floor) for y in ys], "o-", color="tab:blue", label="Forget Quality")
            ax.axhline(0.05, color="gray", ls="--", lw=1, label="p = 0.05")
            ax.set_ylabel("Forget Quality (KS p-value vs retain, log scale)")
            ax.set_title("Forget Quality per epoch (higher = closer to retain)", fontsize=10)
            lo = min(min(ys), 0.05)
            ax.set_ylim(max(lo / 5, floor), 2.0)
        else:
            top = 0.0
            for k, (label, (xs, ys), style) in enumerate(mu_series):
                ax.plot(xs, ys, style, color=COLORS[k + 1], label=label)
                top = max(top, *ys)
                if len(xs) <= 12:
                    for x, y in zip(xs, ys, strict=True):
                        ax.annotate(f"{y:.3f}", (x, y), textcoords="offset points", xytext=(0, 6 + 10 * k),
                                    ha="center", fontsize=7, color=COLORS[k + 1])
            ax.set_ylim(0, max(0.1, top * 1.25))
            ax.set_ylabel("Model Utility (harmonic mean, higher = better)")
            ax.set_title("Model Utility per epoch", fontsize=10)
        ax.set_xlabel("epoch (0 = before unlearning)")
        epochs = sorted({int(r["epoch"]) for r in rows})
        ax.set_xticks(epochs)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="best")
    if title:
        fig.suptitle(title, fontsize=11)
    return _save(fig, path)


# ------------------------------------------------------------------------------------------ FE vs MU
@dataclass
class Trajectory:
    """One run's (MU, FE) point per evaluated epoch."""

    label: str
    epochs: list[int]
    mu: list[float]
    fe: list[float]


def plot_fe_mu_trajectories(trajectories: Sequence[Trajectory], path: str | Path, without_es: bool = False,
                            finals: Sequence[tuple[str, float, float]] = (), title: str = "",
                            axis_labels: tuple[str, str] | None = None) -> Path:
    """Closer-look Fig. 4/5: Forget Efficacy (y) against Model Utility (x) along training, one line per run.

    Marker size grows with the epoch and each point is labelled ``e<k>``. ``without_es=True`` means the values
    are the ES-free aggregates (FE from R, P, TR, CS; MU from 15 numbers) and the axis labels say so. ``finals``
    are (label, MU, FE) of runs evaluated only at the end (drawn as stars). ``axis_labels`` (x, y) replace the
    TOFU aggregates' names (e.g. the real-world scenario's MU over the neighbor set).
    """
    plt = _pyplot()
    if not trajectories and not finals:
        raise ValueError("plot_fe_mu_trajectories: nothing to draw")
    fig, ax = plt.subplots(figsize=(7.2, 5.4))
    all_x: list[float] = []
    all_y: list[float] = []
    labels: list[tuple[float, float, str, str]] = []
    markers: list[tuple[float, float, float]] = []
    for k, t in enumerate(trajectories):
        color = COLORS[k % len(COLORS)]
        last = max(max(t.epochs), 1)
        sizes = [30 + 120 * e / last for e in t.epochs]
        ax.plot(t.mu, t.fe, "-", color=color, lw=1.4, alpha=0.8)
        ax.scatter(t.mu, t.fe, s=sizes, color=color, edgecolor="black", linewidth=0.5, zorder=3, label=t.label)
        labels += [(x, y, text, color) for x, y, text in _epoch_labels(t)]
        markers += [(x, y, s) for x, y, s in zip(t.mu, t.fe, sizes, strict=True)]
        all_x += t.mu
        all_y += t.fe
    for k, (label, x, y) in enumerate(finals):
        color = COLORS[(len(trajectories) + k) % len(COLORS)]
        ax.scatter([x], [y], marker="*", s=220, color=color, edgecolor="black", linewidth=0.5, zorder=4,
                   label=f"{label} (final model)")
        all_x.append(x)
        all_y.append(y)
        markers.append((x, y, 220))
    for values, setter in ((all_x, ax.set_xlim), (all_y, ax.set_ylim)):
        lo, hi = min(values), max(values)
        pad = max(0.04, 0.12 * (hi - lo))
        setter(max(lo - pad, -0.02), min(hi + pad, 1.02))  # both aggregates lie in [0, 1]
    _place_labels(ax, _merge_shared(labels), markers)
    xlabel, ylabel = axis_labels or (MU_WITHOUT_ES_LABEL if without_es else MU18_LABEL,
                                     FE_WITHOUT_ES_LABEL if without_es else FE_LABEL)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title or "Forget Efficacy vs Model Utility per epoch (marker size grows with epoch)", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8.5, loc="best")
    return _save(fig, path)


def _epoch_labels(t: Trajectory, tol: float = 2e-3) -> list[tuple[float, float, str]]:
    """'e<k>' per point; consecutive epochs at (almost) the same place share one label ('e2,e3')."""
    out: list[tuple[float, float, list[int]]] = []
    for e, x, y in zip(t.epochs, t.mu, t.fe, strict=True):
        if out and abs(out[-1][0] - x) < tol and abs(out[-1][1] - y) < tol:
            out[-1][2].append(e)
        else:
            out.append((x, y, [e]))
    return [(x, y, "e" + ",".join(map(str, es))) for x, y, es in out]


def _merge_shared(labels: Sequence[tuple[float, float, str, str]], tol: float = 2e-3
                  ) -> list[tuple[float, float, str, str]]:
    """One black label for the same epoch of several runs at the same point (e.g. their common starting model)."""
    out: list[tuple[float, float, str, str]] = []
    for x, y, text, color in labels:
        same = next((i for i, (a, b, t, _) in enumerate(out) if t == text and abs(a - x) < tol and abs(b - y) < tol),
                    None)
        if same is None:
            out.append((x, y, text, color))
        else:
            out[same] = (*out[same][:3], "black")
    return out


def _place_labels(ax, labels: Sequence[tuple[float, float, str, str]],
                  markers: Sequence[tuple[float, float, float]] = (), fontsize: float = 7.5) -> None:
    """Annotate points, trying offsets per label so labels cover neither one another nor the ``markers``
    ((x, y, scatter size in pt²)); greedy, first free candidate wins."""
    scale = ax.figure.dpi / 72  # points → figure pixels
    height = fontsize * scale
    placed: list[tuple[float, float, float, float]] = []
    for x, y, size in markers:
        px, py = ax.transData.transform((x, y))
        r = math.sqrt(size) / 2 * scale
        placed.append((px - r, py - r, px + r, py + r))
    for x, y, text, color in labels:
        px, py = ax.transData.transform((x, y))
        width = 0.62 * height * len(text)
        near = 4 + 0.5 * max((b[2] - b[0] for b in placed[: len(markers)] if b[0] <= px <= b[2]
                             and b[1] <= py <= b[3]), default=8)
        candidates = [(dx, dy) for dy in (-height / 2, height / 2 + 1, -1.5 * height - 1, 1.5 * height + 2,
                                          -2.5 * height - 2, 2.5 * height + 3)
                      for dx in (near, -near - width)]
        chosen = candidates[0]
        for dx, dy in candidates:
            box = (px + dx, py + dy, px + dx + width, py + dy + height)
            if not any(box[0] < b[2] and b[0] < box[2] and box[1] < b[3] and b[1] < box[3] for b in placed):
                chosen = (dx, dy)
                break
        dx, dy = chosen
        placed.append((px + dx, py + dy, px + dx + width, py + dy + height))
        ax.annotate(text, (x, y), textcoords="offset pixels", xytext=(dx, dy), fontsize=fontsize, color=color)


# ------------------------------------------------------------------------------------------ truth ratios
def plot_truth_ratio_histogram(q_model: Sequence[float], path: str | Path, q_retain: Sequence[float] | None = None,
                               forget_quality: float | None = None, model_label: str = "unlearned model",
                               retain_label: str = "retain model") -> Path:
    """SimNPO Fig. 1b/2: histogram of the forget-set truth ratios Q (log10 Q on x, shared bins).

    Forget Quality is the KS test between the two histograms' samples; it is shown in the title. Q = 1
    (log10 Q = 0: paraphrased answer as likely as the perturbed ones) is marked.
    """
    plt = _pyplot()
    from matplotlib.ticker import MaxNLocator

    def log10(values: Sequence[float | None]) -> np.ndarray:
        return np.log10(np.asarray(finite_values(values), dtype=np.float64).clip(min=1e-300))

    model = log10(q_model)
    retain = None if q_retain is None else log10(q_retain)
    if len(model) == 0:
        raise ValueError("plot_truth_ratio_histogram: no finite truth ratios")
    both = model if retain is None or len(retain) == 0 else np.concatenate([model, retain])
    n_bins = int(np.clip(np.sqrt(len(both)) * 2, 8, 40))
    lo, hi = float(both.min()), float(both.max())
    if hi - lo < 1e-6:
        lo, hi = lo - 0.05, hi + 0.05
    bins = np.linspace(lo, hi, n_bins + 1)
    fig, ax = plt.subplots(figsize=(7.0, 4.4))
    if retain is not None and len(retain):
        ax.hist(retain, bins=bins, alpha=0.5, color="tab:gray", label=f"{retain_label} (n={len(retain)})")
    ax.hist(model, bins=bins, alpha=0.6, color="tab:blue", label=f"{model_label} (n={len(model)})")
    ax.axvline(0.0, color="black", ls=":", lw=1, label="Q = 1")
    ax.set_xlabel("log10 truth ratio Q (per forget question)")
    ax.set_ylabel("number of forget questions")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    fq = f"Forget Quality (KS p-value) = {forget_quality:.3g}" if forget_quality is not None else \
        "Forget Quality: n/a (no retain reference)"
    models = model_label if retain is None or not len(retain) else f"{model_label} vs {retain_label}"
    ax.set_title(f"Forget-set truth ratios: {models}\n{fq}", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8.5, loc="best")
    return _save(fig, path)


def plot_roc_curves(curves: Mapping[str, tuple[np.ndarray, np.ndarray]], aucs: Mapping[str, float],
                    path: str | Path, title: str = "") -> Path:
    """One ROC curve (false-positive rate, true-positive rate) per membership-inference attack, AUC in the legend,
    the chance diagonal dashed."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.2, 4.8))
    for name, (fpr, tpr) in curves.items():
        ax.plot(fpr, tpr, lw=1.6, label=f"{name} (AUC {aucs[name]:.3f})")
    ax.plot([0, 1], [0, 1], ls="--", color="gray", lw=1, label="chance")
    ax.set_xlabel("false-positive rate (non-members called members)")
    ax.set_ylabel("true-positive rate (members found)")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.01)
    ax.legend(fontsize=8, loc="lower right")
    if title:
        ax.set_title(title, fontsize=10)
    return _save(fig, path)


def plot_metric_curves(series: Mapping[str, Sequence[tuple[float, float]]], path: str | Path, title: str = "",
                       xlabel: str = "epoch", ylabel: str = "value") -> Path:
    """Named (x, y) series on one axis (MUSE metrics per epoch or per unlearning request)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for name, points in series.items():
        xs, ys = zip(*points, strict=True)
        ax.plot(xs, ys, "o-", lw=1.6, label=name)
    ax.axhline(0, color="gray", lw=0.8)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title, fontsize=10)
    return _save(fig, path)


def plot_leak_curves(curves: Mapping[str, Sequence[float]], greedy: Mapping[str, float], path: str | Path,
                     threshold: float, title: str = "") -> Path:
    """leak@j for j = 1..k (fraction of forget questions with a sample among j at ROUGE-L recall ≥ ``threshold``),
    one line per model, greedy decoding's fraction as a dashed line of the same colour."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 4.2))
    for color, (name, curve) in zip(itertools.cycle(COLORS), curves.items()):
        ax.plot(range(1, len(curve) + 1), curve, "o-", color=color, markersize=3, label=f"{name}: sampled")
        if name in greedy:
            ax.axhline(greedy[name], color=color, linestyle="--", linewidth=1, label=f"{name}: greedy")
    ax.set_xlabel("samples per question j")
    ax.set_ylabel(f"questions leaked (ROUGE-L recall ≥ {threshold:g})")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title(title or "leak@j: sampling-based leakage", fontsize=10)
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))  # beside the axes: curves stay visible
    return _save(fig, path)


def plot_relearn_curves(series: Mapping[str, Sequence[tuple[int, float, float | None]]], path: str | Path,
                        ylabel: str = "Forget Quality", log: bool = True, title: str = "") -> Path:
    """Per relearning epoch, one line per (model, subset): (epoch, value, spread or None); a band of ± the spread
    where it is given (random subsets over seeds; SimNPO Fig. 6)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8.4, 4.2))
    for color, (name, points) in zip(itertools.cycle(COLORS), series.items()):
        xs = [p[0] for p in points]
        ys = np.array([p[1] for p in points], dtype=float)
        ax.plot(xs, ys, "o-", color=color, lw=1.6, label=name)
        spread = [p[2] for p in points]
        if all(s is not None for s in spread):
            sd = np.array(spread, dtype=float)
            low = np.maximum(ys - sd, ys * 1e-3) if log else ys - sd
            ax.fill_between(xs, low, ys + sd, color=color, alpha=0.15)
    if log:
        ax.set_yscale("log")
    ax.set_xlabel("relearning epoch")
    ax.set_ylabel(ylabel)
    ax.set_xticks(sorted({p[0] for points in series.values() for p in points}))
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    ax.set_title(title or f"{ylabel} under the relearning attack", fontsize=10)
    return _save(fig, path)


# ------------------------------------------------------------------------------------------ sweeps
def plot_sweep_front(points: Mapping[str, Sequence[tuple[float, float]]], fronts: Mapping[str, Sequence[tuple[float,
                                                                                                             float]]],
                     path: str | Path, xlabel: str, ylabel: str, log_y: bool = False,
                     marks: Mapping[str, tuple[float, float]] | None = None,
                     chosen: Mapping[str, tuple[float, float]] | None = None, title: str = "",
                     invert_y: bool = False) -> Path:
    """A sweep's trade-off: every candidate (utility x, forgetting y), one colour per method, each method's Pareto
    front as a line, the chosen candidates ringed, and named reference models (target, retain) as black markers.
    ``invert_y`` for a lower-is-better forgetting metric, so that up is more forgotten on every front plot."""
    plt = _pyplot()
    if not points:
        raise ValueError("plot_sweep_front: nothing to draw")
    many = len(points) > 8  # the legend goes beside the axes, not over the points
    fig, ax = plt.subplots(figsize=(9.0 if many else 7.2, 5.4))
    for k, (method, xy) in enumerate(points.items()):
        # past the palette, a method keeps a colour already used but gets its own marker and line style
        color, group = COLORS[k % len(COLORS)], k // len(COLORS)
        marker, line = ("o", "s", "^", "D")[group % 4], ("-", "--", ":", "-.")[group % 4]
        ax.scatter([p[0] for p in xy], [p[1] for p in xy], s=22, color=color, alpha=0.55, label=method, marker=marker)
        front = fronts.get(method) or []
        if front:
            ax.plot([p[0] for p in front], [p[1] for p in front], line, color=color, lw=1.6)
        if chosen and method in chosen:
            ax.scatter([chosen[method][0]], [chosen[method][1]], s=150, facecolors="none", edgecolors=color,
                       linewidths=2.0, zorder=4)
    for (label, (x, y)), marker in zip((marks or {}).items(), ("X", "*", "P", "D"), strict=False):
        ax.scatter([x], [y], marker=marker, s=170, color="black", zorder=5, label=label)
    if log_y:
        ax.set_yscale("log")
    if invert_y:
        ax.invert_yaxis()
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title or "Sweep: forgetting vs utility (lines: each method's Pareto front; rings: chosen)",
                 fontsize=10)
    ax.grid(alpha=0.3, which="both")
    if many:
        ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    else:
        ax.legend(fontsize=8, loc="best")
    return _save(fig, path)
