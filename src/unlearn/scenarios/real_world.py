"""Real-world unlearning (closer-look §5.3, Table 2 and Table 8; docs/formulas.md#real-world): forget people the
starting model knows from pretraining, regularize on other people, measure utility on a third set of people and,
with ``eval.lm_eval``, general capability on lm-evaluation-harness tasks.

The targets are the model's own answers. closer-look built them by asking Llama-3-8B-Instruct (their target) each
question; their files carry those answers as ``answer``. ``targets=generate`` (default) asks the model being unlearned
the same way (greedy, the evaluation's generation settings) and writes a data view with its answers in place of the
file's, so the same procedure holds for any model; ``targets=file`` keeps the file's answers (closer-look's runs
exactly, when the model is Llama-3-8B-Instruct). Either way the answers are what the forget and neighbor sets train on
and what Cosine Similarity compares with; every other metric uses ``golden_answer``.

Stages: the targets (``data/``, reused while the model and settings are the same), the starting model's evaluation
(``initial/``, closer-look's "Initial" row), one ordinary ``unlearn run`` per method on the real_world task. Finished
stages are reused and interrupted ones resumed, as in every scenario.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from unlearn.config import RunConfig, load_config
from unlearn.config.parsing import check, check_choice, setting
from unlearn.data.files import read_raw_rows
from unlearn.data.views import data_view
from unlearn.io import read_json, write_json, write_text
from unlearn.rendering.tables import fmt
from unlearn.runs import RunDirectory
from unlearn.tasks.real_world.data import EVAL_FILES, TRAIN_FILES, split_file

TASK = "real_world"
TARGETS_FILE = "own_answers.json"


@dataclass
class RealWorldConfig:
    methods: list[str] = setting(doc="methods run (closer-look Table 2 has GA, NPO, DPO, IDK with GD and KL, ME+GD "
                                     "and IDK+AP; default: the demo's seven)",
                                 factory=lambda: ["ga+gd", "npo+gd", "simnpo+gd", "idk+gd", "dpo+gd", "me+gd",
                                                  "idk+ap"])
    targets: str = setting("generate", "what the forget and neighbor sets train on and CS compares with: `generate` "
                                       "(the starting model's own greedy answers, closer-look's procedure for any "
                                       "model) or `file` (the files' `answer`: Llama-3-8B-Instruct's, as released)")
    method_overrides: dict[str, Any] = setting(doc="run-config keys per method, e.g. "
                                                   "`method_overrides.me+gd.train.lr=5e-6`", factory=dict)

    def __post_init__(self) -> None:
        check(bool(self.methods), "methods", "name at least one method", self.methods)
        check_choice(self.targets, ("generate", "file"), "targets")
        from unlearn.objectives.methods import build_method

        for method in self.methods:
            build_method(method)
        unknown = sorted(set(self.method_overrides) - set(self.methods))
        check(not unknown, "method_overrides", f"name methods of `methods` ({', '.join(self.methods)})", unknown)


def with_own_answers(rows: list[dict[str, Any]], answers: dict[str, str]) -> tuple[list[dict[str, Any]], int]:
    """``rows`` with ``answer`` replaced by the model's answer to the row's question; a row whose answer came back
    empty keeps the file's (a model that says nothing has nothing to forget there). Returns the rows and how many
    kept the file's answer."""
    out, kept = [], 0
    for row in rows:
        own = answers[row["question"]].strip()
        kept += not own
        out.append({**row, "answer": own or row["answer"]})
    return out, kept


def _generate(cfg: RunConfig, questions: list[str], echo) -> dict[str, str]:
    """The starting model's greedy answer to every question, with the evaluation's generation settings."""
    import torch

    from unlearn.evaluation.generation import GenerationSettings, generate_answers
    from unlearn.experiments.common import load_model

    model, tokenizer, fmt = load_model(cfg)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model.to(device).eval()
    e = cfg.eval
    settings = GenerationSettings(max_length=e.max_length, do_sample=False, seed=cfg.train.seed)
    echo(f"targets: the starting model answers {len(questions)} questions")
    texts = generate_answers(model, tokenizer, fmt.encode_prompts(questions), fmt.eos_id, fmt.pad_id, e.batch_size,
                             device, settings)
    return dict(zip(questions, texts, strict=True))


def own_answer_view(cfg: RunConfig, out: Path, echo=print) -> tuple[Path, dict[str, Any]]:
    """``out/data``: the benchmark with every file's ``answer`` replaced by the starting model's own (reused while
    the model, data and generation settings are the same). Returns the view and its record."""
    root = Path(cfg.data.root)
    names = [*TRAIN_FILES, *EVAL_FILES.values()]
    rows = {name: [raw for raw, _ in read_raw_rows(split_file(root, name))] for name in names}
    spec = {"model": cfg.model.path, "data": str(root.resolve()), "max_length": cfg.eval.max_length,
            "template": cfg.model.template, "system_prompt": cfg.model.system_prompt}
    view = out / "data"
    record_file = view / TARGETS_FILE
    if record_file.is_file() and (record := read_json(record_file)).get("spec") == spec:
        return view, record
    questions = list(dict.fromkeys(r["question"] for name in names for r in rows[name]))
    answers = _generate(cfg, questions, echo)
    splits, kept = {}, {}
    for name in names:
        splits[name], kept[name] = with_own_answers(rows[name], answers)
    data_view(root, view, splits)
    changed = {name: sum(a["answer"] != b["answer"] for a, b in zip(rows[name], splits[name], strict=True))
               for name in names}
    record = {"spec": spec, "questions": len(questions), "kept_file_answer": kept, "differs_from_file": changed}
    write_json(record_file, record)
    return view, record


def _scenario_config(cfg: RunConfig, data_root: Path, run: Path, method: str | None,
                     overrides: dict[str, Any]) -> RunConfig:
    from unlearn.config.parsing import merge, to_dict

    values = merge(to_dict(cfg), overrides)
    out = load_config(RunConfig, base=values)
    out.eval.task = TASK
    out.data.root = str(data_root)
    out.output_dir = str(run)
    if method is not None:
        out.method.name = method
    return out


def _row(run: RunDirectory) -> dict[str, Any]:
    results = run.read_results()
    m = results.metrics
    sets = m.get("sets") or {}
    return {"model_utility": m.get("model_utility"), "model_utility_without_es": m.get("model_utility_without_es"),
            "forget_efficacy": m.get("forget_efficacy"),
            "forget_efficacy_without_es": m.get("forget_efficacy_without_es"),
            "sets": {name: {k: v for k, v in s.items() if k != "ci95"} for name, s in sets.items()},
            "lm_eval": {task: {k: v for k, v in r.items() if isinstance(v, (int, float)) and k != "n"}
                        for task, r in (m.get("lm_eval") or {}).items()},
            "seconds": results.seconds, "epochs": run.read_epochs()}


def run_real_world(cfg: RunConfig, scenario: RealWorldConfig, echo=print) -> Path:
    """The initial model and every method; ``output_dir/real_world.json`` and ``real_world.md``."""
    from unlearn.experiments.common import check_evaluation
    from unlearn.experiments.evaluate import run_evaluation
    from unlearn.experiments.plan import plan_evaluation, plan_unlearning
    from unlearn.experiments.stages import run_planned, run_stage
    from unlearn.experiments.unlearning import run_unlearning

    cfg = copy.deepcopy(cfg)
    cfg.eval.task = TASK
    base = plan_evaluation(cfg)
    cfg = base.cfg
    check_evaluation(base)  # the task's check: every file and golden answer, before any model loads
    out = Path(cfg.output_dir or "runs/real_world")
    targets: dict[str, Any] = {"source": "file"}
    data = Path(cfg.data.root)
    if scenario.targets == "generate":
        data, record = own_answer_view(cfg, out, echo)
        targets = {"source": "generate", **record}

    initial_plan = plan_evaluation(_scenario_config(cfg, data, out / "initial", None, {}))
    initial = initial_plan.run
    echo("initial: evaluating the starting model")
    run_stage(initial, initial_plan.config_text, lambda **how: run_evaluation(initial_plan, overwrite=True))
    results: dict[str, Any] = {"data": str(cfg.data.root), "model": cfg.model.path, "targets": targets,
                               "initial": _row(initial), "methods": {}}
    for method in scenario.methods:
        plan = plan_unlearning(_scenario_config(cfg, data, out / method.replace("+", "_"), method,
                                                scenario.method_overrides.get(method, {})))
        run_planned(plan, run_unlearning, lambda method=method: echo(f"{method}: unlearning"))
        results["methods"][method] = _row(plan.run)
    write_json(out / "real_world.json", results)
    write_text(out / "real_world.md", "\n".join(real_world_report(results, out)) + "\n")
    return out


METRICS = (("rouge", "R"), ("prob", "P"), ("truth_ratio", "TR"), ("token_entropy", "TE"),
           ("cosine_similarity", "CS"), ("entailment", "ES"))


_f = fmt


def _aggregates(rows: list[dict[str, Any]]) -> tuple[str, str, str]:
    """The MU / FE keys every row has: the full aggregates, or the ES-free ones when ES was unavailable."""
    if all(r.get("model_utility") is not None and r.get("forget_efficacy") is not None for r in rows):
        return "model_utility", "forget_efficacy", ""
    return "model_utility_without_es", "forget_efficacy_without_es", " without ES"


def real_world_report(results: dict[str, Any], out: Path) -> list[str]:
    """closer-look Table 2 (MU, FE, general capability) and Table 8 (each metric per set), and the FE–MU plot."""
    from unlearn.rendering.plots import Trajectory, plot_fe_mu_trajectories

    entries = {"initial": results["initial"], **results["methods"]}
    mu, fe, suffix = _aggregates(list(entries.values()))
    targets = results["targets"]
    empty = sum((targets.get("kept_file_answer") or {}).values())
    how = ("the starting model's own greedy answers (targets=generate"
           + (f"; {empty} empty answers kept the file's)" if empty else ")")
           if targets["source"] == "generate" else "the files' `answer` (targets=file)")
    lines = [f"# Real-world unlearning (closer-look §5.3): {results['model']}", "",
             f"Data: `{results['data']}`. Trained on and CS against: {how}. Every other metric uses the golden "
             "answers. Forget Quality: n/a — there is no retain model trained without these people.", ""]
    tasks = sorted({t for e in entries.values() for t in e["lm_eval"]})
    general = [(t, k) for t in tasks for k in sorted({k for e in entries.values() for k in e["lm_eval"].get(t, {})
                                                      if not k.endswith("_stderr")})]
    head = ["model", f"MU{suffix} (neighbor) ↑", f"FE{suffix} (forget) ↑", *(f"{t} {k} ↑" for t, k in general),
            "time (s)"]
    lines += ["## Table 2 layout", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, e in entries.items():
        cells = [_f(e.get(mu)), _f(e.get(fe)), *(_f(e["lm_eval"].get(t, {}).get(k)) for t, k in general),
                 fmt(e.get("seconds"), 0)]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", "## Table 8 layout: every metric (neighbor ↑, forget ↓)", ""]
    head = ["model", *(f"neighbor {a}" for _, a in METRICS), *(f"forget {a}" for k, a in METRICS
                                                                if k != "token_entropy")]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, e in entries.items():
        neighbor, forget = e["sets"].get("neighbor", {}), e["sets"].get("forget", {})
        forget_cells = [_f(1 - forget[k]) if k == "truth_ratio" and forget.get(k) is not None else _f(forget.get(k))
                        for k, _ in METRICS if k != "token_entropy"]
        lines.append(f"| {name} | " + " | ".join([*(_f(neighbor.get(k)) for k, _ in METRICS), *forget_cells]) + " |")
    lines += ["", "Forget TR is closer-look's 1 − mean min(Q, 1/Q) (higher = the model still tells the true answer "
              "from the false ones); FE = 1 − mean of the five forget numbers.", ""]
    trajectories, finals = [], []
    for name, e in entries.items():
        points = [(row["epoch"], row.get(mu), row.get(fe)) for row in e.get("epochs") or []]
        points = [p for p in points if None not in p]
        if len(points) > 1:
            trajectories.append(Trajectory(name, [p[0] for p in points], [p[1] for p in points],
                                           [p[2] for p in points]))
        elif e.get(mu) is not None and e.get(fe) is not None:
            finals.append((name, e[mu], e[fe]))
    if trajectories or finals:
        path = plot_fe_mu_trajectories(trajectories, out / "plots" / "real_world_fe_mu.png", finals=finals,
                                       axis_labels=(f"Model Utility{suffix} (neighbor set)",
                                                    f"Forget Efficacy{suffix}"),
                                       title="Real-world unlearning: FE vs MU per epoch (closer-look §5.3)")
        lines += [f"![FE vs MU](plots/{path.name})", ""]
    if suffix:
        lines += ["ES (the NLI classifier) was unavailable, so MU and FE are the aggregates without it "
                  "(docs/formulas.md#real-world).", ""]
    return lines
