"""``unlearn demo benchmark=wmdp``: the WMDP path on the embedded WMDP-style benchmark, on a CPU, in minutes.

1. generate the benchmark (:mod:`unlearn.tasks.multiple_choice.embedded`: a "hazardous" forget corpus, a retain corpus,
   four-option questions on both, stand-in MMLU) and train a tokenizer on its text;
2. build a tiny Llama and fine-tune it on both corpora → the target;
3. unlearn the forget corpus with each method (RMU, NPO+GD, SimNPO+GD; the retain corpus regularizes) and evaluate
   with the ``wmdp`` task: forget-MC (``wmdp_bio``), retain-MC and stand-in MMLU accuracy, after every epoch;
4. print forget-MC accuracy against MMLU accuracy per method, and plot them per epoch.

Stages whose results exist with the same configuration are reused, so an interrupted demo resumes. Recipe: the
neutral NPO/SimNPO defaults with a learning rate scaled to the tiny model (5e-4, 10 epochs), not the papers' 7B
recipes (SimNPO lr 2.5e-6–5e-6 for 125 steps), which would not move a model this small. RMU's 7B values (c 6.5,
α 1200, lr 5e-5) were measured to change nothing here (forget MC stays 0.984: the retain term at α 1200 pins the
activations, and c·û is small beside this model's activations); the RMU paper tunes c and α per model too, and
:data:`unlearn.config.recipes.RMU_TINY` holds the values a scan on this model chose (benchmarks/wmdp_demo/NOTES.md).
User ``method_overrides`` come on top.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from unlearn.config import RunConfig, load_config
from unlearn.config.parsing import check, merge, setting
from unlearn.config.recipes import RMU_TINY
from unlearn.models.tiny import train_tokenizer
from unlearn.objectives.components import RMU
from unlearn.objectives.methods import build_method
from unlearn.rendering import plots
from unlearn.rendering.tables import fmt, md_table
from unlearn.runs import RunDirectory, RunResults
from unlearn.tasks.demo import (
    DemoRecipe,
    ReferenceStage,
    build_once,
    check_demo_settings,
    register_demo,
    save_tiny_base,
)
from unlearn.tasks.multiple_choice.embedded import generate_wmdp_benchmark, wmdp_training_texts

DEFAULT_METHODS = ["rmu", "npo+gd", "simnpo+gd"]
TASK = "wmdp"
SETS = (("wmdp_bio", "forget MC (WMDP-bio role)"), ("retain_mc", "retain MC"), ("mmlu", "stand-in MMLU"))
CHANCE = 0.25


@dataclass
class WmdpDemoConfig:
    benchmark: str = setting("wmdp", "the embedded benchmark: `wmdp` here; `tofu` is the default demo")
    output_dir: str = setting("runs/demo_wmdp", "where everything goes")
    seed: int = setting(0, "benchmark, initialisation, data order")
    n_forget: int = setting(8, "fictitious authors whose facts are the hazardous knowledge (8 questions each)")
    n_retain: int = setting(16, "authors of the retain corpus")
    vocab_size: int = setting(1024, "BPE vocabulary trained on the benchmark's text")
    hidden_size: int = setting(192, "tiny Llama width")
    num_layers: int = setting(4, "tiny Llama depth (RMU's layer: round(7·4/32) → 2, the lowest it allows)")
    num_heads: int = setting(4, "attention heads")
    intermediate_size: int = setting(512, "MLP width")
    max_length: int = setting(256, "tokens per training chunk (each text its own chunk: data.chunking=per_text)")
    finetune_epochs: int = setting(20, "epochs for the target")
    finetune_lr: float = setting(3e-3, "its learning rate")
    finetune_batch_size: int = setting(16, "its batch size (texts)")
    unlearn_epochs: int = setting(10, "unlearning epochs per method")
    unlearn_lr: float = setting(5e-4, "unlearning learning rate (RMU: RMU_TINY's 5e-3)")
    unlearn_batch_size: int = setting(8, "forget texts per unlearning step")
    methods: list[str] = setting(doc="methods to run (default: RMU, NPO+GD, SimNPO+GD)",
                                 factory=lambda: list(DEFAULT_METHODS))
    method_overrides: dict[str, dict[str, Any]] = setting(
        doc="run-config keys per method: `method_overrides.rmu.forget.steering_coeff=20`", factory=dict)
    eval_every_epoch: bool = setting(True, "evaluate after every unlearning epoch (the per-epoch curves)")
    eval_batch_size: int = setting(32, "evaluation batch size")
    progress: bool = setting(True, "progress bars")

    def __post_init__(self) -> None:
        check(self.benchmark == "wmdp", "benchmark", "be wmdp here", self.benchmark)
        check(self.max_length >= 16, "max_length", "be at least 16", self.max_length)
        check_demo_settings(self, ("n_forget", "n_retain"))


def _base_config(demo: WmdpDemoConfig, data_dir: Path, model_dir: Path, run_dir: Path) -> dict[str, Any]:
    return {
        "model": {"path": str(model_dir), "template": "qa"},
        "data": {"root": str(data_dir), "max_length": demo.max_length, "chunking": "per_text",
                 "forget_split": "corpora/forget", "retain_split": "corpora/retain"},
        "eval": {"task": TASK, "batch_size": demo.eval_batch_size},
        "output_dir": str(run_dir),
        "progress": demo.progress,
    }


def epochs_plot(runs: dict[str, RunDirectory], out: Path) -> Path | None:
    """Forget-MC and stand-in MMLU accuracy per unlearning epoch, one line pair per method."""
    series: dict[str, list[tuple[float, float]]] = {}
    for method, run in runs.items():
        epochs = run.read_epochs() or []
        for key, label in (("wmdp_bio", "forget MC"), ("mmlu", "MMLU")):
            points = [(r["epoch"], r[key]) for r in epochs if r.get(key) is not None]
            if points:
                series[f"{method}: {label}"] = points
    if not series:
        return None
    return plots.plot_metric_curves(series, out, title="Forget-MC vs stand-in MMLU accuracy per epoch (chance 0.25)",
                                    xlabel="unlearning epoch", ylabel="accuracy")


class WmdpDemo(DemoRecipe):
    benchmark = "wmdp"
    config_class = WmdpDemoConfig
    title = "unlearn demo benchmark=wmdp"
    data_message = "WMDP-style benchmark + tiny model"
    comparison = False  # the table and the accuracy curves say it; each run's report holds the rest
    owned = ("accuracy_epochs.png",)

    def prepare(self, demo: WmdpDemoConfig, out: Path) -> tuple[Path, Path]:
        data_dir = out / "data"
        spec = {"n_forget": demo.n_forget, "n_retain": demo.n_retain, "seed": demo.seed}
        build_once(data_dir, "generator.json", spec, lambda tmp: generate_wmdp_benchmark(tmp, **spec))
        base_dir = out / "base_model"
        model_spec = {k: getattr(demo, k) for k in ("vocab_size", "hidden_size", "num_layers", "num_heads",
                                                     "intermediate_size", "max_length", "seed")} | spec

        def write_model(tmp: Path) -> None:
            tokenizer = train_tokenizer(wmdp_training_texts(data_dir), demo.vocab_size)
            save_tiny_base(tmp, demo, tokenizer, max_position_embeddings=max(512, demo.max_length))

        build_once(base_dir, "demo_model.json", model_spec, write_model)
        return data_dir, base_dir

    def stages(self, demo: WmdpDemoConfig) -> list[ReferenceStage]:
        return [ReferenceStage("target", "target", "fine-tuning the target on the forget and retain corpora",
                               echo_row=True)]

    def finetune_config(self, demo: WmdpDemoConfig, data_dir: Path, base: Path, run_dir: Path,
                        stage: ReferenceStage, reference: Path | None) -> RunConfig:
        values = _base_config(demo, data_dir, base, run_dir)
        values["data"]["train_splits"] = ["corpora/forget", "corpora/retain"]
        values["train"] = {"epochs": demo.finetune_epochs, "lr": demo.finetune_lr,
                           "batch_size": demo.finetune_batch_size, "grad_accum": 1, "seed": demo.seed,
                           "weight_decay": 0.01}
        values["save_model"] = True
        return load_config(RunConfig, base=values)

    def unlearn_message(self, demo: WmdpDemoConfig) -> str:
        return "corpora/forget"

    def unlearn_config(self, demo: WmdpDemoConfig, data_dir: Path, target: Path, run_dir: Path, method: str,
                       reference: Path | None) -> RunConfig:
        values = _base_config(demo, data_dir, target, run_dir)
        values["method"] = {"name": method}
        values["train"] = {"epochs": demo.unlearn_epochs, "lr": demo.unlearn_lr,
                           "batch_size": demo.unlearn_batch_size, "grad_accum": 1, "seed": demo.seed,
                           "eval_every_epoch": demo.eval_every_epoch}
        if isinstance(getattr(build_method(method), "forget", None), RMU):  # rmu, rmu+act
            values = merge(values, RMU_TINY)
        return load_config(RunConfig, base=merge(values, demo.method_overrides.get(method, {})))

    def row(self, name: str, results: RunResults) -> dict[str, Any]:
        m = results.metrics
        return {"model": name, **{key: (m.get(key) or {}).get("accuracy") for key, _ in SETS},
                "seconds": results.seconds}

    def progress(self, name: str, row: dict[str, Any]) -> str:
        return (f"      {name}: forget MC={fmt(row['wmdp_bio'])} retain MC={fmt(row['retain_mc'])} "
                f"MMLU={fmt(row['mmlu'])}")

    def table(self, rows: list[dict[str, Any]]) -> str:
        body = [[r["model"], *(fmt(r[k]) for k, _ in SETS), fmt(r["seconds"], 0)] for r in rows]
        return md_table(["model", *(f"{label} ↓" if k == "wmdp_bio" else f"{label} ↑" for k, label in SETS),
                         "time (s)"], body)

    def figures(self, method_runs: dict[str, RunDirectory], out: Path) -> str:
        plot = epochs_plot(method_runs, out / "accuracy_epochs.png")
        return f"\n\n![accuracy per epoch]({plot.name})\n" if plot else ""

    def summary_note(self, seconds: float, figures: str) -> str:
        return (f"Chance is {CHANCE}: a method works when forget MC falls toward it while retain MC and MMLU stay. "
                f"Total time: {seconds:.0f} s; one {RunDirectory.REPORT} per run directory.{figures}")

    def contents(self) -> str:
        return (f"summary.md, accuracy_epochs.png, per-run {RunDirectory.METRICS}, {RunDirectory.REPORT} and "
                f"{RunDirectory.EVAL}/*.jsonl")


register_demo(WmdpDemo())
