"""Report sections of the MUSE tasks and of membership inference (``muse_news``, ``muse_books``, ``muse``,
``tofu_mia``): the MUSE table (VerbMem / KnowMem forget / KnowMem retain / PrivLeak, Shi et al. 2024 Table 3 style),
the attack suite's AUCs with their ROC curves, and the per-epoch curves.

Called by :func:`unlearn.reporting.report.render_report` for runs of those tasks; what cannot be drawn is said with
the reason.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from unlearn.evaluation import mia
from unlearn.rendering import plots
from unlearn.rendering.figures import EPOCHS_WHY, PlotResult
from unlearn.rendering.figures import figure_section as _figure
from unlearn.rendering.tables import Notes, fmt, fmt_ci, md_cell, md_table

if TYPE_CHECKING:  # the report's view of a run directory; only its type is needed here
    from unlearn.reporting.report import Run

MUSE_COLUMNS = (("verbmem_f", "VerbMem forget ↓", "verbmem_forget"),
                ("knowmem_f", "KnowMem forget ↓", "knowmem_forget"),
                ("knowmem_r", "KnowMem retain ↑", "knowmem_retain"))
MIA_SETS = {"muse": ("forget", "holdout"), "tofu_mia": ("forget", "holdout")}


def _fmt(value: Any, digits: int = 2) -> str:
    return fmt(value, digits)


def muse_cells(metrics: Mapping[str, Any]) -> list[str]:
    """VerbMem, KnowMem forget, KnowMem retain (×100, with the 95 % bootstrap interval when saved) and PrivLeak."""
    cells = []
    for key, _, set_name in MUSE_COLUMNS:
        value = metrics.get(key)
        ci = ((metrics.get("sets") or {}).get(set_name) or {}).get("ci95", {}).get("rougeL_f1")
        cell = _fmt(value)
        if value is not None and ci:
            cell += f" [{100 * ci[0]:.1f}, {100 * ci[1]:.1f}]"
        cells.append(cell)
    cells.append(_fmt(metrics.get("privleak")))
    return cells


def muse_section(run: Run) -> list[str]:
    m = run.results.metrics
    header = ["VerbMem forget ↓", "KnowMem forget ↓", "KnowMem retain ↑", "PrivLeak (→ 0)"]
    lines = ["## MUSE metrics", "", md_table(header, [muse_cells(m)]), "",
             "VerbMem: ROUGE-L F1 of 128 greedy tokens after each forget-text opening against the first 128 tokens "
             "of its continuation; KnowMem: ROUGE-L F1 of the few-shot answer (32 greedy tokens, cut at a blank line "
             "or \"Question\"); both ×100, mean with the 95 % bootstrap interval. PrivLeak = 100·(AUC − AUC_retrain)"
             "/AUC_retrain of Min-40 % scores, forget vs holdout texts: negative = the forget texts look more "
             "familiar than text never trained on (under-unlearning), positive = less (over-unlearning), 0 = like "
             "the retrained model.", ""]
    if "privleak_auc" in m:
        source = m.get("privleak_auc_retrain_source") or ""
        lines += [f"PrivLeak AUC {_fmt(m.get('privleak_auc'), 4)}; AUC_retrain {_fmt(m.get('privleak_auc_retrain'), 4)}"
                  f" ({source}).", ""]
    return lines + memorization_lines(m.get("sets") or {})


def memorization_lines(sets: Mapping[str, Any]) -> list[str]:
    """Exact Memorization and Extraction Strength per generation set, for runs scored with them."""
    rows = [[name, *(fmt_ci(s[k], (s.get("ci95") or {}).get(k)) for k in ("exact_memorization", "extraction_strength"))]
            for name, s in sets.items() if s.get("exact_memorization") is not None]
    if not rows:
        return []
    return ["### Memorization metrics (OpenUnlearning)", "",
            md_table(["set", "Exact Memorization (EM)", "Extraction Strength (ES)"], rows), "",
            "The reference (the VerbMem continuation, the KnowMem answer) under teacher forcing after its prompt: EM = "
            "share of its tokens that are the greedy next token, ES = the final run of them over its length "
            "(docs/formulas.md#memorization).", ""]


def mia_section(run: Run) -> list[str]:
    attacks = ((run.results.metrics.get("mia") or {}).get("attacks")) or {}
    if not attacks:
        return []
    k = (run.results.metrics.get("mia") or {}).get("k")
    first = next(iter(attacks.values()))
    rows = [[name, _fmt(v.get("auc"), 3)] for name, v in attacks.items()]
    return ["## Membership inference", "",
            f"Members: `{first.get('members')}`, non-members: `{first.get('nonmembers')}`. AUC 0.5 = the attack "
            f"cannot tell them apart (a model never trained on the members); 1.0 = it always can. Min-K% and Min-K%++ "
            f"use k = {k}.", "", md_table(["attack", "AUC"], rows), ""]


def mia_scores(run: Run) -> dict[str, dict[str, np.ndarray]] | None:
    """Per attack, the member and non-member scores from the run's per-sample rows (None when it has none)."""
    if run.task == "tofu_mia":
        split_rows = {"forget": run.rows("forget"), "holdout": run.rows("holdout")}
    else:
        rows = run.rows("privleak")
        if rows is None:
            return None
        split_rows = {s: [r for r in rows if r.get("split") == s] for s in ("forget", "holdout")}
    if any(not r for r in split_rows.values()):
        return None
    attacks = list(split_rows["forget"][0]["scores"])
    return {a: {s: np.array([r["scores"][a] for r in rows]) for s, rows in split_rows.items()} for a in attacks}


def roc_plot(run: Run, out: Path) -> PlotResult:
    scores = mia_scores(run)
    if scores is None:
        return "the run saved no per-sample membership scores"
    curves = {a: mia.roc_curve(s["forget"], s["holdout"]) for a, s in scores.items()}
    aucs = {a: mia.auc(s["forget"], s["holdout"]) for a, s in scores.items()}
    plots.plot_roc_curves(curves, aucs, out, title=f"{run.name}: membership inference, forget vs holdout")
    return out, ("ROC curve of each attack: members = forget texts, non-members = holdout texts (never trained "
                 "on). The diagonal is chance, what a model that never saw the forget set gives.")


def epochs_plot(run: Run, out: Path) -> PlotResult:
    if not run.epochs:
        return EPOCHS_WHY
    series = {label: [(r["epoch"], r.get(key)) for r in run.epochs if r.get(key) is not None]
              for key, label, _ in MUSE_COLUMNS}
    series["PrivLeak"] = [(r["epoch"], r.get("privleak")) for r in run.epochs if r.get("privleak") is not None]
    series = {k: v for k, v in series.items() if v}
    if not series:
        return "the per-epoch rows hold no MUSE metric (eval.generate_every_epoch=false and no PrivLeak)"
    plots.plot_metric_curves(series, out, title=f"{run.name}: MUSE metrics per epoch", xlabel="epoch")
    return out, "Epoch 0 is the model before unlearning. VerbMem and KnowMem ×100; PrivLeak in %."


def examples(run: Run, k: int) -> list[str]:
    lines = []
    for set_name, first in (("verbmem_forget", "prompt"), ("knowmem_forget", "question"),
                            ("knowmem_retain", "question")):
        rows = run.rows(set_name)
        if not rows:
            continue
        truth = "gt" if first == "prompt" else "answer"
        body = [[md_cell(r.get(first)), md_cell(r.get(truth)), md_cell(r.get("generation")),
                 _fmt(r.get("rougeL_f1"), 2)] for r in rows[:k]]
        lines += [f"### {set_name}", "", md_table([first, "truth", "generation", "ROUGE-L F1"], body), ""]
    return lines


def render(run: Run, n_examples: int = 5, weight_epochs: Sequence[int] = ()) -> list[str]:
    """The task sections and figures of a MUSE or membership-inference run (after the common header)."""
    plot_dir = run.directory.plots_dir
    lines = muse_section(run) if run.task != "tofu_mia" else []
    lines += mia_section(run)
    lines += ["## Plots", ""]
    lines += _figure("Membership-inference ROC curves", lambda: roc_plot(run, plot_dir / "mia_roc.png"), run.path)
    if run.task != "tofu_mia":
        lines += _figure("MUSE metrics per epoch", lambda: epochs_plot(run, plot_dir / "muse_epochs.png"), run.path)
        lines += [f"## Example generations (first {n_examples})", "", *examples(run, n_examples)]
    return lines


def comparison_table(runs: Sequence[Run], names: Sequence[str], notes: Notes) -> str:
    """One row per run: the MUSE table, and each attack's AUC."""
    attacks: list[str] = []
    for run in runs:
        for a in ((run.results.metrics.get("mia") or {}).get("attacks") or {}):
            if a not in attacks:
                attacks.append(a)
    header = ["run", "VerbMem forget ↓", "KnowMem forget ↓", "KnowMem retain ↑", "PrivLeak (→ 0)",
              *(f"AUC {a}" for a in attacks)]
    rows = []
    for run, name in zip(runs, names, strict=True):
        m = run.results.metrics
        cells = [md_cell(name), *muse_cells(m)]
        if m.get("privleak") is None and "privleak_auc" in m:
            cells[-1] = notes.missing(str(m.get("privleak_auc_retrain_source")))
        got = (m.get("mia") or {}).get("attacks") or {}
        cells += [_fmt((got.get(a) or {}).get("auc"), 3) for a in attacks]
        rows.append(cells)
    return md_table(header, rows)


def compare(runs: Sequence[Run], names: Sequence[str], notes: Notes, plots_dir: Path | None,
            link_base: Path | None, examples: int, weight_epochs: Sequence[int]) -> list[str]:
    """The comparison's body for MUSE and membership-inference runs: the table and the runs (each run's report
    holds its ROC curves and per-epoch curves)."""
    lines = [comparison_table(runs, names, notes), ""]
    if notes.texts:
        lines += [notes.render(), ""]
    return [*lines, "Runs: " + "; ".join(f"{md_cell(n)} = `{r.path}`" for r, n in zip(runs, names, strict=True)), ""]
