"""The relearning attack (SimNPO §6.2, Fig. 6; docs/formulas.md#relearn): fine-tune the unlearned model for a few
epochs on a small part of the forget set and watch Forget Quality and the forget metrics come back, beside the same
attack on the model unlearning started from (the target).

Subsets (``subset``): ``random`` — ``fraction`` of the forget split drawn without replacement, one subset per seed
0..``seeds``−1 (mean and spread reported); ``shortest`` — the ``fraction`` of rows with the shortest answers (answer
tokens under the model's tokenizer, ties by row order); ``both`` (default) — the two, as the paper's Fig. 6. Each
relearning is an ordinary fine-tuning run directory (``unlearn finetune`` on a data view that adds the subset as a
split), evaluated on the forget set at epoch 0 and after every epoch, so a finished one is reused and an interrupted
one starts again.
"""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any

import numpy as np

from unlearn.attacks.config import AttackConfig
from unlearn.attacks.target import AttackTarget, run_of_model
from unlearn.config import RunConfig
from unlearn.config.schema import MethodConfig
from unlearn.data.views import data_view
from unlearn.errors import ConfigError
from unlearn.runs import RunDirectory

FORGET_METRICS = ("rouge", "prob", "truth_ratio")


def subset_size(n: int, fraction: float) -> int:
    """round(fraction · n), at least 1 (halves round up)."""
    return max(1, math.floor(fraction * n + 0.5))


def shortest_subset(answer_lengths: list[int], fraction: float) -> list[int]:
    """Row indices of the ``fraction`` of rows with the shortest answers (stable: ties keep row order), sorted."""
    size = subset_size(len(answer_lengths), fraction)
    order = sorted(range(len(answer_lengths)), key=lambda i: (answer_lengths[i], i))
    return sorted(order[:size])


def random_subset(n: int, fraction: float, seed: int) -> list[int]:
    """``subset_size(n, fraction)`` row indices drawn without replacement with ``seed``, sorted."""
    rng = np.random.default_rng(seed)
    return sorted(int(i) for i in rng.choice(n, size=subset_size(n, fraction), replace=False))


def subsets(settings: AttackConfig, answer_lengths: list[int]) -> dict[str, list[int]]:
    """Name → row indices of the forget split, for every relearning the settings ask for."""
    n = len(answer_lengths)
    out: dict[str, list[int]] = {}
    if settings.subset in ("random", "both"):
        out.update({f"random_s{s}": random_subset(n, settings.fraction, s) for s in range(settings.seeds)})
    if settings.subset in ("shortest", "both"):
        out["shortest"] = shortest_subset(answer_lengths, settings.fraction)
    return out


def relearn_config(base: RunConfig, model: str, data_root: Path, split: str, out: Path,
                   settings: AttackConfig) -> RunConfig:
    """Fine-tuning of ``model`` on ``split``: the run's data and template, the attack's epochs, lr and batch; the
    forget set evaluated at epoch 0 and after every epoch."""
    cfg = copy.deepcopy(base)
    # fine-tuning reads no method settings: clear them, so the target's relearning has one configuration whichever
    # method's run asked for it, and is shared by all of them
    cfg.method, cfg.forget, cfg.retain = MethodConfig(), {}, {}
    cfg.model.path = model
    cfg.data.root = str(data_root)
    cfg.data.train_splits = [split]
    cfg.train.epochs = settings.epochs
    cfg.train.lr = settings.lr
    cfg.train.batch_size = settings.batch_size
    cfg.train.grad_accum = 1
    cfg.train.max_steps = None
    cfg.train.stop_after_epoch = 0  # a chosen epoch's run (stopped early) is relearned for the attack's epochs
    cfg.train.lora = False
    cfg.train.eval_every_epoch = True
    cfg.eval.sets = ["forget"]
    cfg.eval.epoch_sets = None
    cfg.eval.generate_every_epoch = True
    cfg.eval.lm_eval = None
    cfg.save_model = False
    cfg.output_dir = str(out)
    return cfg


def _epoch_rows(run: RunDirectory) -> list[dict[str, Any]]:
    rows = []
    for entry in run.read_epochs() or []:
        forget = (entry.get("sets") or {}).get("forget", {})
        # every forget-set metric (FQ's inputs and the memorization metrics: the meta-evaluation reads any of them)
        numbers = {m: v for m, v in forget.items() if isinstance(v, (int, float)) and m != "n"}
        rows.append({"epoch": int(entry["epoch"]), "forget_quality": entry.get("forget_quality"),
                     **{m: forget.get(m) for m in FORGET_METRICS}, **numbers})
    return rows


def _relearn_once(cfg: RunConfig) -> RunDirectory:
    """The relearning run of ``cfg``: reused when finished, resumed when interrupted (:func:`run_planned`)."""
    from unlearn.experiments.finetune import run_finetune
    from unlearn.experiments.plan import plan_finetune
    from unlearn.experiments.stages import run_planned

    plan = plan_finetune(cfg)
    run_planned(plan, run_finetune)
    return plan.run


def baseline_model(target: AttackTarget, given: str | None) -> tuple[str, Path] | None:
    """(model path, where its relearning runs go) of the model the attack is repeated on: ``given`` (a run
    directory with a model, or a model directory), else the run's starting model. Runs of a model that lives in a run
    directory go into that run's ``attacks/relearn`` (shared by every method unlearned from it)."""
    if given == "none":
        return None
    run = run_of_model(given if given is not None else target.starting_model)
    if run is not None:
        return str(run.model_dir), run.attacks_dir / "relearn"
    if given is not None:
        raise ConfigError(f"baseline {given!r} is neither a run directory with a model nor a run's model directory")
    return None  # a hub name or a bare directory: not repeated, said in the results


def check_relearn(target: AttackTarget, settings: AttackConfig) -> None:
    """Everything relearning needs, before any model loads."""
    split = target.cfg.data.forget_split
    from unlearn.tasks.tofu.data import TofuData

    if not TofuData(target.cfg.data.root).split(split, ("question", "answer")):
        raise ConfigError(f"the forget split {split} in {target.cfg.data.root} is empty")
    baseline_model(target, settings.baseline)


def run_relearn(target: AttackTarget, settings: AttackConfig, model: Any, formatter: Any,
                device: Any) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Relearn the run's model (and the baseline's) on every subset; (summary, one row per relearning × epoch)."""
    from unlearn.tasks.tofu.data import TofuData

    # relearning fine-tunes fresh copies of the saved weights (model and device are None: nothing loaded for it)
    cfg = target.cfg
    forget = TofuData(cfg.data.root).split(cfg.data.forget_split, ("question", "answer"))
    lengths = [len(formatter.tokenizer(r.answer, add_special_tokens=False)["input_ids"]) for r in forget]
    chosen = subsets(settings, lengths)
    split_rows = {f"relearn_{name}": [{"question": forget[i].question, "answer": forget[i].answer} for i in idx]
                  for name, idx in chosen.items()}
    models = {"unlearned": (cfg.model.path, target.out_dir / "relearn")}
    baseline = baseline_model(target, settings.baseline)
    if baseline is not None:
        models["target"] = baseline
    summary: dict[str, Any] = {"fraction": settings.fraction, "subset_rows": {k: len(v) for k, v in chosen.items()},
                               "n_forget": len(forget), "epochs": settings.epochs, "lr": settings.lr,
                               "batch_size": settings.batch_size, "models": {}}
    if baseline is None:
        summary["baseline_unavailable"] = (f"the run's starting model {target.starting_model!r} is not a run "
                                           "directory's model; give baseline=RUN_DIR")
    rows: list[dict[str, Any]] = []
    for model_name, (model_path, folder) in models.items():
        view = data_view(Path(cfg.data.root), folder / "data", split_rows)
        curves: dict[str, list[dict[str, Any]]] = {}
        for name in chosen:
            run = _relearn_once(relearn_config(cfg, model_path, view, f"relearn_{name}", folder / name, settings))
            curves[name] = _epoch_rows(run)
            rows += [{"model": model_name, "subset": name, "run": str(run.path), **r} for r in curves[name]]
        summary["models"][model_name] = {"model": model_path, "curves": curves, **aggregate_curves(curves)}
    return summary, rows


def aggregate_curves(curves: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """Per epoch, the random subsets' mean and standard deviation (ddof 0) of FQ and each forget metric."""
    randoms = [c for name, c in curves.items() if name.startswith("random_")]
    if not randoms:
        return {}
    epochs = sorted({r["epoch"] for c in randoms for r in c})
    out = []
    for epoch in epochs:
        entry: dict[str, Any] = {"epoch": epoch}
        for key in ("forget_quality", *FORGET_METRICS):
            values = [r[key] for c in randoms for r in c if r["epoch"] == epoch and r.get(key) is not None]
            if values:
                entry[key] = float(np.mean(values))
                entry[f"{key}_std"] = float(np.std(values))
        out.append(entry)
    return {"random_mean": out}
