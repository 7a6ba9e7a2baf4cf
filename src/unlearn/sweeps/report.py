"""``sweep.md``: the selection rule and its result per method, the front plot, the resolution of Forget Quality, and
every candidate."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from unlearn.rendering.tables import fmt_small
from unlearn.sweeps.select import Candidate, Choice, fq_ladder, rung

NAMES = {"forget_quality": "Forget Quality", "forget_efficacy": "Forget Efficacy", "model_utility_9": "MU (TOFU, 9)",
         "model_utility_18": "MU (closer-look, 18)", "model_utility": "MU (neighbor set)"}


_f = fmt_small


def fq_resolution(n: int, values: Sequence[float]) -> list[str]:
    """What Forget Quality can resolve on n rows, and the rungs next to the given values."""
    ladder = fq_ladder(n)
    lines = [f"Forget Quality is a KS p-value on n = {n} forget rows against the retain model's: it takes only "
             f"{len(ladder)} values (D = k/{n}); neighbouring values around the chosen ones:", ""]
    for value in sorted(set(values), reverse=True):
        i = rung(value, ladder)
        around = [ladder[j] for j in (i - 1, i, i + 1) if 0 <= j < len(ladder)]
        lines.append(f"- {_f(value)}: rungs " + " < ".join(_f(v) for v in around))
    lines += ["", "Candidates on the same rung are ties; with swept seeds, configurations whose seed means differ by "
              "less than the larger seed spread (standard deviation) are ties too. Ties go to the higher utility.", ""]
    return lines


def sweep_report(result: Mapping[str, Any], candidates: Sequence[Candidate], choices: Mapping[str, Choice],
                 out: Path, name: str = "sweep") -> list[str]:
    from unlearn.rendering.plots import plot_sweep_front

    fk, uk = result["forget_metric"], result["utility_metric"]
    fname, uname = NAMES.get(fk, fk), NAMES.get(uk, uk)
    direction = result.get("forget_direction", "higher is better")
    target = result["target"]
    lines = [f"# Sweep: {len(result['runs'])} runs, {len(candidates)} candidates", "",
             f"Selection: the best {fname} ({direction}) among candidates with {uname} ≥ {result['utility_ratio']} × "
             "the target's "
             f"({_f(target['utility'])}) = {_f(result['utility_ratio'] * target['utility'])}. A candidate is "
             + ("every evaluated epoch of a run (the epoch is named)." if any(c.epoch is not None for c in candidates)
                else "each run's final model."), ""]
    lines += ["## Chosen per method", "", f"| method | chosen | epoch | {fname} | {uname} | settings | seed spread | "
              "eligible | ties |", "|---|---|---|---|---|---|---|---|---|"]
    by_label = {c.label: c for c in candidates}
    chosen_points = {}
    for method, choice in choices.items():
        c = choice.chosen
        if c is None:
            lines.append(f"| {method} | none: {choice.reason} | | | | | | 0 | |")
            continue
        chosen_points[method] = (c.utility, c.forget)
        settings = ", ".join(f"`{k}={v}`" for k, v in c.settings.items()) or "—"
        lines.append(f"| {method} | `{c.run}` | {c.epoch if c.epoch is not None else 'final'} | {_f(c.forget)} | "
                     f"{_f(c.utility)} | {settings} | {_f(choice.seed_spread)} | {choice.eligible} | "
                     f"{len(choice.tied_with)} |")
    lines.append("")
    if any(c.chosen is not None and c.chosen.epoch is not None for c in choices.values()):
        lines += ["A chosen epoch's model, as a run of its own (the run's trajectory stopped after that epoch, on its "
                  "learning-rate schedule; its final evaluation is the epoch's row): `unlearn run -c "
                  "runs/RUN/config.yaml train.stop_after_epoch=EPOCH save_model=true output_dir=DIR`.", ""]
    if fk == "forget_quality" and result.get("n_forget"):
        lines += fq_resolution(result["n_forget"], [c.chosen.forget for c in choices.values() if c.chosen])
    points = {m: [(c.utility, c.forget) for c in candidates if c.method == m] for m in result["fronts"]}
    fronts = {m: [(by_label[x].utility, by_label[x].forget) for x in labels] for m, labels in result["fronts"].items()}
    marks = {"target": (target["utility"], target["forget"])} if target.get("forget") is not None else {}
    if result.get("retain"):
        marks["retain"] = (result["retain"]["utility"], result["retain"]["forget"])
    path = plot_sweep_front(points, fronts, out / "plots" / f"{name}_front.png", uname, f"{fname} ({direction})",
                            log_y=fk == "forget_quality" and all(y > 0 for xy in points.values() for _, y in xy),
                            marks=marks, chosen=chosen_points, invert_y=direction == "lower is better")
    lines += [f"![front](plots/{path.name})", "", "## Every candidate", "",
              f"| run | method | epoch | {fname} | {uname} | on the front |", "|---|---|---|---|---|---|"]
    front = set(result["front"])
    for c in sorted(candidates, key=lambda c: (c.method, c.run, c.epoch or 0)):
        lines.append(f"| `{c.run}` | {c.method} | {c.epoch if c.epoch is not None else 'final'} | {_f(c.forget)} | "
                     f"{_f(c.utility)} | {'yes' if c.label in front else ''} |")
    return lines
