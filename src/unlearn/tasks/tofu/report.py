"""TOFU's report sections (the ``tofu`` task's): the TOFU table (Maini et al., Table 2 style, with 95 % bootstrap
intervals), the closer-look table (TE, CS, ES, FE, MU-18), the per-run figures, example generations (closer-look
Tables 13/14), and the comparison of several runs (``unlearn compare``).

What cannot be drawn or computed is said, with the reason, never replaced by a different number.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from unlearn.errors import UnlearnError
from unlearn.rendering import plots
from unlearn.rendering.figures import EPOCHS_WHY, PlotResult, figure_section
from unlearn.rendering.gradient_weights import WEIGHT_FORMULAS, has_logp, weight_panels, weight_params
from unlearn.rendering.tables import MISSING, Notes, fmt, fmt_ci, fmt_fq, md_cell, md_table
from unlearn.runs import RunDirectory
from unlearn.tasks.tofu.closer_look import (
    CLOSER_LOOK_METRICS,
    FORGET_EFFICACY_TERMS,
    forget_efficacy,
    model_utility_closer_look,
)
from unlearn.tasks.tofu.sets import TOFU_SETS, UTILITY_SETS

if TYPE_CHECKING:  # the report's view of a run directory; only its type is needed here
    from unlearn.reporting.report import Run

_figure = figure_section


METRIC_NAMES = {"rouge": "ROUGE", "prob": "Prob", "truth_ratio": "TR", "token_entropy": "TE",
                "cosine_similarity": "CS", "entailment": "ES"}


def closer_look_point(entry: Mapping[str, Any], without_es: bool) -> tuple[float | None, float | None]:
    """(FE, MU) of one evaluation (a run's aggregates or one per-epoch row).

    ``without_es=False``: the full Forget Efficacy and MU-18 (None where missing). ``without_es=True``: the
    ES-free aggregates (FE from ROUGE, Prob, TR, CS; MU from 15 numbers), recomputed from the per-set means when
    the file does not carry them (e.g. a run that does have ES, drawn next to one that does not).
    """
    cl = entry.get("closer_look") or {}
    if not without_es:
        return cl.get("forget_efficacy"), cl.get("model_utility_18")
    sets = entry.get("sets") or {}
    fe = cl.get("forget_efficacy_without_es")
    mu = cl.get("model_utility_without_es")
    if fe is None:
        try:
            fe = forget_efficacy(sets["forget"], [t for t in FORGET_EFFICACY_TERMS if t != "entailment"])
        except KeyError:
            fe = None
    if mu is None:
        try:
            mu = model_utility_closer_look(sets, [m for m in CLOSER_LOOK_METRICS if m != "entailment"])
        except KeyError:
            mu = None
    return fe, mu


def fe_mu_variant(entries: Sequence[Mapping[str, Any]]) -> bool | None:
    """Which FE/MU pair all ``entries`` share: False = full FE & MU-18, True = ES-free, None = neither."""
    if not entries:
        return None
    for without_es in (False, True):
        if all(None not in closer_look_point(e, without_es) for e in entries):
            return without_es
    return None


def zero_terms(sets: Mapping[str, Mapping[str, Any]], metrics: Sequence[str]) -> list[str]:
    """The numbers of a harmonic-mean utility that are 0 (any one of them makes the utility 0)."""
    return [f"{s} {METRIC_NAMES.get(m, m)}" for s in UTILITY_SETS for m in metrics
            if isinstance((sets.get(s) or {}).get(m), (int, float)) and sets[s][m] <= 0]


def _fq_mu_plot(run: Run, out: Path) -> PlotResult:
    if not run.epochs:
        return EPOCHS_WHY
    has = [any(r.get(k) is not None for r in run.epochs) for k in ("forget_quality", "model_utility_9")]
    if not any(has):
        return f"{RunDirectory.EPOCHS} has neither Forget Quality (needs eval.retain_reference) nor Model Utility"
    plots.plot_fq_mu_epochs(run.epochs, out, title=f"{run.name}: Forget Quality and Model Utility per epoch")
    caption = ("Epoch 0 is the model before any update. Forget Quality is the KS-test p-value between this model's "
               "and the retain model's forget-set truth ratios (log scale; higher = more like never trained on "
               "the forget set).")
    if not has[0]:
        caption += " No Forget Quality: the run had no retain reference (eval.retain_reference)."
    return out, caption


def _trajectory(label: str, entries: Sequence[Mapping[str, Any]], without_es: bool) -> plots.Trajectory:
    points = [closer_look_point(e, without_es) for e in entries]
    return plots.Trajectory(label, [int(e["epoch"]) for e in entries], [p[1] for p in points],
                            [p[0] for p in points])


def _fe_mu_caption(without_es: bool) -> str:
    if without_es:
        return ("The Entailment Score is unavailable, so both axes are the ES-free aggregates: Forget Efficacy from "
                "ROUGE, Prob, TR and CS only (4 of its 5 terms) and Model Utility from 15 of the 18 numbers. These "
                "are **not** FE and MU-18.")
    return "Forget Efficacy and the 18-number Model Utility (closer-look §2.2)."


def _fe_mu_plot(run: Run, out: Path) -> PlotResult:
    if not run.epochs:
        return EPOCHS_WHY
    without_es = fe_mu_variant(run.epochs)
    if without_es is None:
        return ("Forget Efficacy and Model Utility need generations on all four sets (ROUGE, CS) in every "
                f"{RunDirectory.EPOCHS} row; this run has none (eval.generate=false?)")
    plots.plot_fe_mu_trajectories([_trajectory(run.name, run.epochs, without_es)], out, without_es=without_es,
                                  title=f"{run.name}: Forget Efficacy vs Model Utility per epoch")
    return out, _fe_mu_caption(without_es) + " Marker size grows with the epoch (e0 = before unlearning)."


def _truth_ratio_plot(run: Run, out: Path) -> PlotResult:
    from unlearn.tasks.tofu.evaluate import RetainReference

    rows = run.rows("forget")
    if not rows:
        return "this run has no per-sample rows of the forget set"
    q = [r.get("truth_ratio") for r in rows]
    if not plots.finite_values(q):
        return "the forget set's per-sample rows have no truth ratios"
    reference = run.tofu.forget_quality_reference
    q_retain = None
    caption = ("Per-question truth ratio Q = p(paraphrased answer) / geometric mean p(perturbed answers), log10 "
               "scale. Forget Quality is the KS test between the two histograms.")
    if reference:
        try:
            q_retain = RetainReference.load(reference).truth_ratios.tolist()
        except (UnlearnError, OSError, KeyError, ValueError) as err:
            return f"the retain reference {reference} could not be read ({err})"
    else:
        caption = ("This model's per-question forget-set truth ratios Q (log10 scale). No retain reference in this "
                   "run (eval.retain_reference), so the retain model's histogram is missing.")
    label = run.name if run.stage == "unlearn" else f"{run.name} model"
    plots.plot_truth_ratio_histogram(q, out, q_retain=q_retain, forget_quality=run.tofu.forget_quality,
                                     model_label=label)
    return out, caption


def _weights_plot(run: Run, out: Path, wanted: Sequence[int]) -> PlotResult:
    if not run.epochs:
        return EPOCHS_WHY
    if run.stage != "unlearn":
        return f"gradient weights describe an unlearning objective; this is a {run.stage} run"
    if not any(has_logp(e) for e in run.epochs):
        return f"{RunDirectory.EPOCHS} has no forget_logp / forget_tokens"
    params = weight_params(run.method, run.forget_split, run.task)
    grid = {name: weight_panels(run.epochs, formula, {k: v[0] for k, v in params[name].items()}, wanted=wanted,
                                default=params[name]["beta"][1]) for name, formula in WEIGHT_FORMULAS.items()}
    if not any(grid.values()):
        return f"{RunDirectory.EPOCHS} has no evaluated epoch after the start with saved log-likelihoods"
    plots.plot_gradient_weights(list(grid.values()), out, f"{run.name}: per-sample gradient weights vs answer "
                                                          "length (SimNPO Fig. 3 style)")
    own = WEIGHT_FORMULAS.get(run.objective or "")
    caption = ("Weight of each forget sample's ∇log π(y|x) in the forget-loss gradient, at this run's parameters per "
               f"epoch (log-likelihoods from {RunDirectory.EPOCHS}; π_ref = epoch 0): "
               "NPO w_θ = 2σ(β(log π − log π_ref)), SimNPO w'_θ = 2σ((β/|y|) log π + γ)/|y|. "
               "r = Pearson correlation with |y|.")
    caption += (f" This run optimised {own.possessive} objective; the other weight is shown for comparison." if own
                else f" This run's objective is {run.objective or 'unknown'}; the weights use the recipe's β for this "
                     "task and split (else the neutral default).")
    missing = [WEIGHT_FORMULAS[n].label for n, panels in grid.items()
               if not panels and WEIGHT_FORMULAS[n].uses_reference]
    for label in missing:
        caption += f" {label}'s weight needs the epoch-0 log-likelihoods (missing)."
    return out, caption


def _set_names(sets: Mapping[str, Any]) -> list[str]:
    return [s for s in TOFU_SETS if s in sets] + [s for s in sets if s not in TOFU_SETS]


def tofu_section(run: Run) -> list[str]:
    """TOFU's table: ROUGE-L recall, Probability, Truth Ratio per set with 95 % CIs; MU-9 and FQ."""
    sets, notes = run.sets, Notes()
    rows = []
    for name in _set_names(sets):
        m, ci = sets[name], sets[name].get("ci95") or {}
        cells = [name]
        for key in ("rouge", "prob", "truth_ratio"):
            cells.append(fmt_ci(m[key], ci.get(key)) if m.get(key) is not None else
                         notes.missing("no ROUGE: the run saved no generations (eval.generate=false)"))
        cells.append(str(m.get("n", MISSING)))
        rows.append(cells)
    lines = ["## TOFU metrics", ""]
    if not rows:
        return [*lines, "The run's results have no per-set metrics.", ""]
    lines += [md_table(["set", "ROUGE-L recall", "Probability", "Truth Ratio", "n"], rows), ""]
    lines.append("Mean over the set's questions with its 95 % bootstrap interval. Truth Ratio is TOFU's statistic: "
                 "mean min(Q, 1/Q) on the forget set, mean max(0, 1 − 1/Q) on the others.")
    lines.append("")
    mu9, fq = run.tofu.model_utility_9, run.tofu.forget_quality
    mu_cell = fmt(mu9) if mu9 is not None else notes.missing(
        "MU-9 needs ROUGE, Prob and TR on the retain, real_authors and world_facts sets")
    if mu9 == 0:
        zeros = zero_terms(sets, ("rouge", "prob", "truth_ratio"))
        if zeros:
            mu_cell += " " + notes.mark("MU-9 is a harmonic mean, 0 when one of its numbers is 0: " + ", ".join(
                f"{z} = 0" for z in zeros))
    fq_cell = fmt_fq(fq) if fq is not None else notes.missing(
        "no retain reference (eval.retain_reference): Forget Quality compares with the retain model")
    lines += [md_table(["aggregate", "value"], [["Model Utility (MU-9)", mu_cell],
                                                ["Forget Quality (FQ, KS p-value vs retain)", fq_cell]]), ""]
    if notes.texts:
        lines += [notes.render(), ""]
    return lines


def _unavailable_reason(run: Run, abbr: str) -> str:
    reason = run.closer_look.get("unavailable", {}).get(abbr)
    return f"{abbr} unavailable: {reason}" if reason else f"{abbr} unavailable: not in the run's results"


def closer_look_section(run: Run) -> list[str]:
    """The closer-look table: TE, CS, ES per set (CIs), then FE and MU-18 — or their ES-free variants, labelled."""
    sets, notes, cl = run.sets, Notes(), run.closer_look
    rows = []
    for name in _set_names(sets):
        m, ci = sets[name], sets[name].get("ci95") or {}
        cells = [name]
        for key, abbr in (("token_entropy", "TE"), ("cosine_similarity", "CS"), ("entailment", "ES")):
            if key == "token_entropy" and name == "forget":
                cells.append("— " + notes.mark("TE is measured on the retain-type sets only (closer-look §2.2)"))
            elif m.get(key) is not None:
                cells.append(fmt_ci(m[key], ci.get(key)))
            else:
                cells.append("unavailable " + notes.mark(_unavailable_reason(run, abbr)))
        rows.append(cells)
    lines = ["## Closer-look metrics", ""]
    if rows:
        lines += [md_table(["set", "Token Entropy (TE)", "Cosine Similarity (CS)", "Entailment Score (ES)"], rows),
                  ""]
    reasons = "; ".join(f"{k} unavailable: {v}" for k, v in (cl.get("unavailable") or {}).items()) or \
        "not computed (no generations?)"
    agg = []
    fe, mu18 = cl.get("forget_efficacy"), cl.get("model_utility_18")
    agg.append(["Forget Efficacy (FE)", fmt(fe) if fe is not None else "unavailable " + notes.mark(reasons)])
    mu_cell = fmt(mu18) if mu18 is not None else "unavailable " + notes.mark(reasons)
    if mu18 == 0:
        zeros = zero_terms(sets, CLOSER_LOOK_METRICS)
        mu_cell += " " + notes.mark("MU-18 is 0 because one of its numbers is 0: " + ", ".join(zeros)) if zeros else ""
    agg.append(["Model Utility (MU-18)", mu_cell])
    fe_wo, mu_wo = cl.get("forget_efficacy_without_es"), cl.get("model_utility_without_es")
    if fe is None and fe_wo is not None:
        agg.append(["FE without ES (ES unavailable: from R, P, TR, CS only; not the full FE)", fmt(fe_wo)])
    if mu18 is None and mu_wo is not None:
        cell = fmt(mu_wo)
        if mu_wo == 0:
            zeros = zero_terms(sets, [m for m in CLOSER_LOOK_METRICS if m != "entailment"])
            cell += " " + notes.mark("a harmonic mean is 0 when one of its numbers is 0: " + ", ".join(
                f"{z} = 0" for z in zeros)) if zeros else ""
        agg.append(["MU without ES (ES unavailable: 15 of the 18 numbers; not MU-18)", cell])
    lines += [md_table(["aggregate", "value"], agg), ""]
    lines.append("FE = 1 − mean(forget ROUGE, Prob, 1 − TR, CS, ES) (higher = more forgotten); MU-18 = harmonic mean "
                 "of ROUGE, Prob, TR, TE, CS, ES on retain, real_authors and world_facts.")
    lines.append("")
    if notes.texts:
        lines += [notes.render(), ""]
    return lines


def examples_table(rows: Sequence[Mapping[str, Any]] | None, k: int) -> str:
    """Closer-look Tables 13/14: question, ground truth and generation of the first ``k`` rows."""
    if rows is None:
        return "No per-sample file for this set."
    if not any(r.get("generation") is not None for r in rows):
        return "No generations saved (eval.generate=false)."
    body = [[str(r.get("index", i)), md_cell(r.get("question")), md_cell(r.get("answer")),
             md_cell(r.get("generation")), fmt(r.get("rougeL_recall"), 2)] for i, r in enumerate(rows[:k])]
    return md_table(["#", "question", "ground truth", "generation", "ROUGE-L"], body)


def comparison_table(runs: Sequence[Run], names: Sequence[str], notes: Notes) -> str:
    """One row per run: FQ, MU-9, MU-18, FE, forget and retain ROUGE / Prob / TR, retain TE / CS."""
    references = {_resolved(r.tofu.forget_quality_reference) for r in runs if r.tofu.forget_quality_reference}
    show_wo = any(r.closer_look.get("forget_efficacy") is None and r.closer_look.get("forget_efficacy_without_es")
                  is not None for r in runs) or any(r.closer_look.get("model_utility_18") is None and
                                                    r.closer_look.get("model_utility_without_es") is not None
                                                    for r in runs)
    header = ["run", "FQ", "MU-9", "MU-18", "FE"]
    if show_wo:
        header += ["FE without ES", "MU without ES"]
    header += ["forget ROUGE", "forget Prob", "forget TR", "retain ROUGE", "retain Prob", "retain TR", "retain TE",
               "retain CS"]
    rows = []
    for run, name in zip(runs, names, strict=True):
        m, cl = run.tofu, run.closer_look
        fq = m.forget_quality
        if fq is not None:
            fq_cell = fmt_fq(fq)
        elif _resolved(run.directory.eval_rows_file("forget")) in references:
            fq_cell = notes.missing("this run is the retain reference the other runs' FQ is computed against")
        else:
            fq_cell = notes.missing("no retain reference (eval.retain_reference) when the run was evaluated")
        mu9 = m.model_utility_9
        cells = [md_cell(name), fq_cell, fmt(mu9) if mu9 is not None else
                 notes.missing("MU-9 needs ROUGE, Prob and TR on retain, real_authors and world_facts")]
        reasons = "; ".join(f"{k} unavailable: {v}" for k, v in (cl.get("unavailable") or {}).items()) or \
            "not computed"
        for key in ("model_utility_18", "forget_efficacy"):
            cells.append(fmt(cl.get(key)) if cl.get(key) is not None else notes.missing(reasons))
        if show_wo:
            cells += [fmt(cl.get("forget_efficacy_without_es")) if cl.get("forget_efficacy") is None else MISSING,
                      fmt(cl.get("model_utility_without_es")) if cl.get("model_utility_18") is None else MISSING]
        for set_name, keys in (("forget", ("rouge", "prob", "truth_ratio")),
                               ("retain", ("rouge", "prob", "truth_ratio", "token_entropy", "cosine_similarity"))):
            values = run.sets.get(set_name) or {}
            cells += [fmt(values.get(k)) for k in keys]
        rows.append(cells)
    text = md_table(header, rows)
    if show_wo:
        text += ("\n\nFE / MU without ES: the ES-free aggregates (FE from ROUGE, Prob, TR, CS; MU from 15 of 18 "
                 "numbers), given only where the Entailment Score is unavailable; they are not FE and MU-18.")
    return text


def _comparison_plots(runs: Sequence[Run], names: Sequence[str], plots_dir: Path, link_base: Path | None,
                      wanted: Sequence[int]) -> list[str]:
    lines = ["## Plots", ""]

    def trajectories() -> PlotResult:
        with_epochs = [(r, n) for r, n in zip(runs, names, strict=True) if r.epochs]
        if not with_epochs:
            return f"no run has {RunDirectory.EPOCHS} (train.eval_every_epoch=true)"
        finals = [(r, n) for r, n in zip(runs, names, strict=True) if not r.epochs]
        without_es = fe_mu_variant([e for r, _ in with_epochs for e in r.epochs])
        if without_es is None:
            return f"the runs' {RunDirectory.EPOCHS} lack Forget Efficacy / Model Utility (no generations?)"
        final_points = []
        for r, n in finals:
            fe, mu = closer_look_point(r.results.metrics, without_es)
            if fe is not None and mu is not None:
                final_points.append((n, mu, fe))
        out = plots.plot_fe_mu_trajectories([_trajectory(n, r.epochs, without_es) for r, n in with_epochs],
                                            plots_dir / "fe_mu_trajectories.png", without_es=without_es,
                                            finals=final_points)
        return out, _fe_mu_caption(without_es) + " Lines: runs evaluated every epoch (marker size grows with the " \
            "epoch); stars: runs evaluated only at the end."

    def npo_vs_simnpo() -> PlotResult:
        pick = {name: next(((r, n) for r, n in zip(runs, names, strict=True)
                            if r.objective == name and r.epochs and any(has_logp(e) for e in r.epochs)), None)
                for name in WEIGHT_FORMULAS}
        missing = [name for name, v in pick.items() if v is None]
        if missing:
            return (f"needs an NPO run and a SimNPO run with {RunDirectory.EPOCHS} (train.eval_every_epoch=true); "
                    "missing: " + ", ".join(missing))
        grid = []
        for name, (run, label) in pick.items():
            params = weight_params(run.method, run.forget_split, run.task)[name]
            grid.append(weight_panels(run.epochs, WEIGHT_FORMULAS[name], {k: v[0] for k, v in params.items()},
                                      wanted=wanted, prefix=f"{label}: "))
        if not all(grid):
            return f"the runs' {RunDirectory.EPOCHS} have no epoch after the start with saved log-likelihoods"
        out = plots.plot_gradient_weights(grid, plots_dir / "gradient_weights_npo_vs_simnpo.png",
                                          "NPO's $w_\\theta$ vs SimNPO's $w'_\\theta$ against answer length "
                                          "(SimNPO Fig. 3)")
        (_, npo_name), (_, sim_name) = pick["npo"], pick["simnpo"]
        return out, (f"Top: the NPO run ({npo_name}) with its weight w_θ (π_ref = its epoch 0); bottom: the SimNPO run "
                     f"({sim_name}) with its weight w'_θ. r = Pearson correlation with |y|.")

    lines += _figure("Forget Efficacy vs Model Utility, all runs (closer-look Fig. 4/5)", trajectories, link_base)
    lines += _figure("NPO vs SimNPO gradient weights (SimNPO Fig. 3)", npo_vs_simnpo, link_base)
    return lines


def comparison_examples(runs: Sequence[Run], names: Sequence[str], k: int) -> list[str]:
    """The first ``k`` forget questions with every run's generation side by side (matched by question text)."""
    per_run = [r.rows("forget") or [] for r in runs]
    base = next((rows for rows in per_run if rows), None)
    lines = [f"## Example generations: first {k} forget questions", ""]
    if base is None:
        return [*lines, "No run has per-sample rows of the forget set.", ""]
    body = []
    for row in base[:k]:
        cells = [md_cell(row.get("question")), md_cell(row.get("answer"))]
        for rows in per_run:
            match = next((r for r in rows if r.get("question") == row.get("question")), None)
            cells.append(md_cell(match.get("generation")) if match and match.get("generation") is not None else "—")
        body.append(cells)
    return [*lines, md_table(["question", "ground truth", *(md_cell(n) for n in names)], body), ""]


def _resolved(path: str | os.PathLike[str]) -> str:
    return str(Path(path).resolve())


MEMORIZATION_COLUMNS = (("exact_memorization", "Exact Memorization (EM)"), ("extraction_strength",
                        "Extraction Strength (ES)"), ("paraphrase_prob", "Para. Prob"),
                        ("truth_ratio_knowledge", "TR, knowledge form"))


def memorization_section(run: Run) -> list[str]:
    """OpenUnlearning's memorization metrics per set (CIs); nothing for runs scored before they existed."""
    sets = run.sets
    names = [n for n in _set_names(sets) if sets[n].get("exact_memorization") is not None]
    if not names:
        return []
    rows = []
    for name in names:
        m, ci = sets[name], sets[name].get("ci95") or {}
        rows.append([name, *(fmt_ci(m[k], ci.get(k)) if m.get(k) is not None else MISSING
                             for k, _ in MEMORIZATION_COLUMNS)])
    return ["## Memorization metrics (OpenUnlearning)", "",
            md_table(["set", *(label for _, label in MEMORIZATION_COLUMNS)], rows), "",
            "Under teacher forcing on the answer: EM = share of answer tokens that are the greedy next token; ES = the "
            "final run of such tokens over |y| (the suffix greedy decoding reproduces); Para. Prob = p̄(paraphrase); "
            "TR, knowledge form = p_c / (p_c + p_w) (0.5: true and false answers alike). Lower = forgotten on the "
            "forget set (docs/formulas.md#memorization).", ""]


def render(run: Run, examples: int, wanted_epochs: Sequence[int]) -> list[str]:
    """A TOFU run's report sections after the header: the two tables, the figures and example generations."""
    plot_dir = run.directory.plots_dir
    lines = tofu_section(run) + closer_look_section(run) + memorization_section(run) + ["## Plots", ""]
    lines += _figure("Forget Quality and Model Utility per epoch",
                     lambda: _fq_mu_plot(run, plot_dir / "fq_mu_epochs.png"), run.path)
    lines += _figure("Forget Efficacy vs Model Utility (closer-look Fig. 4/5)",
                     lambda: _fe_mu_plot(run, plot_dir / "fe_mu_trajectory.png"), run.path)
    lines += _figure("Forget-set truth ratios vs the retain model (SimNPO Fig. 1b/2)",
                     lambda: _truth_ratio_plot(run, plot_dir / "truth_ratio_hist.png"), run.path)
    lines += _figure("Gradient weights vs answer length (SimNPO Fig. 3/4)",
                     lambda: _weights_plot(run, plot_dir / "gradient_weights.png", wanted_epochs), run.path)
    lines += [f"## Example generations (first {examples}; closer-look Tables 13/14)", ""]
    for name in ("forget", "retain"):
        lines += [f"### {name} set", "", examples_table(run.rows(name), examples), ""]
    return lines


def compare(runs: Sequence[Run], names: Sequence[str], notes: Notes, plots_dir: Path | None,
            link_base: Path | None, examples: int, wanted_epochs: Sequence[int]) -> list[str]:
    """The comparison's body: the table, the multi-run figures (with ``plots_dir``) and side-by-side generations."""
    lines = [comparison_table(runs, names, notes), ""]
    if notes.texts:
        lines += [notes.render(), ""]
    lines += ["Runs: " + "; ".join(f"{md_cell(n)} = `{r.path}`" for r, n in zip(runs, names, strict=True)), ""]
    if plots_dir is not None:
        lines += _comparison_plots(runs, names, plots_dir, link_base, wanted_epochs)
    if examples > 0:
        lines += comparison_examples(runs, names, examples)
    return lines
